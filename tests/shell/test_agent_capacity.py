"""The agent's engine capacity read (``docker info``) failing does not stop the agent (member/agent.py):
``_run_agent`` runs its reconcile loop meanwhile, the node's record keeps its last known capacity, and the
read is retried with back-off until the engine answers, then recorded once (MockClock, in-memory Raft with
the real FSM, a stand-in executor)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from types import SimpleNamespace
from typing import Any

import pytest
import trio
import trio.testing

from p2porch.agent.engine_watch import EngineMark, EngineWatch
from p2porch.agent.model import NodeCapacity, ObservedContainer
from p2porch.errors import ExecutorError
from p2porch.member import agent as member_agent
from p2porch.metrics import Metrics
from p2porch.model import Node
from p2porch.raft import commands as C
from p2porch.testing.memstore import MemoryRaft, MemoryStore

A = "10.0.0.1:7947"
KNOWN = (2_000_000_000, 4 << 30)  # the record's capacity before: 2 CPUs, 4 GiB


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


class Engine:
    """An executor whose ``docker info`` fails ``info_failures`` times, then answers 8 CPUs, 16 GiB."""

    def __init__(self, info_failures: int) -> None:
        self.info_failures = info_failures
        self.info_calls: list[float] = []
        self.listings = 0
        self.version = "28.2.2"

    async def capacity(self) -> NodeCapacity:
        await trio.sleep(0)
        self.info_calls.append(trio.current_time())
        if len(self.info_calls) <= self.info_failures:
            raise ExecutorError("cannot read docker info: 500 Server Error: containerd is not running")
        return NodeCapacity(8_000_000_000, 16 << 30, engine_version=self.version, architecture="x86_64")

    async def list_containers(self) -> list[ObservedContainer]:
        await trio.sleep(0)
        self.listings += 1
        return []

    @asynccontextmanager
    async def open_events(self) -> AsyncIterator[trio.MemoryReceiveChannel[Any]]:
        _, receive = trio.open_memory_channel[Any](0)
        yield receive

    async def aclose(self) -> None:
        pass


async def _member(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, published: list[tuple[str, str]]
) -> tuple[MemoryStore, Any]:
    """A one-node store whose record has the ``KNOWN`` capacity, and the member context ``_run_agent``
    reads (its engine is ``engine``; gossiped engine versions go to ``published``)."""
    raft = MemoryRaft([A], leader=A)
    store = raft.store(A)
    await store.write(C.InitCluster(at=1.0, cluster_id="0123456789abcdef").encode())
    node = Node("id1", "n1", "10.0.0.1", 7947, 7946, cpu_nanos=KNOWN[0], memory_bytes=KNOWN[1])
    await store.write(C.AddNode(at=1.0, node=node).encode())

    async def opened(docker_host: Any) -> Engine:
        return engine

    monkeypatch.setattr(member_agent, "open_docker_executor", opened)
    board = SimpleNamespace(
        executor=None,
        overlay=None,
        overlay_ready=trio.Event(),
        publish_engine_version=lambda version, arch="": published.append((version, arch)),
        engine_answers_again=lambda: None,  # the traffic and policy loops' wake-up (none here)
    )
    board.overlay_ready.set()
    ctx = SimpleNamespace(
        clock=SimpleNamespace(now=lambda: 1_700_000_000.0 + trio.current_time(), monotonic=trio.current_time),
        store=store,
        local=SimpleNamespace(node_id="id1", node_name="n1"),
        board=board,
        metrics=Metrics(),
        write=store.write,
        state_changes=store.subscribe,
    )
    return store, ctx


async def test_a_failing_docker_info_keeps_the_last_capacity_and_never_stops_the_agent(
    autojump_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, published = Engine(info_failures=6), list[tuple[str, str]]()
    store, ctx = await _member(engine, monkeypatch, published)
    run = member_agent._run_agent(ctx, None, None, 0.0, None, None, None, lambda ok, error: None)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: run)
        await trio.sleep(10)  # /info failed at 0, 1, 3, 7 s: the agent ran on, the record kept its capacity
        assert engine.listings >= 2 and not published
        recorded = store.snapshot().nodes["id1"]
        assert (recorded.cpu_nanos, recorded.memory_bytes) == KNOWN
        assert [round(t) for t in engine.info_calls] == [0, 1, 3, 7]  # back-off: 1, 2, 4 s ...
        await trio.sleep(60)  # ... 8, 16 s, then it answers (31 s) and is recorded once
        recorded = store.snapshot().nodes["id1"]
        assert (recorded.cpu_nanos, recorded.memory_bytes) == (8_000_000_000, 16 << 30)
        assert published == [("28.2.2", "x86_64")] and len(engine.info_calls) == 7
        nursery.cancel_scope.cancel()


async def test_a_failing_docker_info_alone_never_marks_the_engine_unreachable(
    autojump_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``/info`` answering 500 while listings and events work (containerd trouble) is no engine outage: the
    engine watch hears only the listings' and the event subscription's answers, so the node keeps taking
    tasks and the leader never replaces them."""
    engine = Engine(info_failures=1_000)
    _, ctx = await _member(engine, monkeypatch, [])
    watch = EngineWatch()

    def seen(ok: bool, error: str) -> None:
        watch.seen(ok, error, trio.current_time())

    run = member_agent._run_agent(ctx, None, None, 0.0, None, None, None, seen)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: run)
        for _ in range(120):  # two minutes of failing reads, looked at every second
            await trio.sleep(1)
            assert watch.mark(trio.current_time()) == EngineMark()  # never down
        assert len(engine.info_calls) >= 6 and engine.listings >= 1
        nursery.cancel_scope.cancel()


async def test_the_engine_back_reads_its_version_again(
    autojump_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dockerd upgraded in place (apt: 28 -> 29) restarts under a running agent: once the engine is back
    its version is read and gossiped again, so the engine-version filter judges the node by the new one."""
    engine, published = Engine(info_failures=0), list[tuple[str, str]]()
    _, ctx = await _member(engine, monkeypatch, published)
    backs: list[Any] = []

    async def agent_loop(*args: Any, engine_back: Any, task_status: Any, **kwargs: Any) -> None:
        backs.append(engine_back)
        task_status.started()
        await trio.sleep_forever()

    monkeypatch.setattr(member_agent, "run_agent", agent_loop)
    run = member_agent._run_agent(ctx, None, None, 0.0, None, None, None, lambda ok, error: None)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: run)
        await trio.sleep(1)
        assert published == [("28.2.2", "x86_64")]
        engine.version = "29.0.1"
        backs[0]()
        await trio.sleep(1)
        assert published == [("28.2.2", "x86_64"), ("29.0.1", "x86_64")]
        nursery.cancel_scope.cancel()


async def test_only_an_engine_away_makes_the_next_agent_run_an_engine_back(
    autojump_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``serve_agent`` runs the agent again after it failed: a failure of its own (not the engine's) is no
    engine back (full overlay, ingress/VIP and policy passes every ~6 s of back-off), while an engine whose
    open failed (dockerd stopped: its socket gone) makes the next run's first subscription tell it."""
    engine = Engine(info_failures=0)
    _, ctx = await _member(engine, monkeypatch, [])
    ctx.board.health = {}
    opens = [True, True, True]
    was_away: list[bool] = []

    async def opened(docker_host: Any) -> Engine:
        if not opens.pop(0):
            raise ExecutorError("cannot reach the docker engine: no such file or directory")
        return engine

    async def agent_loop(*args: Any, engine_was_away: bool, task_status: Any, **kwargs: Any) -> None:
        was_away.append(engine_was_away)
        task_status.started()
        if len(was_away) < 3:
            raise RuntimeError("a bug of the agent's own")
        await trio.sleep_forever()

    monkeypatch.setattr(member_agent, "open_docker_executor", opened)
    monkeypatch.setattr(member_agent, "run_agent", agent_loop)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(member_agent.serve_agent, ctx, docker_host=""))  # type: ignore[arg-type]
        await trio.sleep(30)
        assert was_away == [False, False, False]  # two failures of its own: no engine back
        nursery.cancel_scope.cancel()
    was_away.clear()
    opens[:] = [False, True]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(member_agent.serve_agent, ctx, docker_host=""))  # type: ignore[arg-type]
        await trio.sleep(30)
        assert was_away == [True]  # the engine's open failed: the run after it is an engine back
        nursery.cancel_scope.cancel()
