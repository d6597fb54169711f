"""``RaftStore.write_together``: commands proposed together are one Raft entry, applied in order, each
on its own (a real single-voter store on pysyncobj; the admission of a join writes through it)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import trio

from p2porch.errors import ConflictError
from p2porch.model import Node
from p2porch.raft import commands as C
from p2porch.raft.store import StoreConfig, open_raft_store
from p2porch.testing.bench_module import load_bench
from p2porch.testing.raftprocs import free_ports

COUNT = load_bench("journal_entries")  # reads the journal's entries and the commands each carries


def record(n: int) -> Node:
    return Node(f"id{n}", f"n{n}", f"10.0.0.{n}", 7947, 7946)


async def test_commands_written_together_are_one_entry_and_one_refusal_undoes_nothing(tmp_path: Path) -> None:
    addr = f"127.0.0.1:{free_ports(1)[0]}"
    conf = StoreConfig(self_addr=addr, voters=(addr,), data_dir=tmp_path / "d", password="pw")
    async with open_raft_store(conf) as store:
        await store.wait_leader()
        now = time.time()
        await store.write(C.InitCluster(at=now, cluster_id="c1").encode())
        for n in (2, 3):  # the admission's shape: the record, then its lease (which needs the record)
            values = await store.write_together(
                [C.AddNode(at=now, node=record(n)).encode(), C.LeaseSubnet(at=now, node_id=f"id{n}").encode()]
            )
            assert values[0] == f"id{n}" and values[1].endswith("/24")
        # one after another (each awaited) they are two entries
        await store.write(C.UpdateNode(at=now, node_id="id2", labels={"a": "1"}).encode())
        await store.write(C.UpdateNode(at=now, node_id="id3", labels={"a": "1"}).encode())
        # the first refusal is raised; the commands after it applied all the same, in the same entry
        with pytest.raises(ConflictError):
            await store.write_together(
                [C.AddNode(at=now, node=record(2)).encode(), C.AddNode(at=now, node=record(4)).encode()]
            )
        await trio.sleep(0)
        assert set(store.snapshot().nodes) == {"id2", "id3", "id4"}
        assert set(store.snapshot().leases) == {"id2", "id3"}
    shapes = COUNT.summary((tmp_path / "d" / "raft.journal").read_bytes())["entries_by_commands"]
    shapes.pop("no-op")  # pysyncobj's own (its first entry, a new leader's)
    assert shapes == {
        "init_cluster": 1,
        "add_node+lease_subnet": 2,
        "update_node": 2,
        "add_node": 1,
    }
