"""The Raft tick pacer: the short tick while there is work, the long one at once after; the leader's
rounds idle once no work was seen for ``linger_s``."""

from __future__ import annotations

import math

import pytest

from p2porch.raft.pacer import LATENESS_WINDOW_S, TIMER_SLACK_S, TickLateness, TickPacer


def test_idle_until_work_then_busy_while_it_lasts_then_idle_again() -> None:
    pacer = TickPacer(busy_period_s=0.005, idle_period_s=0.05, linger_s=1.0)
    assert pacer.period(0.0, commit_index=7, last_applied=7, in_flight=False) == 0.05  # all applied
    assert pacer.work(2.0) == 0.005  # a proposal is about to go out
    assert pacer.period(2.001, commit_index=7, last_applied=7, in_flight=True) == 0.005
    assert pacer.period(2.003, commit_index=8, last_applied=8, in_flight=False) == 0.05  # answered


def test_in_flight_commits_and_unapplied_entries_count_as_work() -> None:
    pacer = TickPacer(busy_period_s=0.005, idle_period_s=0.05, linger_s=1.0)
    pacer.period(0.0, 7, 7, False)
    assert pacer.period(5.0, 7, 7, True) == 0.005  # a batch is in flight
    assert pacer.period(7.0, 7, 7, False) == 0.05
    assert pacer.period(9.0, 8, 7, False) == 0.005  # the commit index moved, not applied yet
    assert pacer.period(11.0, 8, 7, False) == 0.005  # an entry is committed but not applied yet
    assert pacer.period(11.5, 8, 8, False) == 0.05  # applied: the tick does not linger


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
    assert lateness.take().late_s == pytest.approx(0.5)
    assert lateness.take().late_s == 0.0
    lateness.tick(0.9, 0.1)  # on time
    assert lateness.take().late_s == pytest.approx(0.0)


def test_a_late_tick_outside_the_window_no_longer_counts() -> None:
    """A follower's late tick long ago must not cap the leadership it wins later."""
    lateness = TickLateness()
    lateness.tick(0.0, 0.1)
    lateness.tick(2.1, 0.1)  # 2 s late, never taken (a follower: nobody reads it)
    now = 2.1
    while now < 2.1 + LATENESS_WINDOW_S + 1.0:  # punctual ticks
        now += 0.1
        lateness.tick(now, 0.1)
    taken = lateness.take()
    assert taken.late_s < 0.01 and taken.share < 0.02


def punctual(lateness: TickLateness, start: float, seconds: float, period: float = 0.005) -> float:
    now = start
    while now < start + seconds:
        now += period
        lateness.tick(now, period)
    return now


def test_the_share_is_of_the_window_the_followers_held_before_the_late_tick() -> None:
    """A calm leader's followers hold the configured minimum: a 0.3 s late tick is 0.6 of it. Once
    the leader has been late by 1 s again and again, its followers' estimate (and its own) has widened
    to the cap, and a 0.6 s late tick is a fifth of it; a 2 s stall then is over two thirds."""
    lateness = TickLateness(floor_s=0.5, cap_s=3.0)
    now = punctual(lateness, 0.0, 5.0)
    lateness.take()
    lateness.tick(now + 0.005 + 0.3, 0.005)
    taken = lateness.take()
    assert taken.late_s == pytest.approx(0.3) and taken.share == pytest.approx(0.6)
    assert taken.window_s == pytest.approx(0.5)
    now += 0.305
    for _ in range(20):  # 1 s late every 1.4 s (a machine at load 15-20)
        now = punctual(lateness, now, 0.4)
        now += 1.005
        lateness.tick(now, 0.005)
    lateness.take()
    now = punctual(lateness, now, 0.4)
    lateness.tick(now + 0.605, 0.005)
    taken = lateness.take()
    assert taken.late_s == pytest.approx(0.6) and taken.share == pytest.approx(0.2)
    assert taken.window_s == pytest.approx(3.0)
    now = punctual(lateness, now + 0.605, 0.4)
    lateness.tick(now + 2.005, 0.005)
    # the last 1 s stall is 3.4 s old at the end of this one: its deviation has decayed, the window is
    # 4 x 1.0 x exp(-0.34) = 2.85 s
    assert lateness.take().share == pytest.approx(2.0 / (4.0 * math.exp(-0.34)), rel=0.02)


def test_the_estimate_falls_back_to_the_configured_minimum_when_the_ticks_are_punctual_again() -> None:
    lateness = TickLateness(floor_s=0.5, cap_s=3.0)
    lateness.tick(0.0, 0.005)
    lateness.tick(2.005, 0.005)  # a 2 s stall: the window widens to the cap
    now = punctual(lateness, 2.005, 1.0)
    lateness.take()
    lateness.tick(now + 0.305, 0.005)
    assert lateness.take().share == pytest.approx(0.1)
    now = punctual(lateness, now + 0.305, 60.0)  # a minute later the stall is forgotten
    lateness.tick(now + 0.305, 0.005)
    assert lateness.take().share == pytest.approx(0.6)


def test_the_window_taken_is_the_one_of_the_largest_share() -> None:
    lateness = TickLateness(floor_s=0.5, cap_s=3.0)
    lateness.tick(0.0, 0.005)
    lateness.tick(1.005, 0.005)  # 1 s late while the followers held 0.5 s: twice the window
    now = punctual(lateness, 1.005, 0.5)
    lateness.tick(now + 1.205, 0.005)  # later, 1.2 s late against the widened window
    taken = lateness.take()
    assert taken.late_s == pytest.approx(1.2) and taken.share == pytest.approx(2.0)
    assert taken.window_s == pytest.approx(0.5)


def test_no_store_ticks_short_for_the_linger_after_a_commit() -> None:
    """A store's work wakes its poll (a peer's message, a proposal's notifier, the journal's sync): a moved
    commit index keeps neither a replica nor a voter nor the leader at the short tick for ``linger_s``
    (the leader's rounds still count it as work)."""
    pacer = TickPacer(busy_period_s=0.005, idle_period_s=2.0, linger_s=1.0)
    pacer.period(0.0, 7, 7, False)
    assert pacer.period(5.0, 8, 8, False) == 2.0  # the commit index moved, applied already
    assert pacer.period(5.5, 8, 8, False) == 2.0
    assert pacer.period(6.0, 9, 8, False) == 0.005  # committed, not applied yet
    assert pacer.period(6.0, 9, 9, True) == 0.005  # its own proposal in flight
    assert pacer.period(6.1, 9, 9, False) == 2.0  # answered: long again at once
    # a due Raft timer (an election deadline, the next round, a connection retry) cuts the long tick short
    assert pacer.period(7.0, 9, 9, False, timer_at=7.5) == pytest.approx(0.5 + TIMER_SLACK_S)
    assert not pacer.idle(6.5)  # the leader-round notion of idle is unchanged (work was seen)
    assert pacer.round_period(6.5, busy_s=0.1, idle_s=0.2) == 0.1
