"""When a burst of changes is acted on (p2porch/debounce.py, pure)."""

from __future__ import annotations

import pytest

from p2porch.debounce import CostShare, Debounce


def test_nothing_pending_is_never_due() -> None:
    debounce = Debounce(0.05, 0.25)
    assert debounce.due_at() is None and not debounce.take(100.0)


def test_a_lone_change_is_due_after_the_quiet_time_and_taken_once() -> None:
    debounce = Debounce(0.05, 0.25)
    debounce.change(10.0)
    assert debounce.due_at() == pytest.approx(10.05)
    assert not debounce.take(10.04)
    assert debounce.take(10.05)
    assert not debounce.take(10.06) and debounce.due_at() is None


def test_a_steady_stream_of_changes_is_acted_on_at_most_max_delay_after_the_first() -> None:
    debounce = Debounce(0.05, 0.25)
    taken = []
    for i in range(100):  # a change every 20 ms for 2 s: never quiet for 50 ms
        now = 10.0 + i * 0.02
        if debounce.take(now):
            taken.append(round(now, 2))
        debounce.change(now)
    # one pass per 0.26 s (the first tick at or after 0.25 s past the burst's first change), not 100
    assert taken == [10.26, 10.52, 10.78, 11.04, 11.3, 11.56, 11.82]


def test_the_quiet_time_cannot_exceed_the_maximum_delay() -> None:
    with pytest.raises(ValueError):
        Debounce(1.0, 0.5)


def test_cost_share_spaces_rebuilds_by_their_cost() -> None:

    pacing = CostShare(share=0.25, max_gap_s=5.0)
    assert pacing.wait_s(0.0) == 0.0  # nothing ran yet
    pacing.done(started=10.0, ended=10.4)  # 0.4 s: the next waits 3 x 0.4 = 1.2 s
    assert pacing.wait_s(10.4) == pytest.approx(1.2)
    assert pacing.wait_s(11.0) == pytest.approx(0.6)
    assert pacing.wait_s(11.61) == 0.0
    pacing.done(started=20.0, ended=20.001)  # a cheap rebuild is barely delayed
    assert pacing.wait_s(20.001) == pytest.approx(0.003)
    pacing.done(started=30.0, ended=33.0)  # the gap is bounded
    assert pacing.wait_s(33.0) == pytest.approx(5.0)
    pacing.done(started=40.0, ended=39.0)  # a clock that went back counts as no cost
    assert pacing.wait_s(39.0) == 0.0


def test_cost_share_refuses_a_share_outside_0_1() -> None:

    for share in (0.0, 1.5):
        with pytest.raises(ValueError):
            CostShare(share=share, max_gap_s=1.0)
    with pytest.raises(ValueError):
        CostShare(share=0.5, max_gap_s=-1.0)
