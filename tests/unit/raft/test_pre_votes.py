"""PreVotes (pure) and PreVoteElections in a real pysyncobj voter (our RaftBridge, no tick thread)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pysyncobj.syncobj as _pso
import pytest
from pysyncobj import SyncObjConf
from pysyncobj.node import TCPNode

from p2porch.raft.bridge import RaftBridge
from p2porch.raft.pre_vote_elections import PRE_VOTE, PRE_VOTE_RESPONSE
from p2porch.raft.pre_votes import PreVotes, log_up_to_date
from p2porch.testing.raft_bridges import BridgeTestOwner, Sent, captured_voter
from p2porch.testing.raftprocs import free_ports

FOLLOWER = _pso._RAFT_STATE.FOLLOWER

HOLD = 0.5


def grant(votes: PreVotes, now: float, **kw: Any) -> bool:
    args: dict[str, Any] = dict(
        term=3, current_term=2, candidate_log=(2, 10), own_log=(2, 10), leading=False, hold_s=HOLD, now=now
    )
    return votes.grant(**(args | kw))


def test_a_voter_that_heard_a_leader_recently_refuses() -> None:
    votes = PreVotes()
    assert grant(votes, now=0.0)  # never heard a leader
    votes.heard_leader(10.0)
    assert not grant(votes, now=10.2)
    assert not grant(votes, now=10.49)
    assert grant(votes, now=10.5)  # silent for the minimum election timeout


def test_the_leader_an_old_term_and_a_shorter_log_are_refused() -> None:
    votes = PreVotes()
    assert not grant(votes, now=5.0, leading=True)
    assert not grant(votes, now=5.0, term=2)  # not above our term
    assert not grant(votes, now=5.0, candidate_log=(2, 9))  # shorter log, same term
    assert not grant(votes, now=5.0, candidate_log=(1, 50))  # older last term
    assert grant(votes, now=5.0, candidate_log=(3, 1))  # a later last term wins


def test_log_up_to_date_compares_term_then_index() -> None:
    assert log_up_to_date((2, 10), (2, 10))
    assert log_up_to_date((3, 0), (2, 10))
    assert not log_up_to_date((2, 9), (2, 10))


def test_a_round_is_won_by_a_majority_of_grants_for_its_term() -> None:
    votes = PreVotes()
    assert not votes.start(term=4, voters=5)
    assert not votes.granted_by("a", 3, voters=5)  # another round's term
    assert not votes.granted_by("a", 4, voters=5)  # 2 of 5
    assert not votes.granted_by("a", 4, voters=5)  # the same voter twice counts once
    assert votes.granted_by("b", 4, voters=5)  # 3 of 5
    assert votes.won
    assert not votes.granted_by("c", 4, voters=5)  # already won: reported once
    votes.heard_leader(2.0)  # a leader spoke: the round is moot
    assert not votes.won and votes.round_term is None


def test_a_lone_voter_wins_at_once() -> None:
    assert PreVotes().start(term=1, voters=1)


@pytest.fixture
def voter() -> Iterator[tuple[Any, list[TCPNode], Sent]]:
    with captured_voter("p2ie-unit", HOLD) as made:
        yield made


def heartbeat(term: int) -> dict[str, Any]:
    return {
        "type": "append_entries", "term": term, "commit_index": 0, "entries": [],
        "prevLogIdx": 1, "prevLogTerm": 0,
    }  # fmt: skip


def test_a_voter_answers_pre_votes_and_refuses_while_it_hears_a_leader(voter: Any) -> None:
    so, (a, b), sent = voter
    receive = so._SyncObj__onMessageReceived
    term = so._SyncObj__raftCurrentTerm
    ask = {"type": PRE_VOTE, "term": term + 1, "last_log_index": 1, "last_log_term": 0}
    receive(a, ask)
    assert sent[-1] == (
        a,
        {"type": PRE_VOTE_RESPONSE, "term": term + 1, "granted": True, "current_term": term},
    )
    receive(b, heartbeat(term))  # b leads
    receive(a, ask)
    assert sent[-1] == (
        a,
        {"type": PRE_VOTE_RESPONSE, "term": term + 1, "granted": False, "current_term": term},
    )
    assert so._SyncObj__raftCurrentTerm == term  # a pre-vote never moves the term


def test_a_campaign_waits_for_a_pre_vote_majority(voter: Any) -> None:
    so, (a, b), sent = voter
    term = so._SyncObj__raftCurrentTerm
    so._SyncObj__raftElectionDeadline = 0  # the election timer fired
    so._onTick(0.0)
    asks = [(n, m) for n, m in sent if m["type"] == PRE_VOTE]
    assert sorted(n.id for n, _ in asks) == sorted([a.id, b.id])
    assert asks[0][1]["term"] == term + 1
    assert so._SyncObj__raftCurrentTerm == term and so.pre_vote_rounds == 1  # no term raised yet
    assert not any(m["type"] == "request_vote" for _, m in sent)
    so._SyncObj__onMessageReceived(a, {"type": PRE_VOTE_RESPONSE, "term": term + 1, "granted": False})
    so._onTick(0.0)
    assert so._SyncObj__raftCurrentTerm == term  # a refusal: still no election
    so._SyncObj__onMessageReceived(b, {"type": PRE_VOTE_RESPONSE, "term": term + 1, "granted": True})
    so._onTick(0.0)  # 2 of 3 granted: the real election
    assert so._SyncObj__raftCurrentTerm == term + 1 and so.pre_votes_won == 1
    assert sorted(n.id for n, m in sent if m["type"] == "request_vote") == sorted([a.id, b.id])


def test_a_leader_heard_after_the_round_started_cancels_it(voter: Any) -> None:
    so, (a, b), sent = voter
    term = so._SyncObj__raftCurrentTerm
    so._SyncObj__raftElectionDeadline = 0
    so._onTick(0.0)
    so._SyncObj__onMessageReceived(b, heartbeat(term))  # the leader is alive after all
    so._SyncObj__onMessageReceived(a, {"type": PRE_VOTE_RESPONSE, "term": term + 1, "granted": True})
    so._onTick(0.0)
    assert so._SyncObj__raftCurrentTerm == term and not any(m["type"] == "request_vote" for _, m in sent)


def test_a_late_tick_reads_the_waiting_heartbeat_before_it_campaigns(voter: Any) -> None:
    so, (a, b), sent = voter
    term = so._SyncObj__raftCurrentTerm
    waiting = [heartbeat(term)]  # what the leader sent while this voter's Raft thread was held up

    class Poller:
        def poll(self, timeout: float) -> None:
            while waiting:
                so._SyncObj__onMessageReceived(b, waiting.pop())

    so._poller = Poller()
    so._SyncObj__raftElectionDeadline = 0
    so._onTick(0.0)
    assert so.elections_avoided_by_draining == 1 and so.pre_vote_rounds == 0
    assert not any(m["type"] in (PRE_VOTE, "request_vote") for _, m in sent)


def test_a_dropped_leader_connection_makes_the_voter_grant_at_once(voter: Any) -> None:
    so, (a, b), sent = voter
    receive = so._SyncObj__onMessageReceived
    term = so._SyncObj__raftCurrentTerm
    receive(b, heartbeat(term))  # b leads
    so._SyncObj__onNodeDisconnected(TCPNode(a.id))  # another voter's connection: b is still live
    receive(a, {"type": PRE_VOTE, "term": term + 1, "last_log_index": 1, "last_log_term": 0})
    assert sent[-1][1]["granted"] is False
    so._SyncObj__onNodeDisconnected(TCPNode(b.id))  # the leader's connection dropped
    receive(a, {"type": PRE_VOTE, "term": term + 1, "last_log_index": 1, "last_log_term": 0})
    assert sent[-1][1]["granted"] is True


def test_a_leader_is_live_only_while_its_appends_come_within_the_hold(voter: Any) -> None:
    """outside_config asks: a pointer to a leader that went silent (deposed while this voter was cut
    off) is no live leader, so the new one's appends are taken."""
    so, (_, b), _ = voter
    assert not so.leader_live()  # none heard yet
    so._SyncObj__onMessageReceived(b, heartbeat(so._SyncObj__raftCurrentTerm))
    assert so.leader_live()
    so._pre_votes.heard_leader_at -= so._hold_s(_pso.monotonicTime()) + 1.0  # silent for longer
    assert not so.leader_live() and so._getLeader() == b  # it still names it


def test_a_voter_ahead_of_the_leaders_term_campaigns_without_a_pre_vote(voter: Any) -> None:
    so, (a, b), sent = voter
    so._SyncObj__raftCurrentTerm = 5  # e.g. a replica promoted with its vote floor
    so._SyncObj__onMessageReceived(b, heartbeat(3))  # pysyncobj ignores a lower-term leader
    so._SyncObj__raftElectionDeadline = 0
    so._onTick(0.0)
    assert so._SyncObj__raftCurrentTerm == 6 and so.pre_vote_rounds == 0
    assert sorted(n.id for n, m in sent if m["type"] == "request_vote") == sorted([a.id, b.id])


def test_a_refusal_carries_the_refusers_term(voter: Any) -> None:
    so, (a, _b), sent = voter
    so._SyncObj__raftCurrentTerm = 5  # it voted in a term-5 election that produced no leader
    so._SyncObj__onMessageReceived(a, {"type": PRE_VOTE, "term": 5, "last_log_index": 9, "last_log_term": 4})
    assert sent[-1] == (a, {"type": PRE_VOTE_RESPONSE, "term": 5, "granted": False, "current_term": 5})


def test_a_voter_behind_a_refusers_term_follows_it_and_its_next_round_can_win(voter: Any) -> None:
    # The leader (term 4) crashed; a candidate raised its term to 5 and died before winning; its
    # request_vote reached b (log shorter) but not this voter (log longer). This voter asks for term 5,
    # which b refuses (not above b's term); b asks for 6, which this voter refuses (b's log is shorter).
    # Unless the asker follows b's term, the two refuse each other for ever with 2 of 3 voters alive.
    so, (a, b), sent = voter
    so._SyncObj__raftCurrentTerm = 4
    so._SyncObj__raftElectionDeadline = 0
    so._onTick(0.0)
    assert [m["term"] for _, m in sent if m["type"] == PRE_VOTE] == [5, 5]
    refusal = {"type": PRE_VOTE_RESPONSE, "term": 5, "granted": False, "current_term": 5}
    so._SyncObj__onMessageReceived(b, refusal)
    assert so._SyncObj__raftCurrentTerm == 5 and so._SyncObj__votedForNodeId is None
    assert so._SyncObj__raftState == FOLLOWER
    sent.clear()
    so._SyncObj__raftElectionDeadline = 0
    so._onTick(0.0)
    assert [m["term"] for _, m in sent if m["type"] == PRE_VOTE] == [6, 6]  # a term b can grant
    so._SyncObj__onMessageReceived(b, {"type": PRE_VOTE_RESPONSE, "term": 6, "granted": True})
    so._onTick(0.0)
    assert so._SyncObj__raftCurrentTerm == 6
    assert sorted(n.id for n, m in sent if m["type"] == "request_vote") == sorted([a.id, b.id])


def test_a_refusal_at_our_term_or_below_changes_nothing(voter: Any) -> None:
    so, (_a, b), _sent = voter
    so._SyncObj__raftCurrentTerm = 4
    for their_term in (3, 4, None, "9"):
        refusal = {"type": PRE_VOTE_RESPONSE, "term": 5, "granted": False, "current_term": their_term}
        so._SyncObj__onMessageReceived(b, refusal)
        assert so._SyncObj__raftCurrentTerm == 4


class _Wire:
    """Two real voters of a three-voter cluster whose third voter is dead: what one sends the other
    receives (deep-copied, as over a socket), what goes to the dead one is lost."""

    def __init__(self, voters: dict[str, Any]) -> None:
        self.voters = voters
        self.queue: list[tuple[str, str, dict[str, Any]]] = []
        for addr, so in voters.items():
            so._SyncObj__transport.send = lambda node, message, sender=addr: (
                self.queue.append((sender, node.id, copy.deepcopy(message))) or True
            )
            so._SyncObj__connectedToAnyone = lambda: True

    def deliver(self) -> None:
        while self.queue:
            sender, to, message = self.queue.pop(0)
            receiver = self.voters.get(to)
            if receiver is not None:
                node = next(n for n in receiver._SyncObj__otherNodes if n.id == sender)
                receiver._SyncObj__onMessageReceived(node, message)


def _voter_with_log(me: str, others: list[str], entries: int) -> Any:
    """A voter whose log ends at (term 4, 2 + ``entries``): it led term 4 and appended ``entries``."""
    conf = SyncObjConf(password="p2ie-unit", autoTick=False, dynamicMembershipChange=True)
    so = RaftBridge(BridgeTestOwner(HOLD), me, others, conf)  # type: ignore[arg-type]
    so._SyncObj__raftCurrentTerm = 4
    so._SyncObj__onBecomeLeader()  # its no-op entry at term 4
    for i in range(entries):
        so.apply_entry(b"e%d" % i, callback=lambda res, err: None)
    so._checkCommandsToApply()
    so._SyncObj__setState(FOLLOWER)
    so._SyncObj__raftLeader = None
    return so


def test_two_live_voters_elect_a_leader_after_a_candidate_died_between_them() -> None:
    # The term-4 leader crashed after replicating its last entry to `longer` only; the dead voter then
    # raised its term to 5 and reached `shorter` (which voted for it) before it died too.
    short_addr, long_addr, dead = (f"127.0.0.1:{p}" for p in free_ports(3))
    shorter = _voter_with_log(short_addr, [long_addr, dead], entries=1)
    longer = _voter_with_log(long_addr, [short_addr, dead], entries=2)
    try:
        shorter._SyncObj__setCurrentTerm(5, dead)
        assert shorter._SyncObj__getCurrentLogIndex() < longer._SyncObj__getCurrentLogIndex()
        wire = _Wire({short_addr: shorter, long_addr: longer})
        for turn in range(8):  # their election timers fire in turn
            so = (longer, shorter)[turn % 2]
            so._SyncObj__raftElectionDeadline = 0
            for _ in range(3):  # a pre-vote round, the election, the votes
                so._onTick(0.0)
                wire.deliver()
            if any(v._SyncObj__raftState == _pso._RAFT_STATE.LEADER for v in (shorter, longer)):
                break
        assert longer._SyncObj__raftState == _pso._RAFT_STATE.LEADER  # the longer log wins
        assert shorter._SyncObj__raftCurrentTerm == longer._SyncObj__raftCurrentTerm == 6
    finally:
        shorter.destroy()
        longer.destroy()


def test_a_round_won_for_a_term_since_overtaken_does_not_skip_the_next_pre_vote(voter: Any) -> None:
    so, (a, b), sent = voter
    term = so._SyncObj__raftCurrentTerm
    so._SyncObj__raftElectionDeadline = 0
    so._onTick(0.0)
    so._SyncObj__onMessageReceived(a, {"type": PRE_VOTE_RESPONSE, "term": term + 1, "granted": True})
    assert so._pre_votes.won
    # before its next tick, b's election at the same term reaches it; it votes for b (no leader follows)
    ask = {"type": "request_vote", "term": term + 1, "last_log_index": 1, "last_log_term": 0}
    so._SyncObj__onMessageReceived(b, ask)
    assert so._SyncObj__raftCurrentTerm == term + 1
    sent.clear()
    so._SyncObj__raftElectionDeadline = 0  # its timer fires later, perhaps cut off from the leader by now
    so._onTick(0.0)
    assert so._SyncObj__raftCurrentTerm == term + 1  # no term raised without a new pre-vote majority
    assert [m["term"] for _, m in sent if m["type"] == PRE_VOTE] == [term + 2, term + 2]
    assert not any(m["type"] == "request_vote" for _, m in sent)
