"""``RaftStore.write_together``: commands proposed together are one Raft entry, applied in order, each
on its own (a real single-voter store on pysyncobj; the admission of a join writes through it); large
commands of different callers whose sum is over one entry go in as many entries as they need, each applied
(before: one entry every replica refused, "command of N bytes exceeds 16777216", both callers told
ProposalTimeout); a command, or one call's commands, larger than an entry holds is refused at once and
never enters the journal (before: committed, then refused on apply; one call's commands split over
entries, which a retried batch could reorder)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import trio

from p2porch.errors import ConflictError, WireError
from p2porch.model import Node, Service, ServiceSpec
from p2porch.raft import commands as C
from p2porch.raft.proposals import FRAMING_BYTES, MAX_COMMAND_BYTES, Proposal, next_batch, queue
from p2porch.raft.spec_size import MAX_SPEC_BYTES
from p2porch.raft.store import StoreConfig, open_raft_store
from p2porch.testing.bench_module import load_bench
from p2porch.testing.raftprocs import free_ports
from p2porch.wire import MAX_FRAME_BYTES

COUNT = load_bench("journal_entries")  # reads the journal's entries and the commands each carries


def record(n: int) -> Node:
    return Node(f"id{n}", f"n{n}", f"10.0.0.{n}", 7947, 7946)


def single_voter(tmp_path: Path) -> StoreConfig:
    addr = f"127.0.0.1:{free_ports(1)[0]}"
    return StoreConfig(self_addr=addr, voters=(addr,), data_dir=tmp_path / "d", password="pw")


def entry_shapes(tmp_path: Path) -> dict[str, int]:
    """The journal's entries by the commands each carries (pysyncobj's own no-ops left out)."""
    shapes = COUNT.summary((tmp_path / "d" / "raft.journal").read_bytes())["entries_by_commands"]
    shapes.pop("no-op")  # pysyncobj's own (its first entry, a new leader's)
    return shapes


async def test_commands_written_together_are_one_entry_and_one_refusal_undoes_nothing(tmp_path: Path) -> None:
    async with open_raft_store(single_voter(tmp_path)) as store:
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
    assert entry_shapes(tmp_path) == {
        "init_cluster": 1,
        "add_node+lease_subnet": 2,
        "update_node": 2,
        "add_node": 1,
    }


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


def group(*sizes: int) -> list[Proposal]:
    return queue([], [b"g" * n for n in sizes])


def test_one_calls_proposals_are_never_split_over_batches():
    """A ``propose_together`` group goes whole into the batch or waits for the next one, by bytes and by
    count (before: split, so its commands could land in two entries, the second before a retried first)."""
    half = MAX_FRAME_BYTES // 2
    pending = [Proposal(b"x" * half), *group(half // 2, half // 2), Proposal(b"y")]
    assert [len(p.command) for p in next_batch(pending, 512)] == [half]  # its first would fit: not alone
    assert [len(p.command) for p in next_batch(pending, 512)] == [half // 2, half // 2, 1]
    pending = [Proposal(b"x"), *group(1, 2, 3), Proposal(b"y")]
    assert [len(p.command) for p in next_batch(pending, 3)] == [1]  # by count too
    assert [len(p.command) for p in next_batch(pending, 3)] == [1, 2, 3]
    pending = [*group(1, 2, 3, 4), Proposal(b"y")]
    assert [len(p.command) for p in next_batch(pending, 2)] == [1, 2, 3, 4]  # larger than a batch: alone
    assert [len(p.command) for p in next_batch(pending, 2)] == [1] and pending == []


def test_a_group_larger_than_one_entry_is_refused_at_once_and_never_queued():
    pending: list[Proposal] = []
    fits = MAX_FRAME_BYTES - 3 * FRAMING_BYTES
    assert all(not p.done.is_set() for p in queue(pending, [b"a" * (fits - 1), b"b"])) and len(pending) == 2
    refused = queue(pending, [b"a" * fits, b"b"])
    assert len(pending) == 2 and all(p.done.is_set() for p in refused)
    assert all(p.result is not None and p.result["error"] == "WireError" for p in refused)


async def test_large_commands_proposed_together_each_commit_and_one_too_large_never_enters(
    tmp_path: Path,
) -> None:
    async with open_raft_store(single_voter(tmp_path)) as store:
        await store.wait_leader()
        now = time.time()
        await store.write(C.InitCluster(at=now, cluster_id="c1").encode())
        await store.write(C.CreateService(at=now, service_id="s1", spec=spec("web", "x")).encode())
        web: Service = store.snapshot().services["s1"]
        update = C.UpdateService.of(web, at=now, spec=spec("web", "y"), previous_spec=web.spec).encode()
        create = C.CreateService(at=now, service_id="s2", spec=spec("api", "z")).encode()
        assert len(update) + len(create) > MAX_FRAME_BYTES > len(update)
        with pytest.raises(WireError, match="2 commands of .* bytes are larger than one Raft entry holds"):
            await store.write_together([update, create], timeout_s=30)  # one entry or nothing
        async with trio.open_nursery() as nursery:  # two callers: one entry each
            nursery.start_soon(store.write, update, 30)
            nursery.start_soon(store.write, create, 30)
        await trio.sleep(0)
        state = store.snapshot()
        assert state.services["s1"].spec.command[0][0] == "y" and "s2" in state.services
        with pytest.raises(WireError, match=f"larger than one Raft entry holds \\({MAX_COMMAND_BYTES} bytes"):
            await store.write(b"x" * (MAX_COMMAND_BYTES + 1))
    assert entry_shapes(tmp_path) == {"init_cluster": 1, "create_service": 2, "update_service": 1}
