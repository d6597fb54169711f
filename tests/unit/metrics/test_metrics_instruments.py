"""The daemon's own instruments (p2porch.metrics.Counter/Histogram): plain numbers, checked use."""

from __future__ import annotations

import threading

import pytest

from p2porch.metrics import Counter, Histogram


def test_a_labelled_counter_counts_per_label_combination() -> None:
    c = Counter("x", "doc", ["route", "code"])
    c.labels("/a", "200").inc()
    c.labels("/a", "200").inc(2)
    c.labels("/a", 500).inc()  # type: ignore[arg-type]  # label values are strings, as prometheus_client
    assert c.values() == {("/a", "200"): 3.0, ("/a", "500"): 1.0}


def test_counters_refuse_wrong_labels_and_decrements() -> None:
    labelled, plain = Counter("x", "doc", ["route"]), Counter("y", "doc")
    with pytest.raises(ValueError):
        labelled.labels("/a", "extra")
    with pytest.raises(ValueError):
        labelled.inc()
    with pytest.raises(ValueError):
        plain.inc(-1)
    assert plain.values() == {(): 0.0}  # an unlabelled counter is exposed at 0 before its first inc


def test_histogram_observations_from_many_threads_are_all_counted() -> None:
    h = Histogram("h", "doc", (0.1, 1.0))

    def observe() -> None:
        for _ in range(2000):
            h.observe(0.5)

    threads = [threading.Thread(target=observe) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = h.snapshot()
    assert snap.cumulative() == [(0.1, 0), (1.0, 8000), (float("inf"), 8000)]
    assert snap.total == pytest.approx(4000.0)
