"""A read-only replica's Raft index as the leader knows it, on real pysyncobj over loopback: pysyncobj
knows a replica only by a counter, so the leader keys its match index by the host its connection comes
from (``replica@127.0.0.1``), and ``node ls`` shows it as it shows a voter's (it was ``?``)."""

from __future__ import annotations

import time
from pathlib import Path

import trio

from p2porch.raft import commands as C
from p2porch.raft.lag import progress_view
from p2porch.raft.store import StoreConfig, open_raft_store
from p2porch.testing.raftprocs import free_ports


def cfg(data_dir: Path, self_addr: str | None, voters: list[str]) -> StoreConfig:
    return StoreConfig(self_addr=self_addr, voters=tuple(voters), data_dir=data_dir, password="pw")


async def test_the_leader_knows_a_replica_s_index_by_its_host(tmp_path: Path) -> None:
    a = f"127.0.0.1:{free_ports(1)[0]}"
    async with open_raft_store(cfg(tmp_path / "a", a, [a])) as leader:
        await leader.wait_leader()
        await leader.write(C.InitCluster(at=time.time(), cluster_id="c1").encode())
        async with open_raft_store(cfg(tmp_path / "r", None, [a])) as replica:
            await replica.wait_leader()

            def seen() -> dict:
                return progress_view(leader.status(), "127.0.0.1:7947", is_self=False, replica=True)

            with trio.fail_after(15):  # status() is refreshed by the Raft thread about once a second
                while (seen().get("match_index") or 0) < 2:
                    await trio.sleep(0.05)
            assert seen()["behind_entries"] is not None
            assert "replica@127.0.0.1" in leader.status().peers
