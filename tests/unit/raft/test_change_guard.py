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


def test_a_leader_again_in_a_later_term_is_not_held_by_its_earlier_terms_guard() -> None:
    """A change this node appended as leader, then truncated by another leader, leaves the guard on an
    index the log may not reach again for long: leader again, it accepts a change once its no-op is
    applied (pysyncobj's own check), not only once the log passes that index."""
    me, b, c = (f"127.0.0.1:{p}" for p in free_ports(3))
    conf = SyncObjConf(password="p6mb-unit", autoTick=False, dynamicMembershipChange=True)
    so = RaftBridge(_Owner(), me, [b], conf)  # type: ignore[arg-type]
    try:
        so._SyncObj__onBecomeLeader()
        _commit_and_apply(so)
        # the earlier term's change, appended at an index this log no longer reaches (truncated)
        so._SyncObj__changeClusterIDx = so._SyncObj__getCurrentLogIndex() + 5
        so._SyncObj__setState(0)  # a follower for a while, then elected again
        so._SyncObj__setCurrentTerm(so._SyncObj__raftCurrentTerm + 1, None)
        so._SyncObj__onBecomeLeader()
        answers: list[int] = []
        so.addNodeToCluster(c, callback=lambda _res, err: answers.append(err))
        so._checkCommandsToApply()
        assert answers == [FAIL_REASON.REQUEST_DENIED]  # the new term's no-op is not applied yet
        _commit_and_apply(so)
        so.addNodeToCluster(c, callback=lambda _res, err: answers.append(err))
        so._checkCommandsToApply()
        assert {n.address for n in so._SyncObj__otherNodes} == {b, c}  # appended: the guard is this term's
    finally:
        so.destroy()
