"""Closing a store wakes its Raft thread (bridge.py ``destroy``): an idle store's tick polls for up to its
long period, and a role switch (a promotion reopens the store) or a shutdown waited for that tick to end
before the journal was released (issue 19: a voter's restart took ~2 s of an idle replica's tick)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from p2porch.raft import commands as C
from p2porch.raft.store import StoreConfig, open_raft_store
from p2porch.testing.raftprocs import free_ports


class CountingNotifier:
    """pysyncobj's pipe notifier, its ``notify`` calls counted (the poll still wakes on each)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    def notify(self) -> None:
        self.calls += 1
        self.inner.notify()


async def test_closing_a_store_wakes_its_raft_thread(tmp_path: Path) -> None:
    addr = f"127.0.0.1:{free_ports(1)[0]}"
    conf = StoreConfig(self_addr=addr, voters=(addr,), data_dir=tmp_path / "d", password="pw")
    async with open_raft_store(conf) as store:
        await store.wait_leader()
        await store.write(C.InitCluster(at=time.time(), cluster_id="c1").encode())
        bridge = store._so
        counting = CountingNotifier(bridge._SyncObj__pipeNotifier)
        bridge._SyncObj__pipeNotifier = counting
    assert counting.calls == 1, "the close did not wake the Raft thread's poll"
    assert not bridge.tick_thread_alive()
