"""A voter restarted as a read-only replica follows the leader even after it raised its own term.

Regression (issue 20, multi-site test on the merged main): autopilot removed a voter, the removed
node kept starting elections (its own term went up, nobody answered), then restarted as a replica
with that term saved. pysyncobj ignores every ``append_entries`` whose term is below its own, and a
replica never sends a vote request that would tell the leader: the node never caught up again.
A real pysyncobj replica (our ``RaftBridge``, durable file journal, no tick thread) gets the leader's
heartbeat and must acknowledge it.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pysyncobj import SyncObjConf
from pysyncobj.node import TCPNode

from p2porch.raft.bridge import RaftBridge, install_durable_journal
from p2porch.raft.journal import DurableJournal
from p2porch.raft.journal_start import lower_replica_term, restore_vote_floor
from p2porch.testing.raftprocs import free_ports

VOTED_FOR = "10.0.0.3:7947"  # the candidate this node voted for in term 9, as a voter


class _Owner:
    config = SimpleNamespace(  # what RaftBridge reads
        replica_beat_s=1.0, heartbeat_answer_period_s=0.5, election_timeout_min_s=0.5
    )

    def _apply_on_raft_thread(self, batch: bytes) -> list[Any]:
        return []


def _journal_of_removed_voter(path: Path) -> None:
    """Entries of terms 1-3 (the last leader's term is 3), then elections nobody answered up to 9."""
    journal = DurableJournal(path)
    for idx, term in ((1, 1), (2, 2), (3, 3), (4, 3)):
        journal.add(b"\x00", idx, term)
    journal.setCurrentTerm(9, VOTED_FOR)
    journal._destroy()


def _replica(
    tmp_path: Path, leader: str, self_addr: str | None = None
) -> tuple[RaftBridge, list[dict[str, Any]]]:
    """A real pysyncobj node on the journal in ``tmp_path`` (a voter given ``self_addr``); its sends kept."""
    install_durable_journal()
    conf = SyncObjConf(
        password="p2rf-unit",
        autoTick=False,
        journalFile=str(tmp_path / "raft.journal"),
        useFork=False,
        dynamicMembershipChange=True,
    )
    partners = [leader] if self_addr is None else [self_addr, leader, VOTED_FOR]
    so = RaftBridge(_Owner(), self_addr, partners, conf)  # type: ignore[arg-type]
    sent: list[dict[str, Any]] = []
    so._SyncObj__transport.send = lambda node, message: sent.append(message) or True
    return so, sent


def test_replica_started_with_a_raised_term_accepts_the_leaders_heartbeat(tmp_path: Path) -> None:
    leader = f"127.0.0.1:{free_ports(1)[0]}"
    _journal_of_removed_voter(tmp_path / "raft.journal")
    so, sent = _replica(tmp_path, leader)
    try:
        heartbeat = {
            "type": "append_entries",
            "term": 4,  # the leader's term: above every entry's term, below the replica's old 9
            "commit_index": 4,
            "entries": [(b"\x00", 5, 4)],
            "prevLogIdx": 4,
            "prevLogTerm": 3,
        }
        so._SyncObj__onMessageReceived(TCPNode(leader), heartbeat)
        assert sent == [{"type": "next_node_idx", "next_node_idx": 6, "reset": False, "success": True}]
        assert so._SyncObj__raftCurrentTerm == 4 and so._SyncObj__raftLeader == TCPNode(leader)
        stale = {**heartbeat, "term": 2, "entries": [], "prevLogIdx": 5, "prevLogTerm": 4}
        sent.clear()
        so._SyncObj__onMessageReceived(TCPNode(leader), stale)  # an older leader is still refused
        assert sent == []
    finally:
        so.destroy()


def test_lower_replica_term_keeps_a_term_its_log_reached_and_never_creates_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    assert lower_replica_term(path) is None and not path.exists()
    _journal_of_removed_voter(path)
    assert lower_replica_term(path) == (9, 3)
    journal = DurableJournal(path)
    assert (journal.getCurrentTerm(), journal.getVotedForNodeId(), len(journal)) == (3, None, 4)
    assert journal.vote_floor() == (9, VOTED_FOR)  # kept for a later start as a voter
    journal._destroy()
    assert lower_replica_term(path) is None  # already at its log's term: nothing to do


def test_a_replica_promoted_to_voter_never_votes_again_in_a_term_it_voted_in(tmp_path: Path) -> None:
    """The replica start lowered term 9 (and its vote) to 3; started as a voter again it is back at term 9
    with its vote, so a second candidate of term 9 (or older) gets no vote; term 10 is new for it."""
    path = tmp_path / "raft.journal"
    leader, me, other = (f"127.0.0.1:{port}" for port in free_ports(3))
    _journal_of_removed_voter(path)
    replica, _ = _replica(tmp_path, leader)  # lowers the term on start
    assert replica._SyncObj__raftCurrentTerm == 3
    replica.destroy()
    voter, sent = _replica(tmp_path, leader, self_addr=me)
    try:
        assert (voter._SyncObj__raftCurrentTerm, voter._SyncObj__votedForNodeId) == (9, VOTED_FOR)

        def ask(term: int) -> None:
            request = {"type": "request_vote", "term": term, "last_log_index": 4, "last_log_term": 3}
            voter._SyncObj__onMessageReceived(TCPNode(other), request)

        for term in (4, 9):  # a term the replica start had forgotten, and the one it voted in
            ask(term)
        assert sent == [] and voter._SyncObj__votedForNodeId == VOTED_FOR
        ask(10)
        assert sent == [{"type": "response_vote", "term": 10}]
    finally:
        voter.destroy()
    journal = DurableJournal(path)
    assert (journal.getCurrentTerm(), journal.getVotedForNodeId(), journal.vote_floor()) == (10, other, None)
    journal._destroy()


def test_the_vote_floor_keeps_the_highest_term_and_a_voter_start_keeps_a_higher_term(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    _journal_of_removed_voter(path)
    assert lower_replica_term(path) == (9, 3)
    journal = DurableJournal(path)
    journal.setCurrentTerm(5, None)  # the replica followed a leader of term 5 (no entry of it yet)
    journal._destroy()
    assert lower_replica_term(path) == (5, 3)  # restarted as a replica again: 9 stays the floor
    assert restore_vote_floor(path) == (3, 9)
    journal = DurableJournal(path)
    assert (journal.getCurrentTerm(), journal.getVotedForNodeId(), journal.vote_floor()) == (
        9,
        VOTED_FOR,
        None,
    )
    journal.lower_term(3)
    journal.setCurrentTerm(12, None)  # a leader of term 12 seen as a replica: above the floor
    journal._destroy()
    assert restore_vote_floor(path) is None  # nothing to raise: the floor is dropped, term 12 kept
    journal = DurableJournal(path)
    assert (journal.getCurrentTerm(), journal.vote_floor()) == (12, None)
    journal._destroy()
    assert restore_vote_floor(tmp_path / "absent") is None and not (tmp_path / "absent").exists()
