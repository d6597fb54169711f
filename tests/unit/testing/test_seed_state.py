"""The control-plane benchmark's seeded state (``testing/seed_state.py``) holds the records a real run leaves:
services created through the service API, placed by the real leader loop, reported RUNNING by the simulated
nodes' bulk agents, over the real FSM; and the dump it is written as loads back in a real store."""

from __future__ import annotations

import logging
import random
from functools import partial
from pathlib import Path
from typing import Any, cast

import msgpack
import pytest
import trio
import trio.testing

from p2porch.clock import TrioClock
from p2porch.config import Config, SchedulerConfig
from p2porch.context import LocalBoard, LocalNode, MemberContext
from p2porch.control.service_ops import ServiceOps
from p2porch.leader.loop import serve_scheduler
from p2porch.model import DesiredState, TaskState
from p2porch.raft import commands as C
from p2porch.raft import dumps
from p2porch.raft.state import ClusterState
from p2porch.raft.store import DUMP_NAME, StoreConfig, open_raft_store
from p2porch.testing.control_member import StoreManager
from p2porch.testing.memstore import MemoryRaft
from p2porch.testing.raftprocs import free_ports
from p2porch.testing.seed_state import (
    CIDR,
    CLUSTER_ID,
    PREFIX,
    SEED_EPOCH,
    bench_node,
    node_id,
    seed_state,
    service_body,
    write_seed_dump,
)
from p2porch.testing.sim_nodes import SimNodes

VOTER = "127.0.0.1:7101"
EPOCH = 1_800_000_000.0
NODES, TASKS = 7, 300


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


def shape(value: Any) -> Any:
    """A value's shape: mappings by key, sequences as the set of their elements' shapes, scalars by type
    and whether they are set (empty, zero, None or false: not set)."""
    if isinstance(value, dict):
        return tuple(sorted((k, shape(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return ("list", frozenset(shape(v) for v in value))
    return type(value).__name__, bool(value)


async def real_run(nodes: int, tasks: int) -> ClusterState:
    """The benchmark's ``--bulk`` run in one process: joins as ``init_and_join`` writes them, services
    through the service API, the daemon's leader loop, the simulated nodes' bulk agents on a replica."""
    clock = TrioClock(EPOCH)
    raft = MemoryRaft([VOTER], leader=VOTER)
    store = raft.store(VOTER)
    init = C.InitCluster(at=clock.now(), cluster_id=CLUSTER_ID, cluster_cidr=CIDR, subnet_prefix_len=PREFIX)
    await store.write(init.encode())
    for i in range(nodes):
        await store.write(C.AddNode(at=clock.now(), node=bench_node(i)).encode())
        await store.write(C.LeaseSubnet(at=clock.now(), node_id=node_id(i)).encode())

    async def no_answer(host: str) -> dict[str, Any] | None:
        return None

    ctx = MemberContext(
        store=store,
        voter_control=store,
        local=LocalNode("cp", "cp", "127.0.0.1", VOTER, "voter", 1, b"\0" * 32),
        board=LocalBoard(),
        clock=clock,
        commit_timeout_s=5.0,
        ask_member=no_answer,
    )
    ops = ServiceOps(cast(Any, StoreManager(cast(Any, store), Config())), cast(Any, None), clock=clock)
    agents = SimNodes(cast(Any, raft.store(None)), [node_id(i) for i in range(nodes)], 0.5, bulk=True)
    async with trio.open_nursery() as nursery:
        await nursery.start(agents.run)
        await nursery.start(partial(serve_scheduler, ctx, SchedulerConfig(), rng=random.Random(3)))
        for s in range(tasks // 100):
            await ops.create(service_body(s))
        async with store.subscribe() as changes:
            while agents.status()["running"] < tasks:
                await changes.receive()
        nursery.cancel_scope.cancel()
    return store.snapshot()


def per_node(state: ClusterState) -> list[int]:
    counts: dict[str | None, int] = {}
    for task in state.tasks.values():
        counts[task.node_id] = counts.get(task.node_id, 0) + 1
    return sorted(counts.values())


async def test_the_seeded_state_holds_the_records_of_a_real_run(autojump_clock: trio.abc.Clock) -> None:
    real = await real_run(NODES, TASKS)
    seeded = seed_state(NODES, TASKS, at=EPOCH)
    assert shape(seeded.to_dict()) == shape(real.to_dict())  # every record kind, field and type
    assert len(seeded.tasks) == len(real.tasks) == TASKS
    for state in (real, seeded):
        assert {(t.state, t.desired_state) for t in state.tasks.values()} == {
            (TaskState.RUNNING, DesiredState.RUNNING)
        }
        for t in state.tasks.values():
            assert t.container_id == t.task_id and t.started_at > 0 and t.node_id is not None
            assert t.address.startswith(state.leases[t.node_id].subnet.rsplit(".", 2)[0])
    # the same placement spread, specs, node records and leases; the epoch the first leader claimed
    assert per_node(seeded) == per_node(real)
    assert {s.name: s.spec for s in seeded.services.values()} == {
        s.name: s.spec for s in real.services.values()
    }
    assert {k: (n.name, n.addr, n.role, n.status) for k, n in seeded.nodes.items()} == {
        k: (n.name, n.addr, n.role, n.status) for k, n in real.nodes.items()
    }
    assert {k: v.subnet for k, v in seeded.leases.items()} == {k: v.subnet for k, v in real.leases.items()}
    assert seeded.leader_epoch == real.leader_epoch == SEED_EPOCH


def test_the_seed_dump_is_the_stores_dump_format(tmp_path: Path) -> None:
    """The head a store reads before the state (``dumps.read_head``), the voters, and the state itself."""
    state = seed_state(3, 100, at=EPOCH)
    path = tmp_path / "raft.dump"
    size = write_seed_dump(path, state, ["127.0.0.1:2", "127.0.0.1:1"])
    assert size == path.stat().st_size
    assert dumps.read_head(path) == ((b"\x01", 1, 0), (b"\x01", 2, 0))
    body = msgpack.unpackb(path.read_bytes(), raw=False, strict_map_key=False)
    assert body["cluster"] == ["127.0.0.1:1", "127.0.0.1:2"]
    assert ClusterState.from_dict(body["state"]) == state


async def test_a_store_started_on_the_seed_dump_serves_its_state_and_leads_on(tmp_path: Path) -> None:
    """A real single-voter store whose data directory holds the seed dump loads it at start (the Raft
    snapshot), elects itself in a term after the dump's and commits on top of the seeded state."""
    state = seed_state(3, 100, at=EPOCH)
    addr = f"127.0.0.1:{free_ports(1)[0]}"
    conf = StoreConfig(self_addr=addr, voters=(addr,), data_dir=tmp_path / "d", password="pw")
    write_seed_dump(tmp_path / "d" / DUMP_NAME, state, [addr])
    async with open_raft_store(conf) as store:
        await store.wait_leader()
        with trio.fail_after(10):
            while store.snapshot().version < state.version:
                await trio.sleep(0.01)
        assert store.snapshot() == state
        assert store.status().term > 0
        await store.write(C.ClaimLeaderEpoch(at=EPOCH, epoch=store.status().term + SEED_EPOCH).encode())
        assert store.snapshot().version == state.version + 1
    async with open_raft_store(conf) as store:  # reopened: the dump and the journal after it
        assert store.snapshot().version == state.version + 1


async def test_a_replica_started_on_the_seed_dump_follows_the_voter(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A read-only replica store seeded like its voter (the benchmark seeds all 20) loads the state at
    start and applies the voter's later writes on top of it, with no snapshot sent."""
    state = seed_state(3, 100, at=EPOCH)
    addr = f"127.0.0.1:{free_ports(1)[0]}"
    voter = StoreConfig(self_addr=addr, voters=(addr,), data_dir=tmp_path / "v", password="pw")
    replica = StoreConfig(self_addr=None, voters=(addr,), data_dir=tmp_path / "r", password="pw")
    for conf in (voter, replica):
        write_seed_dump(Path(conf.data_dir) / DUMP_NAME, state, [addr])
    caplog.set_level(logging.INFO, logger="p2porch.raft.store")
    async with open_raft_store(voter) as leader, open_raft_store(replica) as follower:
        await leader.wait_leader()
        await leader.write(C.ClaimLeaderEpoch(at=EPOCH, epoch=leader.status().term + SEED_EPOCH).encode())
        with trio.fail_after(10):
            while follower.snapshot().version < state.version + 1:
                await trio.sleep(0.01)
        assert follower.snapshot() == leader.snapshot()
        assert follower.snapshot().tasks == state.tasks
    loads = [r for r in caplog.records if r.getMessage().startswith("raft dump")]
    assert len(loads) == 2  # each store its own seed at start; a snapshot sent would be a third
