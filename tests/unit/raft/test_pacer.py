"""The Raft tick pacer: the short tick while there is work, the long one once idle for ``linger_s``."""

from __future__ import annotations

import pytest

from p2porch.raft.pacer import LATENESS_WINDOW_S, TIMER_SLACK_S, TickLateness, TickPacer


def test_idle_until_work_then_busy_for_the_linger_then_idle_again() -> None:
    pacer = TickPacer(busy_period_s=0.005, idle_period_s=0.05, linger_s=1.0)
    assert pacer.period(0.0, commit_index=7, last_applied=7, in_flight=False) == 0.005  # first sight: moved
    assert pacer.period(1.5, commit_index=7, last_applied=7, in_flight=False) == 0.05
    assert pacer.work(2.0) == 0.005  # a proposal is about to go out
    assert pacer.period(2.5, commit_index=7, last_applied=7, in_flight=False) == 0.005
    assert pacer.period(3.1, commit_index=7, last_applied=7, in_flight=False) == 0.05


def test_in_flight_commits_and_unapplied_entries_count_as_work() -> None:
    pacer = TickPacer(busy_period_s=0.005, idle_period_s=0.05, linger_s=1.0)
    pacer.period(0.0, 7, 7, False)
    assert pacer.period(5.0, 7, 7, True) == 0.005  # a batch is in flight
    assert pacer.period(7.0, 7, 7, False) == 0.05
    assert pacer.period(9.0, 8, 7, False) == 0.005  # the commit index moved
    assert pacer.period(11.0, 8, 7, False) == 0.005  # an entry is committed but not applied yet
    assert pacer.period(11.5, 8, 8, False) == 0.005  # applied: lingers from the last work seen
    assert pacer.period(12.1, 8, 8, False) == 0.05


def test_an_idle_tick_never_sleeps_past_the_next_raft_timer() -> None:
    pacer = TickPacer(busy_period_s=0.005, idle_period_s=0.5, linger_s=1.0)
    pacer.period(0.0, 7, 7, False)
    # a follower whose election deadline is 2 s away sleeps the whole idle period
    assert pacer.period(5.0, 7, 7, False, timer_at=7.0) == 0.5
    # the leader's next heartbeat in 100 ms: it wakes for it (plus the slack), not 400 ms later
    assert abs(pacer.period(6.0, 7, 7, False, timer_at=6.1) - (0.1 + TIMER_SLACK_S)) < 1e-9
    # almost due: the short period, never less
    assert pacer.period(7.0, 7, 7, False, timer_at=7.001) == 0.005
    # past due after a tick (pysyncobj did not act on it, e.g. no peer connected): no busy loop
    assert pacer.period(8.0, 7, 7, False, timer_at=7.9) == 0.5
    # busy: the short period whatever the timers say
    assert pacer.period(9.0, 8, 7, False, timer_at=100.0) == 0.005


def test_the_leader_rounds_at_the_heartbeat_while_busy_and_at_the_idle_period_once_idle() -> None:
    pacer = TickPacer(busy_period_s=0.005, idle_period_s=0.5, linger_s=1.0)
    assert pacer.round_period(0.0, busy_s=0.1, idle_s=0.2) == 0.2  # nothing seen yet: idle
    pacer.period(1.0, 7, 7, False)  # first sight of the commit index: work
    assert pacer.round_period(1.5, busy_s=0.1, idle_s=0.2) == 0.1
    assert pacer.round_period(2.1, busy_s=0.1, idle_s=0.2) == 0.2  # a second after the last work
    assert pacer.round_period(2.1, busy_s=0.1, idle_s=0.2, lagging=True) == 0.1  # a peer catching up
    pacer.work(3.0)  # a proposal: the very next round is at the heartbeat again
    assert pacer.round_period(3.0, busy_s=0.1, idle_s=0.2) == 0.1
    # an idle period shorter than the heartbeat (or 0: the setting off) never speeds rounds up
    assert pacer.round_period(9.0, busy_s=0.1, idle_s=0.05) == 0.1
    assert pacer.round_period(9.0, busy_s=0.1, idle_s=0.0) == 0.1


def test_idle_is_no_work_within_the_linger() -> None:
    pacer = TickPacer(busy_period_s=0.005, idle_period_s=0.5, linger_s=1.0)
    assert pacer.idle(0.0)  # nothing seen yet
    pacer.work(10.0)
    assert not pacer.idle(10.5)
    assert pacer.idle(11.0)
    pacer.period(12.0, commit_index=3, last_applied=3, in_flight=False)  # a moved commit index is work
    assert not pacer.idle(12.9) and pacer.idle(13.0)


def test_tick_lateness_is_the_largest_since_the_last_take() -> None:
    lateness = TickLateness()
    lateness.tick(0.0, 0.1)
    lateness.tick(0.6, 0.1)  # 0.5 s late
    lateness.tick(0.8, 0.1)  # 0.1 s late
    assert lateness.take() == pytest.approx(0.5)
    assert lateness.take() == 0.0
    lateness.tick(0.9, 0.1)  # on time
    assert lateness.take() == pytest.approx(0.0)


def test_a_late_tick_outside_the_window_no_longer_counts() -> None:
    """A follower's late tick long ago must not cap the leadership it wins later."""
    lateness = TickLateness()
    lateness.tick(0.0, 0.1)
    lateness.tick(2.1, 0.1)  # 2 s late, never taken (a follower: nobody reads it)
    now = 2.1
    while now < 2.1 + LATENESS_WINDOW_S + 1.0:  # punctual ticks
        now += 0.1
        lateness.tick(now, 0.1)
    assert lateness.take() < 0.01
