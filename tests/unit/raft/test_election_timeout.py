"""ElectionTimeout (pure, ``now`` injected) and the adapted timeout in a real pysyncobj voter (our
RaftBridge, no tick thread, pysyncobj's clock replaced)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pysyncobj.syncobj as _pso
import pytest
from pysyncobj.node import TCPNode

from p2porch.raft.election_timeout import ElectionTimeout, election_cap_s, lost_leader_delay_s
from p2porch.raft.pre_vote_elections import PRE_VOTE
from p2porch.raft.timing import DEFAULT, timing_for_rtt
from p2porch.testing.raft_bridges import captured_voter

FLOOR, CAP, BEAT = 0.5, 3.0, 0.1


def estimator() -> ElectionTimeout:
    return ElectionTimeout(floor_s=FLOOR, cap_s=CAP, beat_s=BEAT)


def beats(est: ElectionTimeout, leader: str, term: int, start: float, gaps: list[float]) -> float:
    """The leader's messages after ``gaps`` from ``start``; returns the time of the last one."""
    now = start
    est.heard(leader, term, now)
    for gap in gaps:
        now += gap
        est.heard(leader, term, now)
    return now


def test_heartbeats_at_the_period_keep_the_configured_minimum() -> None:
    est = estimator()
    rng = random.Random(7)
    now = beats(est, "a", 3, 0.0, [rng.uniform(0.08, 0.2) for _ in range(2000)])  # a healthy leader's jitter
    assert est.samples == 2000
    assert est.minimum(now) == FLOOR


def test_long_gaps_grow_the_minimum_past_the_gaps() -> None:
    est = estimator()
    now = beats(est, "a", 3, 0.0, [BEAT] * 20)
    now = beats(est, "a", 3, now + 1.5, [BEAT] * 10)  # one 1.5 s stall, then heartbeats for a second
    assert 1.5 < est.minimum(now) <= CAP


def test_a_loaded_leaders_gaps_stop_timing_out_once_learned() -> None:
    """Gaps of 0.5-1.1 s (the lead's 1,000 x 100,000 run): after a few, none reaches the minimum."""
    est = estimator()
    rng = random.Random(19)
    now = beats(est, "a", 3, 0.0, [BEAT] * 10)
    timed_out = []
    for i in range(300):
        gap = rng.uniform(0.5, 1.1) if i % 3 == 0 else rng.uniform(0.1, 0.4)
        timed_out.append(gap >= est.minimum(now + gap))  # would this silence have counted as a death?
        now += gap
        est.heard("a", 3, now)
    assert any(timed_out[:5])  # the configured 0.5 s would have deposed it
    assert not any(timed_out[5:])


def test_it_decays_back_to_the_configured_minimum_with_time_not_samples() -> None:
    est = estimator()
    now = beats(est, "a", 3, 0.0, [BEAT] * 10 + [2.0])
    assert est.minimum(now) > 2.0
    now = beats(est, "a", 3, now, [BEAT] * 50)  # 5 s of heartbeats (50 samples): it still holds the stall
    assert est.minimum(now) > 2.0
    now = beats(est, "a", 3, now, [BEAT] * 150)  # 20 s: on its way back
    assert FLOOR < est.minimum(now) < 2.0
    now = beats(est, "a", 3, now, [BEAT] * 600)  # a minute later it is back to the configured window
    assert est.minimum(now) == FLOOR


def test_it_is_clamped_at_the_cap() -> None:
    est = estimator()
    now = beats(est, "a", 3, 0.0, [BEAT, 30.0, BEAT])
    assert est.minimum(now) == CAP


def test_gaps_across_a_change_of_leader_are_no_samples() -> None:
    est = estimator()
    now = beats(est, "a", 3, 0.0, [BEAT] * 10)
    assert not est.heard("b", 4, now + 2.0)  # an election's silence, another node
    assert not est.heard("a", 5, now + 4.0)  # the same node, leading again in a later term
    assert est.samples == 10 and est.minimum(now + 4.0) == FLOOR
    est.heard("a", 5, now + 4.1)
    assert est.samples == 11


def test_a_lost_leader_starts_a_new_run_of_gaps() -> None:
    est = estimator()
    now = beats(est, "a", 3, 0.0, [BEAT] * 10)
    est.lost()
    assert not est.heard("a", 3, now + 2.5)  # reconnected: the time it was unreachable is no gap
    assert est.minimum(now + 2.5) == FLOOR


def test_the_cap_is_five_maxima_within_the_connection_timeout() -> None:
    assert election_cap_s(DEFAULT.election_max_s, 3.0) == 3.0  # the defaults: the 3 s connection timeout
    assert election_cap_s(1.2, 10.0) == pytest.approx(6.0)
    far = timing_for_rtt(0.2)  # far voters: pysyncobj's connection timeout is at least their maximum
    assert election_cap_s(far.election_max_s, max(3.0, far.election_max_s)) == far.election_max_s


# --- in a real pysyncobj voter ----------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def voter(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, list[TCPNode], list[Any], Clock]]:
    clock = Clock()
    monkeypatch.setattr(_pso, "monotonicTime", clock)  # pysyncobj's clock and ours (pre_vote_elections)
    with captured_voter("p2el-unit", 0.4) as (so, others, sent):  # pysyncobj's default window 0.4-1.4 s
        yield so, others, sent, clock


def heartbeat(term: int) -> dict[str, Any]:
    return {
        "type": "append_entries", "term": term, "commit_index": 0, "entries": [],
        "prevLogIdx": 1, "prevLogTerm": 0,
    }  # fmt: skip


def slow_leader(so: Any, leader: TCPNode, clock: Clock, gap_s: float) -> int:
    """``leader`` heartbeats every 0.1 s with one ``gap_s`` silence; returns the term."""
    term = so._SyncObj__raftCurrentTerm
    for gap in [0.1] * 5 + [gap_s] + [0.1] * 5:
        clock.now += gap
        so._SyncObj__onMessageReceived(leader, heartbeat(term))
    return term


def test_a_voter_that_learned_a_slow_leader_refuses_a_pre_vote_in_its_silence(voter: Any) -> None:
    so, (a, b), sent, clock = voter
    term = slow_leader(so, b, clock, 1.5)  # b leads, once silent for 1.5 s
    clock.now += 1.0  # silent again for longer than the configured 0.4 s hold
    so._SyncObj__onMessageReceived(
        a, {"type": PRE_VOTE, "term": term + 1, "last_log_index": 1, "last_log_term": 0}
    )
    assert sent[-1][1]["granted"] is False
    assert so._SyncObj__raftElectionDeadline - clock.now > 0.5  # its own deadline is past 1.5 s too


def test_a_voter_that_heard_only_steady_heartbeats_keeps_the_configured_window(voter: Any) -> None:
    so, (a, b), sent, clock = voter
    term = slow_leader(so, b, clock, 0.1)
    deadline = so._SyncObj__raftElectionDeadline - clock.now
    assert 0.4 <= deadline <= 1.4
    clock.now += 0.45
    so._SyncObj__onMessageReceived(
        a, {"type": PRE_VOTE, "term": term + 1, "last_log_index": 1, "last_log_term": 0}
    )
    assert sent[-1][1]["granted"] is True


def test_a_dropped_leader_connection_brings_the_deadline_back_to_the_configured_window(voter: Any) -> None:
    so, (a, b), sent, clock = voter
    slow_leader(so, b, clock, 2.0)
    assert so._SyncObj__raftElectionDeadline - clock.now > 1.4  # adapted: beyond the configured window
    clock.now += 0.05
    so._SyncObj__onNodeDisconnected(TCPNode(b.id))  # the leader's process died: its connection closed
    assert so._SyncObj__raftElectionDeadline - clock.now <= 1.4


def test_a_dropped_leader_connection_waits_the_windows_width_not_its_minimum(
    voter: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The configured minimum waits out a live leader's gaps; a closed connection is none: the pre-vote
    comes within the window's width (1.0 s here), not its minimum plus that (1.4 s)."""
    so, (a, b), sent, clock = voter
    slow_leader(so, b, clock, 2.0)
    monkeypatch.setattr(random, "random", lambda: 0.99)  # the draw at the window's top
    clock.now += 0.05
    so._SyncObj__onNodeDisconnected(TCPNode(b.id))
    assert so._SyncObj__raftElectionDeadline - clock.now == pytest.approx(0.99)


def test_the_delay_after_a_lost_leader_spans_the_windows_width() -> None:
    assert lost_leader_delay_s(0.5, 1.2, 0.0) == 0.0
    assert lost_leader_delay_s(0.5, 1.2, 0.5) == pytest.approx(0.35)
    assert lost_leader_delay_s(0.5, 1.2, 1.0) == pytest.approx(0.7)
    assert lost_leader_delay_s(0.5, 1.2, 7.0) == pytest.approx(0.7)  # a draw out of range is clamped
    assert lost_leader_delay_s(1.2, 0.5, 0.5) == 0.0  # no width: at once


def test_the_rule_before_the_tenth_round_waits_the_minimum_too() -> None:
    """``wait_minimum`` (the failover benchmark's baseline): minimum + width x draw."""
    assert lost_leader_delay_s(0.5, 1.2, 0.0, wait_minimum=True) == pytest.approx(0.5)
    assert lost_leader_delay_s(0.5, 1.2, 0.5, wait_minimum=True) == pytest.approx(0.85)
    assert lost_leader_delay_s(0.5, 1.2, 7.0, wait_minimum=True) == pytest.approx(1.2)


def test_a_store_process_told_to_wait_the_minimum_uses_the_old_rule_after_a_drop(
    voter: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m p2porch.raft.node --lost-leader-delay window``: the deadline after the drop is the
    minimum plus the draw times the width (0.4 + 0.99 x 1.0 here), where the rule gives 0.99 x 1.0."""
    from p2porch.raft import node, pre_vote_elections

    monkeypatch.setattr(pre_vote_elections, "lost_leader_delay_s", lost_leader_delay_s)
    node.lost_leader_rule("window")
    so, (a, b), sent, clock = voter
    slow_leader(so, b, clock, 2.0)  # adapted: its own deadline is later than either rule's
    monkeypatch.setattr(random, "random", lambda: 0.99)
    so._SyncObj__onNodeDisconnected(TCPNode(b.id))
    conf = so._SyncObj__conf
    expected = conf.raftMinTimeout + 0.99 * (conf.raftMaxTimeout - conf.raftMinTimeout)
    assert so._SyncObj__raftElectionDeadline - clock.now == pytest.approx(expected)


def test_a_deadline_passing_inside_pysyncobjs_tick_starts_no_election_without_a_pre_vote(voter: Any) -> None:
    so, (a, b), sent, clock = voter
    del so._SyncObj__connectedToAnyone  # pysyncobj's own check (through the mixin's gate)
    so._SyncObj__connectedNodes.update({a, b})
    term = slow_leader(so, b, clock, 0.1)
    so._SyncObj__raftElectionDeadline = clock.now + 0.01  # not due when our check runs
    timer = so._SyncObj__raftLog.onOneSecondTimer

    def slow_timer() -> None:  # the journal's one-second fsync, seconds long under load
        clock.now += 2.0
        timer()

    so._SyncObj__raftLog.onOneSecondTimer = slow_timer
    so._onTick(0.0)
    assert so._SyncObj__raftCurrentTerm == term
    assert not any(m["type"] == "request_vote" for _, m in sent)
    so._SyncObj__raftLog.onOneSecondTimer = timer
    so._SyncObj__connectedNodes.update({a, b})  # the transport's real connection attempts may have failed
    before = len(sent)
    so._onTick(0.0)  # the next tick sees the deadline passed: a pre-vote first, as always
    assert so._SyncObj__raftCurrentTerm == term
    assert [m["type"] for _, m in sent[before:] if m["type"] in (PRE_VOTE, "request_vote")] == [PRE_VOTE] * 2


def test_a_deposed_leader_heard_again_in_its_old_term_was_slow_not_dead(voter: Any) -> None:
    so, (a, b), sent, clock = voter
    term = slow_leader(so, b, clock, 0.1)  # b leads
    so._SyncObj__setCurrentTerm(term + 1, None)  # we voted in a later term (a's campaign)
    clock.now += 1.5
    so._SyncObj__onMessageReceived(b, heartbeat(term))  # b's process resumed: its round of the old term
    assert so._election_timeout.samples == 11 and so._election_timeout.minimum(clock.now) > 1.5
    so._SyncObj__onMessageReceived(a, heartbeat(term + 1))  # the new leader: its gaps start here
    clock.now += 0.1
    so._SyncObj__onMessageReceived(b, heartbeat(term))  # the old leader again: no longer the one followed
    assert so._election_timeout.leader == (a, term + 1) and so._election_timeout.samples == 11
