"""Large commands on a real single-voter store (pysyncobj, its journal): commands proposed together whose
sum is over one Raft entry go in as many entries as they need, each applied (before: one entry every
replica refused, "command of N bytes exceeds 16777216", both commands with it); a command larger than an
entry holds is refused at once and never enters the journal (before: committed, then refused on apply)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import trio

from p2porch.errors import WireError
from p2porch.model import Service, ServiceSpec
from p2porch.raft import commands as C
from p2porch.raft.proposals import MAX_COMMAND_BYTES, Proposal, next_batch
from p2porch.raft.spec_size import MAX_SPEC_BYTES
from p2porch.raft.store import StoreConfig, open_raft_store
from p2porch.testing.bench_module import load_bench
from p2porch.testing.raftprocs import free_ports
from p2porch.wire import MAX_FRAME_BYTES

COUNT = load_bench("journal_entries")  # reads the journal's entries and the commands each carries


def spec(name: str, fill: str) -> ServiceSpec:
    command = [fill * (MAX_SPEC_BYTES - 64)]
    return ServiceSpec.from_dict({"name": name, "image": "busybox", "command": command})


def test_a_batch_is_bounded_by_bytes_and_count_and_skips_the_abandoned():
    sizes = [MAX_FRAME_BYTES // 2, MAX_FRAME_BYTES // 2, 10, 10, 10]
    pending = [Proposal(b"x" * n) for n in sizes]
    pending[3].abandoned = True
    first = next_batch(pending, 512)
    assert [len(p.command) for p in first] == [MAX_FRAME_BYTES // 2]  # two halves and framing: too much
    assert [len(p.command) for p in next_batch(pending, 2)] == [MAX_FRAME_BYTES // 2, 10]
    assert [len(p.command) for p in next_batch(pending, 2)] == [10] and pending == []
    alone = [Proposal(b"x" * MAX_COMMAND_BYTES), Proposal(b"y")]
    assert [len(p.command) for p in next_batch(alone, 512)] == [MAX_COMMAND_BYTES]


async def test_large_commands_proposed_together_each_commit_and_one_too_large_never_enters(
    tmp_path: Path,
) -> None:
    addr = f"127.0.0.1:{free_ports(1)[0]}"
    conf = StoreConfig(self_addr=addr, voters=(addr,), data_dir=tmp_path / "d", password="pw")
    async with open_raft_store(conf) as store:
        await store.wait_leader()
        now = time.time()
        await store.write(C.InitCluster(at=now, cluster_id="c1").encode())
        await store.write(C.CreateService(at=now, service_id="s1", spec=spec("web", "x")).encode())
        web: Service = store.snapshot().services["s1"]
        update = C.UpdateService.of(web, at=now, spec=spec("web", "y"), previous_spec=web.spec).encode()
        create = C.CreateService(at=now, service_id="s2", spec=spec("api", "z")).encode()
        assert len(update) + len(create) > MAX_FRAME_BYTES > len(update)
        await store.write_together([update, create], timeout_s=30)
        await trio.sleep(0)
        state = store.snapshot()
        assert state.services["s1"].spec.command[0][0] == "y" and "s2" in state.services
        with pytest.raises(WireError, match=f"larger than one Raft entry holds \\({MAX_COMMAND_BYTES} bytes"):
            await store.write(b"x" * (MAX_COMMAND_BYTES + 1))
    shapes = COUNT.summary((tmp_path / "d" / "raft.journal").read_bytes())["entries_by_commands"]
    shapes.pop("no-op")  # pysyncobj's own (its first entry, a new leader's)
    assert shapes == {"init_cluster": 1, "create_service": 2, "update_service": 1}
