"""A voter restarted as a read-only replica follows the leader even after it raised its own term.

Regression (issue 20, multi-site test on the merged main): autopilot removed a voter, the removed
node kept starting elections (its own term went up, nobody answered), then restarted as a replica
with that term saved. pysyncobj ignores every ``append_entries`` whose term is below its own, and a
replica never sends a vote request that would tell the leader: the node never caught up again.
A real pysyncobj replica (our ``_Bridge``, durable file journal, no tick thread) gets the leader's
heartbeat and must acknowledge it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pysyncobj import SyncObjConf
from pysyncobj.node import TCPNode

from p2porch.raft.journal import DurableJournal, lower_replica_term
from p2porch.raft.store import _Bridge, _install_durable_journal
from p2porch.testing.raftprocs import free_ports


class _Owner:
    def _apply_on_raft_thread(self, batch: bytes) -> list[Any]:
        return []


def _journal_of_removed_voter(path: Path) -> None:
    """Entries of terms 1-3 (the last leader's term is 3), then elections nobody answered up to 9."""
    journal = DurableJournal(path)
    for idx, term in ((1, 1), (2, 2), (3, 3), (4, 3)):
        journal.add(b"\x00", idx, term)
    journal.setCurrentTerm(9, "10.0.0.3:7947")
    journal._destroy()


def _replica(tmp_path: Path, leader: str) -> tuple[_Bridge, list[dict[str, Any]]]:
    _install_durable_journal()
    conf = SyncObjConf(
        password="p2rf-unit",
        autoTick=False,
        journalFile=str(tmp_path / "raft.journal"),
        useFork=False,
        dynamicMembershipChange=True,
    )
    so = _Bridge(_Owner(), None, [leader], conf)  # type: ignore[arg-type]
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
    journal._destroy()
    assert lower_replica_term(path) is None  # already at its log's term: nothing to do
