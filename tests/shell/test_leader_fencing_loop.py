"""The leader loop under MockClock stops writing a round once it is deposed: it claims its epoch before
planning, stamps every chunk with it, re-checks leadership before each chunk and stops at the FSM's
refusal when its own view of leadership is behind."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

import pytest
import trio
import trio.testing

from p2porch.clock import TrioClock
from p2porch.config import SchedulerConfig
from p2porch.context import MemberContext
from p2porch.leader.loop import serve_scheduler
from p2porch.leader.scheduling import ROUND_CHUNK_ITEMS
from p2porch.model import Node, ServiceSpec
from p2porch.raft import commands as C
from p2porch.raft.state import ClusterState
from p2porch.raft.status import RaftStatus
from p2porch.testing.leader_context import leader_context
from p2porch.testing.memstore import MemoryRaft, MemoryStore

ME, OTHER = "10.0.0.1:7947", "10.0.0.2:7947"
REPLICAS = 2 * ROUND_CHUNK_ITEMS + 500  # a round of three chunks
EPOCH = 1_800_000_000.0


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def service_on_two_nodes(store: MemoryStore, clock: TrioClock) -> MemberContext:
    """An initialised cluster of two ready nodes and one service of REPLICAS tasks; the loop's context."""
    await store.write(C.InitCluster(at=clock.now(), cluster_id="c0ffee").encode())
    for i in (1, 2):
        record = Node(
            f"n{i}", f"n{i}", f"10.0.0.{i}", 7947, 7946, cpu_nanos=4_000_000_000, memory_bytes=8 << 30
        )
        await store.write(C.AddNode(at=clock.now(), node=record).encode())
        await store.write(C.UpdateNode(at=clock.now(), node_id=f"n{i}", status="ready").encode())
    spec = ServiceSpec(name="web", image="busybox", replicas=REPLICAS)
    await store.write(C.CreateService(at=clock.now(), service_id="s1", spec=spec).encode())
    return leader_context(store, clock)


async def wait_for(store: MemoryStore, condition: Callable[[ClusterState], bool]) -> None:
    async with store.subscribe() as changes:
        while not condition(store.snapshot()):
            await changes.receive()


class DeposedAfterFirstChunk(MemoryStore):
    """The leader's store; right after its first round chunk commits another voter wins an election.

    ``stale_view``: this node's status keeps saying it leads in its old term (a status not refreshed
    yet, a leader cut off that has not stepped down), and the new leader claims its epoch at once, so
    only the FSM can stop the old leader's next chunk."""

    def __init__(self, raft: MemoryRaft, *, stale_view: bool) -> None:
        super().__init__(raft, ME)
        self.stale_view = stale_view
        self.view: RaftStatus | None = None  # frozen status once deposed (stale_view)
        self.results: list[tuple[C.Command, dict[str, Any]]] = []  # this node's PutTasks and their results
        self.deposed = trio.Event()
        self.second_chunk = trio.Event()  # the old leader sent a chunk after it was deposed

    def status(self) -> RaftStatus:
        return self.view if self.view is not None else super().status()

    async def propose(self, command: bytes, timeout_s: float = 5.0) -> dict[str, Any]:
        decoded = C.decode_command(command)
        result = await super().propose(command, timeout_s)
        if not isinstance(decoded, C.PutTasks):
            return result
        self.results.append((decoded, result))
        if len(self.results) == 2:
            self.second_chunk.set()
        if not self.deposed.is_set():
            if self.stale_view:
                self.view = replace(super().status())
            self.raft.set_leader(OTHER)
            if self.stale_view:
                self.raft.submit(C.ClaimLeaderEpoch(at=0.0, epoch=self.raft.term).encode())
            self.deposed.set()
        return result


async def start(store: MemoryStore, nursery: trio.Nursery) -> None:
    ctx = await service_on_two_nodes(store, TrioClock(EPOCH))
    await nursery.start(partial(serve_scheduler, ctx, SchedulerConfig(), rng=random.Random(3)))


def logged_chunks(raft: MemoryRaft) -> list[C.PutTasks]:
    """The PutTasks commands in the log, applied or refused by the FSM."""
    return [c for c in map(C.decode_command, raft.log) if isinstance(c, C.PutTasks)]


async def test_a_leader_that_sees_it_lost_leadership_writes_no_further_chunk(autojump_clock: Any) -> None:
    raft = MemoryRaft([ME, OTHER], leader=ME)
    store = DeposedAfterFirstChunk(raft, stale_view=False)
    async with trio.open_nursery() as nursery:
        await start(store, nursery)
        await store.deposed.wait()
        claims = [c for c in map(C.decode_command, raft.log) if isinstance(c, C.ClaimLeaderEpoch)]
        assert [c.epoch for c in claims] == [1]  # claimed before its first round
        # the loop goes back to sleeping as a follower: it waits for the role event, nothing else
        await trio.testing.wait_all_tasks_blocked()
        await trio.sleep(60)  # mock time: idle checks and fallbacks pass, still nothing written
        nursery.cancel_scope.cancel()
    (chunk,) = logged_chunks(raft)
    assert len(chunk.items) == ROUND_CHUNK_ITEMS and chunk.leader_epoch == 1
    assert len(raft.state.tasks) == ROUND_CHUNK_ITEMS
    assert len(store.results) == 1


async def test_a_leader_whose_view_is_behind_is_stopped_by_the_fsm(autojump_clock: Any) -> None:
    raft = MemoryRaft([ME, OTHER], leader=ME)
    store = DeposedAfterFirstChunk(raft, stale_view=True)
    async with trio.open_nursery() as nursery:
        await start(store, nursery)
        await store.second_chunk.wait()
        await trio.testing.wait_all_tasks_blocked()
        await trio.sleep(60)  # mock time: its next rounds find a newer epoch claimed and plan nothing
        nursery.cancel_scope.cancel()
    # chunk 1 committed, chunk 2 refused (forwarded to the new leader), chunk 3 never sent
    assert [r["ok"] for _, r in store.results] == [True, False]
    assert store.results[1][1]["field"] == "leader_epoch"
    assert raft.state.leader_epoch == 2
    assert [len(c.items) for c in logged_chunks(raft) if c.leader_epoch == 1] == [ROUND_CHUNK_ITEMS] * 2
    assert len(raft.state.tasks) == ROUND_CHUNK_ITEMS


async def test_a_leader_that_keeps_leading_writes_its_whole_round(autojump_clock: Any) -> None:
    raft = MemoryRaft([ME], leader=ME)
    store = MemoryStore(raft, ME)
    async with trio.open_nursery() as nursery:
        await start(store, nursery)
        await wait_for(store, lambda s: len(s.tasks) == REPLICAS)
        nursery.cancel_scope.cancel()
    assert [c.leader_epoch for c in logged_chunks(raft)] == [1, 1, 1]
