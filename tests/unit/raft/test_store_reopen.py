"""A store reopened on its journal (a role or key switch reopens it in the same daemon) hands readers the
state it had, never a state of the replay on the way there (store.py, ``open_raft_store``).

Readers on the trio side used to get the store as soon as pysyncobj was built, while its Raft thread was
still applying the journal from entry 1: a read through the node then returned versions older than the
reads before the switch (a non-monotonic read within one daemon life, docs/raft.md).
"""

from __future__ import annotations

import time
from pathlib import Path

import trio

from p2porch.model import ServiceSpec
from p2porch.raft import commands as C
from p2porch.raft.store import StoreConfig, open_raft_store
from p2porch.testing.raftprocs import free_ports


def create(i: int) -> bytes:
    spec = ServiceSpec.from_dict({"name": f"s{i}", "image": "busybox", "labels": {"pad": "x" * 20_000}})
    return C.CreateService(at=time.time(), service_id=f"id{i}", spec=spec).encode()


async def test_a_reopened_store_serves_the_state_it_had_from_the_first_read(tmp_path: Path) -> None:
    addr = f"127.0.0.1:{free_ports(1)[0]}"
    conf = StoreConfig(self_addr=addr, voters=(addr,), data_dir=tmp_path / "d", password="pw")
    async with open_raft_store(conf) as store:
        await store.wait_leader()
        await store.write(C.InitCluster(at=time.time(), cluster_id="c1").encode())
        for base in range(0, 600, 100):
            async with trio.open_nursery() as nursery:
                for i in range(base, base + 100):
                    nursery.start_soon(store.write, create(i))
        before = store.snapshot().version
    assert before == 601
    for _ in range(2):
        async with open_raft_store(conf) as store:
            seen = [store.snapshot().version]
            for _ in range(50):
                await trio.sleep(0)
                seen.append(store.snapshot().version)
        assert min(seen) == before, f"a reader saw versions {sorted(set(seen))[:5]} after {before}"
