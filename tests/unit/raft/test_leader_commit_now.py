"""``RaftBridge.leader_commit_now`` in a real pysyncobj voter (no tick thread): a leader elected a moment ago
names its election no-op's index, not its commit index, until that no-op commits (pysyncobj commits only
entries of the current term, so the commit index it inherited may miss its predecessor's commits; the
write barrier then waits for this index, read_rounds.plan_write's CATCH_UP)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pysyncobj.syncobj as _pso
import pytest

from p2porch.raft.pre_vote_elections import PRE_VOTE_RESPONSE
from p2porch.testing.raft_bridges import captured_voter


@pytest.fixture
def voter() -> Iterator[tuple[Any, Any, Any]]:
    with captured_voter("p51fi-unit", 0.5) as made:
        yield made


def test_a_new_leader_names_its_election_noop_until_that_commits(voter: Any) -> None:
    so, (a, b), _sent = voter
    so._SyncObj__raftCurrentTerm = 4
    so._SyncObj__onBecomeLeader()  # it led term 4: its no-op and three entries, none committed here
    for i in range(3):
        so.apply_entry(b"e%d" % i, callback=lambda res, err: None)
    so._checkCommandsToApply()
    so._SyncObj__setState(_pso._RAFT_STATE.FOLLOWER)
    so._SyncObj__raftLeader = None
    assert so.leader_commit_now() is None  # it does not lead
    inherited = so._SyncObj__raftCommitIndex
    log_end = so._SyncObj__raftLog[-1][1]
    assert inherited < log_end  # entries another voter may have seen committed (its next leader's view)

    so._SyncObj__raftElectionDeadline = 0  # campaigns for term 5 and wins it
    so._onTick(0.0)
    so._SyncObj__onMessageReceived(b, {"type": PRE_VOTE_RESPONSE, "term": 5, "granted": True})
    so._onTick(0.0)
    so._SyncObj__onMessageReceived(b, {"type": "response_vote", "term": 5})
    assert so._isLeader() and so._SyncObj__noopIDx == log_end + 1  # pysyncobj's own no-op index
    so._onTick(0.0)
    assert so._SyncObj__raftCommitIndex == inherited  # no voter answered: nothing of term 5 committed
    assert so.leader_commit_now() == log_end + 1  # not the inherited commit index

    ack = {"type": "next_node_idx", "next_node_idx": log_end + 2, "reset": False, "success": True}
    so._SyncObj__onMessageReceived(b, ack)  # b holds the no-op: 2 of 3, committed with all before it
    so._onTick(0.0)
    assert so._SyncObj__raftCommitIndex == log_end + 1 == so.leader_commit_now()
    so.apply_entry(b"later", callback=lambda res, err: None)
    so._checkCommandsToApply()
    so._SyncObj__onMessageReceived(b, ack | {"next_node_idx": log_end + 3})
    so._onTick(0.0)
    assert so.leader_commit_now() == so._SyncObj__raftCommitIndex == log_end + 2  # its commit index again
