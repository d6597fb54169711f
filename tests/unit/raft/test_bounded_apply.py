"""A tick applies committed entries for at most its budget, in order, and the rest on the next ticks (a real
pysyncobj leader, our RaftBridge, no tick thread)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from pysyncobj import SyncObjConf

from p2porch.raft.bridge import RaftBridge
from p2porch.testing.raftprocs import free_ports


class _Owner:
    config = SimpleNamespace(replica_beat_s=1.0, heartbeat_answer_period_s=0.5, election_timeout_min_s=0.5)

    def __init__(self) -> None:
        self.applied: list[bytes] = []

    def _apply_on_raft_thread(self, batch: bytes) -> list[Any]:
        self.applied.append(batch)
        return [len(self.applied)]


class _Clock:
    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step  # every reading is one apply later
        return self.now


def _leader_with_entries(owner: _Owner, count: int) -> tuple[RaftBridge, list[Any]]:
    (me,) = (f"127.0.0.1:{p}" for p in free_ports(1))
    conf = SyncObjConf(password="p2ie-unit", autoTick=False, dynamicMembershipChange=True)
    so = RaftBridge(owner, me, [], conf)  # type: ignore[arg-type]
    so._SyncObj__onBecomeLeader()
    results: list[Any] = []
    for i in range(count):
        so.apply_entry(b"batch%d" % i, callback=lambda res, err: results.append((res, err)))
    so._checkCommandsToApply()  # into the leader's log
    so._SyncObj__raftCommitIndex = so._SyncObj__raftLog[-1][1]  # committed (a single voter)
    return so, results


@pytest.mark.parametrize("step", [0.02, 0.1])
def test_a_tick_applies_entries_until_its_budget_is_spent_and_the_next_ticks_the_rest(step: float) -> None:
    owner = _Owner()
    so, results = _leader_with_entries(owner, 10)
    try:
        so._apply_clock = _Clock(step)  # type: ignore[assignment]
        commit = so._SyncObj__raftCommitIndex
        applied_per_tick = []
        while so._SyncObj__raftLastApplied < commit:
            before = so._SyncObj__raftLastApplied
            so._SyncObj__applyLogEntries()
            assert so._SyncObj__raftCommitIndex == commit  # the commit index is never lowered
            applied_per_tick.append(so._SyncObj__raftLastApplied - before)
        assert owner.applied == [b"batch%d" % i for i in range(10)]  # all of them, in order
        assert [res for res, _ in results] == [[i] for i in range(1, 11)]
        # 11 entries (the leader's no-op first); a tick stops once its 50 ms passed: after the 3rd entry
        # at 20 ms an entry, after the 1st at 100 ms
        assert applied_per_tick == ([3, 3, 3, 2] if step == 0.02 else [1] * 11)
        assert so.apply_cut_short == len(applied_per_tick) - 1
    finally:
        so.destroy()


def test_one_entry_and_a_generous_budget_apply_as_pysyncobj_does() -> None:
    owner = _Owner()
    so, results = _leader_with_entries(owner, 5)
    try:
        so._SyncObj__applyLogEntries()  # the real clock, 50 ms: five tiny entries in one tick
        assert owner.applied == [b"batch%d" % i for i in range(5)] and so.apply_cut_short == 0
        assert so._SyncObj__raftLastApplied == so._SyncObj__raftCommitIndex
        so.apply_entry(b"one more", callback=lambda res, err: results.append((res, err)))
        so._checkCommandsToApply()
        so._SyncObj__raftCommitIndex = so._SyncObj__raftLog[-1][1]
        so._SyncObj__applyLogEntries()
        assert owner.applied[-1] == b"one more" and len(results) == 6
    finally:
        so.destroy()


def test_a_status_read_during_a_bounded_apply_sees_the_true_commit_index() -> None:
    """The API, the metrics and the lag figures read ``status()`` from other threads while the Raft thread
    applies: here a read from inside every apply, between two entries of the same tick."""
    seen: list[tuple[int, int]] = []

    class _Reading(_Owner):
        so: RaftBridge

        def _apply_on_raft_thread(self, batch: bytes) -> list[Any]:
            status = self.so.getStatus()
            seen.append((status["commit_idx"], self.so.raftCommitIndex))
            return super()._apply_on_raft_thread(batch)

    owner = _Reading()
    so, _ = _leader_with_entries(owner, 10)
    owner.so = so
    try:
        so._apply_clock = _Clock(0.02)  # type: ignore[assignment]
        commit = so._SyncObj__raftCommitIndex
        while so._SyncObj__raftLastApplied < commit:
            so._SyncObj__applyLogEntries()
        assert len(owner.applied) == 10 and so.apply_cut_short == 3  # bounded: four ticks
        assert seen == [(commit, commit)] * 10  # never below the commit index, never going back
    finally:
        so.destroy()
