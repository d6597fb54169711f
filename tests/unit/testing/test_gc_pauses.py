"""The gc pause tally: per generation count, total and longest; a stop without a start is ignored."""

from __future__ import annotations

import gc

from p2porch.testing.gc_pauses import GcPauses, install


def test_collections_are_tallied_per_generation() -> None:
    pauses = GcPauses()
    pauses.start(10.0)
    assert pauses.stop(2, 11.5) == 1.5
    pauses.start(20.0)
    assert pauses.stop(2, 20.25) == 0.25
    pauses.start(30.0)
    assert pauses.stop(0, 30.001) is not None
    summary = pauses.summary()
    assert summary["gen2"] == {"count": 2, "total_s": 1.75, "longest_s": 1.5}
    assert summary["gen0"]["count"] == 1 and summary["gen1"]["count"] == 0


def test_a_stop_without_its_start_or_of_no_generation_counts_nothing() -> None:
    pauses = GcPauses()
    assert pauses.stop(2, 5.0) is None
    pauses.start(1.0)
    assert pauses.stop(7, 2.0) is None
    assert pauses.summary()["gen2"]["count"] == 0


def test_installed_it_sees_a_real_full_collection() -> None:
    pauses = GcPauses()
    install(pauses)
    try:
        gc.collect()
    finally:
        gc.callbacks.pop()
    assert pauses.summary()["gen2"]["count"] >= 1
