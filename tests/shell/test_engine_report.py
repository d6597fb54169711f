"""The agent's engine calls feed the node's record (member/engine_report.py, member/agent.py): a failing
engine is recorded once after the confirm time, retries write nothing, an answer clears it once
(MockClock, in-memory Raft with the real FSM)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import trio
import trio.testing

from p2porch.errors import ExecutorError
from p2porch.member.agent import MeasuredExecutor
from p2porch.member.engine_report import EngineReporter
from p2porch.metrics import Metrics
from p2porch.model import Node
from p2porch.raft import commands as C
from p2porch.testing.memstore import MemoryRaft

A = "10.0.0.1:7947"


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


class Engine:
    """An executor whose listing answers while ``up``, else fails as an unreachable engine does."""

    def __init__(self) -> None:
        self.up = True

    async def list_containers(self) -> list[Any]:
        await trio.sleep(0)
        if not self.up:
            raise ExecutorError("cannot list containers: connection refused")
        return []


async def test_an_engine_away_is_recorded_once_and_cleared_once_back(autojump_clock: Any) -> None:
    raft = MemoryRaft([A], leader=A)
    store = raft.store(A)
    await store.write(C.InitCluster(at=1.0, cluster_id="0123456789abcdef").encode())
    await store.write(C.AddNode(at=1.0, node=Node("id1", "n1", "10.0.0.1", 7947, 7946)).encode())
    writes: list[bytes] = []

    async def write(command: bytes) -> Any:
        writes.append(command)
        return await store.write(command)

    clock = SimpleNamespace(now=trio.current_time, monotonic=trio.current_time)
    local = SimpleNamespace(node_id="id1")
    ctx = SimpleNamespace(clock=clock, store=store, local=local, write=write)
    reporter = EngineReporter(ctx)  # type: ignore[arg-type]
    engine = Engine()
    executor = MeasuredExecutor(engine, Metrics(), reporter.seen)  # type: ignore[arg-type]

    async def poll(seconds: float) -> None:  # the agent's retries: one listing every 0.5 s
        for _ in range(int(seconds / 0.5)):
            try:
                await executor.list_containers()
            except ExecutorError:
                pass
            await trio.sleep(0.5)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reporter.run)
        await poll(3)
        assert writes == []  # reachable, as the record already says
        engine.up = False
        went = trio.current_time()
        await poll(10)
        node = store.snapshot().nodes["id1"]
        assert node.engine_down_at == pytest.approx(went, abs=0.01)
        assert "connection refused" in node.engine_error and not node.schedulable
        assert len(writes) == 1  # twenty failed retries, one write
        engine.up = True
        await poll(3)
        assert store.snapshot().nodes["id1"].schedulable and len(writes) == 2
        nursery.cancel_scope.cancel()
