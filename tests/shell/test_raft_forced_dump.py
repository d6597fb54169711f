"""A forced log compaction asked of a voter before the leader reached it is written once it has caught up
(two voter stores in-process on loopback, real pysyncobj; raft/forced_dump.py). pysyncobj alone cleared
its flag at the next tick and never wrote that dump: the control-plane bench's stuck follower."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import trio

from p2porch.raft import commands as C
from p2porch.raft.store import StoreConfig, open_raft_store
from p2porch.testing.raftprocs import free_ports


def cfg(data_dir: Path, self_addr: str, voters: list[str]) -> StoreConfig:
    return StoreConfig(
        self_addr=self_addr,
        voters=tuple(voters),
        data_dir=data_dir,
        password="p2fd-shell",
        heartbeat_period_s=0.05,
        idle_heartbeat_period_s=0.1,
        election_timeout_min_s=0.3,
        election_timeout_max_s=0.6,
    )


async def test_a_dump_forced_before_the_voter_caught_up_is_written_once_it_has(tmp_path: Path) -> None:
    addrs = [f"127.0.0.1:{p}" for p in free_ports(2)]
    async with contextlib.AsyncExitStack() as stack:
        late = await stack.enter_async_context(open_raft_store(cfg(tmp_path / "a", addrs[0], addrs)))
        assert late._so.raftLastApplied == 1  # alone: no leader, nothing beyond the log's first entry
        late._so.force_dump()
        await trio.sleep(1.0)  # ticks (its election deadline, the wake-up): nothing it can dump yet
        assert late.dumps_written == 0 and late._so.raftLastApplied == 1
        other = await stack.enter_async_context(open_raft_store(cfg(tmp_path / "b", addrs[1], addrs)))
        with trio.fail_after(20):
            while not (late.status().leader and other.status().leader):
                await trio.sleep(0.01)
            leader = late if late.status().is_leader else other
            await leader.write(C.InitCluster(at=time.time(), cluster_id="c1").encode(), timeout_s=10)
            # the request was kept: written once there is something, then let go (the tick after)
            while late.dumps_written == 0 or late._so._forced_dump.pending:
                await trio.sleep(0.01)
        assert other.dumps_written == 0  # nobody asked it
