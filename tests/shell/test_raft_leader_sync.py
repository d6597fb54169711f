"""A leader's own entries on real pysyncobj voters (our RaftBridge, three on loopback, journals on disk):
the entries of one proposal drain are sent at once and share one fdatasync on the journal's worker
thread; the leader's tick never waits for it, and the leader counts itself towards a commit only up to
the index that sync made durable (raft/durable_commit.py). The worker's sync is held by the test."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from p2porch.raft import journal as J
from p2porch.raft.bridge import RaftBridge, install_durable_journal
from p2porch.raft.journal import DurableJournal
from p2porch.testing.raft_bridges import elect_leader, loopback_voters, tick


@pytest.fixture
def voters(tmp_path: Path) -> Iterator[list[RaftBridge]]:
    install_durable_journal()
    with loopback_voters(journal_dir=tmp_path) as nodes:  # the leader keeps leading with one follower silent
        yield nodes


def _journal(so: RaftBridge) -> DurableJournal:
    journal = so._SyncObj__raftLog
    assert isinstance(journal, DurableJournal)
    return journal


def _settle(nodes: list[RaftBridge], index: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(so.raftCommitIndex >= index for so in nodes):
        tick(nodes)
        time.sleep(0.005)
    assert all(so.raftCommitIndex >= index for so in nodes)


class HeldSync:
    """The journal worker's fdatasync waits for the test (the leader's disk is slow)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entered, self.released = threading.Event(), threading.Event()
        self.calls = 0
        real = J.background_fdatasync

        def held(fd: int) -> None:
            self.calls += 1
            self.entered.set()
            assert self.released.wait(30)
            real(fd)

        monkeypatch.setattr(J, "background_fdatasync", held)


def _propose(leader: RaftBridge, count: int) -> int:
    journal = _journal(leader)
    first = journal[-1][1] + 1
    for n in range(count):
        leader.apply_entry(b"entry %d" % n, callback=lambda *a: None)
    started = time.monotonic()
    leader._onTick(0.0)  # the drain: added, sent, and handed to the worker; the tick does not wait
    assert time.monotonic() - started < 5
    assert journal[-1][1] == first + count - 1
    return first


def _tick_until(nodes: list[RaftBridge], done: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not done():
        tick(nodes)
        time.sleep(0.005)


def _node_of(leader: RaftBridge, other: RaftBridge) -> Any:
    return next(n for n in leader._SyncObj__otherNodes if n.address == other._SyncObj__selfNode.address)


def test_a_leaders_drain_is_synced_by_the_worker_and_counted_only_after_it(
    voters: list[RaftBridge], monkeypatch: pytest.MonkeyPatch
) -> None:
    leader = elect_leader(voters)
    follower, down = [so for so in voters if so is not leader]
    _settle(voters, _journal(leader)[-1][1])
    journal = _journal(leader)
    held = HeldSync(monkeypatch)
    syncs_before = journal.syncs
    first = _propose(leader, 5)
    try:
        assert held.entered.wait(10), "the worker never synced the leader's entries"
        # the five entries went out before the leader's sync; the follower syncs and acknowledges them
        _tick_until(
            [follower, leader],
            lambda: leader._SyncObj__raftMatchIndex[_node_of(leader, follower)] >= first + 4,
        )
        assert _journal(follower)[-1][1] == first + 4
        assert leader._SyncObj__raftMatchIndex[_node_of(leader, follower)] >= first + 4
        for _ in range(20):
            tick([leader, follower])
            time.sleep(0.005)
        # one follower acknowledged, the other is down, the leader's copy is not durable: no majority
        assert journal.durable_index < first and journal.unsynced
        assert leader.raftCommitIndex < first
        assert held.calls == 1
    finally:
        held.released.set()
    _tick_until([leader, follower], lambda: leader.raftCommitIndex >= first + 4)
    assert journal.durable_index >= first + 4
    assert leader.raftCommitIndex >= first + 4  # the leader's durable copy plus one follower's
    assert journal.syncs == syncs_before + 1  # the five entries shared one fdatasync
    assert down.raftCommitIndex < first  # the silent voter had no part in it


def test_two_followers_commit_while_the_leaders_sync_is_pending(
    voters: list[RaftBridge], monkeypatch: pytest.MonkeyPatch
) -> None:
    leader = elect_leader(voters)
    _settle(voters, _journal(leader)[-1][1])
    journal = _journal(leader)
    held = HeldSync(monkeypatch)
    first = _propose(leader, 3)
    try:
        assert held.entered.wait(10)
        # both followers' durable copies are a majority without the leader's (Raft §10.2.1)
        _tick_until(voters, lambda: leader.raftCommitIndex >= first + 2)
        assert leader.raftCommitIndex >= first + 2
        assert journal.durable_index < first
        leader._SyncObj__raftLog.onOneSecondTimer()
        # the commit index on the leader's disk never passes its own durable entries
        assert J.unpack_commit_index(journal._commit_path.read_bytes()) < first
    finally:
        held.released.set()
    _tick_until(voters, lambda: journal.durable_index >= first + 2)
    assert journal.durable_index >= first + 2


def test_a_failed_worker_sync_fails_the_leaders_journal(
    voters: list[RaftBridge], monkeypatch: pytest.MonkeyPatch
) -> None:
    leader = elect_leader(voters)
    follower, _down = [so for so in voters if so is not leader]
    _settle(voters, _journal(leader)[-1][1])
    journal = _journal(leader)
    failed, go = threading.Event(), threading.Event()

    def fail(fd: int) -> None:
        assert go.wait(10)  # fails once the drain's tick is over (the next tick must see it)
        failed.set()
        raise OSError(5, "I/O error")

    monkeypatch.setattr(J, "background_fdatasync", fail)
    first = _propose(leader, 2)
    go.set()
    assert failed.wait(10)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and journal._failed is None:
        time.sleep(0.01)
    for _ in range(10):  # the follower acknowledges; the leader's ticks fail before they count
        follower._onTick(0.0)
        with pytest.raises(J.JournalFailedError):
            leader._onTick(0.0)
        time.sleep(0.005)
    assert leader.raftCommitIndex < first
    assert journal.durable_index < first
