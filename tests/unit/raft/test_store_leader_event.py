"""The store's leader event (``events`` keeps leader changes): set when the leader this node sees
changes, another one or none, as the Raft thread's status refresh notices it; ``LeaderChanges`` says
when that is, besides counting the changes to another node (the metric)."""

from __future__ import annotations

from pathlib import Path

import trio

from p2porch.raft.status import LeaderChanges
from p2porch.raft.store import StoreConfig, open_raft_store
from p2porch.testing.raftprocs import free_ports


def test_leader_changes_say_when_the_leader_seen_changed_and_count_changes_to_another() -> None:
    changes = LeaderChanges()
    seen = [changes.observe(leader) for leader in (None, "a", "a", None, "a", "b", "b")]
    assert seen == [False, True, False, True, True, True, False]
    assert changes.count == 1  # a -> (none) -> a is no change to another node; a -> b is


async def test_the_leader_event_fires_when_the_store_sees_its_leader(tmp_path: Path) -> None:
    addr = f"127.0.0.1:{free_ports(1)[0]}"
    conf = StoreConfig(self_addr=addr, voters=(addr,), data_dir=tmp_path / "d", password="pw")
    async with open_raft_store(conf) as store:
        event = store.leader_event()  # taken before the status is read
        assert store.status().leader is None  # a store just opened: its election takes a timeout
        with trio.fail_after(10):
            await event.wait()
        assert store.status().leader == addr  # read fresh, not the status cached before the change
        assert not store.leader_event().is_set()  # a fresh one for the next change
