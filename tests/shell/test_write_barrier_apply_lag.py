"""A write through the leader whose apply lags its commit index waits until the trio side serves that
state (control/read_barrier.py, ``read_rounds.plan_write``; a real one-voter store on loopback, real
pysyncobj). ``BoundedApply`` leaves committed entries for the next tick; here the bridge's apply is held
back outright, so the entry stays committed and unapplied for as long as the test wants. On main the
leader's write was planned LOCAL and its handler ran against the older state at once; a read through the
sole voter too (a replica may have applied that commit already)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import pytest
import trio
from test_raft_forced_dump import cfg  # a voter's store config on loopback, short timeouts

from p2porch.control.read_barrier import ReadBarrier
from p2porch.raft import commands as C
from p2porch.raft.store import open_raft_store
from p2porch.testing.raftprocs import free_ports


@pytest.mark.parametrize("write", [True, False], ids=["write", "read"])
async def test_the_leaders_write_and_read_wait_for_the_state_of_its_commit_index(
    tmp_path: Path, write: bool
) -> None:
    addr = f"127.0.0.1:{free_ports(1)[0]}"
    async with contextlib.AsyncExitStack() as stack:
        store = await stack.enter_async_context(open_raft_store(cfg(tmp_path, addr, [addr])))
        with trio.fail_after(20):
            await store.wait_leader(timeout_s=10)
            await store.write(C.InitCluster(at=time.time(), cluster_id="c1").encode(), timeout_s=10)
        so = store._so
        # the write returns once its result reached trio, which pysyncobj hands over *before* it counts the
        # entry in ``raftLastApplied``: under load the Raft thread may not have counted it yet, and a commit
        # index above the apply index then names this entry, not the one held back below. Wait until both
        # agree and the trio side serves that state: only the entry proposed after the hold can lag.
        with trio.fail_after(10):
            while not (so.raftLastApplied == so.raftCommitIndex == store.applied.delivered):
                await trio.sleep(0.01)
        base = so.raftCommitIndex
        bounded = so._SyncObj__applyLogEntries
        held = [True]

        def apply_held_back() -> Any:  # as a BoundedApply tick cut short, for as long as ``held``
            return False if held[0] else bounded()

        so._SyncObj__applyLogEntries = apply_held_back  # pysyncobj's tick calls it by its mangled name
        barrier = ReadBarrier(lambda: store)
        served: list[int] = []

        async def propose() -> None:
            await store.write(C.Noop(at=time.time(), tag="acknowledged elsewhere").encode(), timeout_s=10)

        async def write_through_leader() -> None:
            await barrier.wait(write=write)
            served.append(store.applied.delivered)  # what the handler would look its record up in

        async with trio.open_nursery() as nursery:
            nursery.start_soon(propose)
            with trio.fail_after(10):
                while so.raftCommitIndex <= base:
                    await trio.sleep(0.01)  # committed (a follower could know it), not applied
            commit = so.raftCommitIndex
            assert so.raftLastApplied == base  # held back: the commit index is ahead of the applied state
            nursery.start_soon(write_through_leader)
            await trio.sleep(0.3)
            assert served == []  # on main: served at once, the state of commit - 1
            assert store.applied.delivered == base < commit
            held[0] = False
        assert served and served[0] >= commit
        assert barrier.rounds.started == 0  # no barrier entry: the leader waited locally
