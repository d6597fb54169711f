"""The leader refuses a second membership change until its first is applied (a real pysyncobj leader, our
RaftBridge, no tick thread): pysyncobj 0.3.17 alone appends both (its guard is never set)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from pysyncobj import FAIL_REASON, SyncObjConf

from p2porch.raft.bridge import RaftBridge
from p2porch.testing.raftprocs import free_ports


class _Owner:
    config = SimpleNamespace(replica_beat_s=1.0, heartbeat_answer_period_s=0.5, election_timeout_min_s=0.5)

    def _apply_on_raft_thread(self, batch: bytes) -> list[Any]:
        return []


def _commit_and_apply(so: RaftBridge) -> None:
    so._SyncObj__raftCommitIndex = so._SyncObj__raftLog[-1][1]  # as if a majority held it
    while so._SyncObj__raftLastApplied < so._SyncObj__raftCommitIndex:
        so._SyncObj__applyLogEntries()


def test_a_second_change_is_denied_while_the_first_is_not_applied() -> None:
    me, b, c = (f"127.0.0.1:{p}" for p in free_ports(3))
    conf = SyncObjConf(password="p6mb-unit", autoTick=False, dynamicMembershipChange=True)
    so = RaftBridge(_Owner(), me, [], conf)  # type: ignore[arg-type]
    try:
        so._SyncObj__onBecomeLeader()
        _commit_and_apply(so)  # the leader's no-op: changes are accepted from now on
        answers: list[tuple[str, int]] = []
        so.addNodeToCluster(b, callback=lambda _res, err: answers.append((b, err)))
        so._checkCommandsToApply()
        assert {n.address for n in so._SyncObj__otherNodes} == {b} and answers == []  # appended, pending
        so.addNodeToCluster(c, callback=lambda _res, err: answers.append((c, err)))
        so._checkCommandsToApply()
        assert answers == [(c, FAIL_REASON.REQUEST_DENIED)]  # not appended while b's is uncommitted
        assert {n.address for n in so._SyncObj__otherNodes} == {b}
        _commit_and_apply(so)
        assert answers[-1] == (b, FAIL_REASON.SUCCESS)
        so.addNodeToCluster(c, callback=lambda _res, err: answers.append((c, err)))
        so._checkCommandsToApply()
        assert {n.address for n in so._SyncObj__otherNodes} == {b, c}  # the next one, once b's applied
    finally:
        so.destroy()
