"""A leader's own entries on real pysyncobj voters (our RaftBridge, three on loopback, journals on disk):
the entries of one proposal drain share one fdatasync, are sent before it, and are counted towards a
commit only once it returned. The leader ticks on a thread of the test's so its sync can be held."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

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


def test_a_leaders_drain_shares_one_sync_and_commits_only_after_it(voters: list[RaftBridge]) -> None:
    leader = elect_leader(voters)
    follower, down = [so for so in voters if so is not leader]
    _settle(voters, _journal(leader)[-1][1])
    journal = _journal(leader)
    first = journal[-1][1] + 1

    held, entered = threading.Event(), threading.Event()
    real_sync = journal._sync

    def held_sync() -> None:  # the leader's disk is slow: its fdatasync waits for the test
        entered.set()
        assert held.wait(20)
        real_sync()

    journal._sync = held_sync  # type: ignore[method-assign]
    syncs_before = journal.syncs
    for n in range(5):
        leader.apply_entry(b"entry %d" % n, callback=lambda *a: None)
    ticker = threading.Thread(target=leader._onTick, args=(0.0,), daemon=True)
    ticker.start()
    assert entered.wait(10), "the leader never synced its entries"
    try:
        # the five entries went out before the leader's sync; the follower syncs and acknowledges them
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(_journal(follower)) < len(journal):
            follower._onTick(0.0)
            time.sleep(0.005)
        assert _journal(follower)[-1][1] == first + 4
        for _ in range(20):
            follower._onTick(0.0)
            time.sleep(0.005)
        # one follower acknowledged, the other is down: without the leader's own sync there is no
        # majority, and the leader has not counted itself
        assert leader.raftCommitIndex < first
        assert journal._unsynced
    finally:
        journal._sync = real_sync  # type: ignore[method-assign]
        held.set()
        ticker.join(10)
    assert journal.syncs == syncs_before + 1  # the five entries shared one fdatasync
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and leader.raftCommitIndex < first + 4:
        leader._onTick(0.0)
        follower._onTick(0.0)
        time.sleep(0.005)
    assert leader.raftCommitIndex >= first + 4  # the leader's sync plus one follower: a majority
    assert down.raftCommitIndex < first  # the silent voter had no part in it
