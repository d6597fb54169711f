"""The autoscaler loop under trio's MockClock: two leaders over one in-memory Raft log, a fake usage source.

The loop (``leader/autoscale_loop.py``) is the real one; the committed state is the real FSM's. A tiny
"agent" marks the service's tasks running whenever ``replicas`` changes, and ``fetch`` reports each
task's CPU as the service's demand spread over its tasks (capped at the limit), with a full window only
once the task has existed for one window, as a node's ``usage`` answer does.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import pytest
import trio
import trio.testing

from p2porch.clock import TrioClock
from p2porch.config import AutoscaleConfig
from p2porch.context import LocalBoard, LocalNode, MemberContext
from p2porch.control.events import describe_change
from p2porch.leader.autoscale_loop import serve_autoscaler
from p2porch.model import Node, NodeRole, ServiceSpec, Task
from p2porch.raft import commands as C
from p2porch.raft import fsm
from p2porch.raft.state import ClusterState
from p2porch.testing.memstore import MemoryRaft, MemoryStore

EPOCH = 1_800_000_000.0
A, B = "10.0.0.1:7947", "10.0.0.2:7947"
SECTION = AutoscaleConfig(sample_s=5.0, window_s=30.0, sync_s=15.0)
LIMIT = 0.5  # CPU limit per task (cores)


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


class Workload:
    """The service's CPU demand (cores) and when each task appeared (mock time)."""

    def __init__(self, demand: float) -> None:
        self.demand = demand
        self.born: dict[str, float] = {}
        self.answering = True

    async def fetch(self, node: Node) -> Mapping[str, Any] | None:
        if not self.answering:
            return None
        state: ClusterState = STORE_OF[node.node_id].snapshot()
        tasks = [t for t in state.tasks.values() if t.desired_state == "running" and t.state == "running"]
        now = trio.current_time()
        per_task = min(self.demand / max(len(tasks), 1), LIMIT)
        rows = [
            {
                "task_id": t.task_id,
                "service_id": t.service_id,
                "full": now - self.born.setdefault(t.task_id, now) >= SECTION.window_s,
                "cpu_cores": per_task,
                "memory_bytes": 1 << 20,
            }
            for t in tasks
        ]
        return {"window_s": SECTION.window_s, "tasks": rows}


STORE_OF: dict[str, MemoryStore] = {}


def context(store: MemoryStore, clock: TrioClock, name: str) -> MemberContext:
    async def ask_member(host: str) -> dict[str, Any] | None:
        return None

    return MemberContext(
        store=store,
        voter_control=store,  # type: ignore[arg-type]
        local=LocalNode(name, name, "10.0.0.1", A, "voter", 0, b"k" * 32),
        board=LocalBoard(),
        clock=clock,
        commit_timeout_s=5.0,
        ask_member=ask_member,
    )


async def run_tasks(store: MemoryStore, clock: TrioClock, *, outdated: bool = False) -> None:
    """The agent and scheduler in one: keep exactly ``replicas`` running tasks of service s1 on n1."""
    async with store.subscribe() as changes:
        while True:
            state = store.snapshot()
            service = state.services.get("s1")
            if service is not None and store.status().is_leader:
                spec = service.spec
                want = int(spec.replicas)
                live = sorted(
                    (t for t in state.tasks.values() if t.desired_state == "running"), key=lambda t: t.slot
                )
                items: list[C.TaskItem] = []
                for slot in range(len(live) + 1, want + 1):
                    task = Task(
                        task_id=f"t{slot}",
                        service_id="s1",
                        slot=slot,
                        node_id="n1",
                        state="running",  # type: ignore[arg-type]
                        template_hash="old" if outdated else spec.template_hash(),
                    )
                    items.append(C.TaskPut(task, task_version=0 if f"t{slot}" not in state.tasks else None))
                for task in live[want:]:
                    items.append(C.TaskRemove(task.task_id, task_version=None))
                if items:
                    await store.write(C.PutTasks(at=clock.now(), items=tuple(items)).encode())
                    continue
            await changes.receive()


async def setup(
    raft: MemoryRaft, clock: TrioClock, autoscale: dict[str, Any], replicas: int = 1
) -> MemoryStore:
    store = raft.store(A)
    STORE_OF.clear()
    STORE_OF["n1"] = store
    await store.write(C.InitCluster(at=clock.now(), cluster_id="c0ffee").encode())
    await store.write(
        C.AddNode(
            at=clock.now(),
            node=Node(
                node_id="n1",
                name="n1",
                addr="10.0.0.1",
                raft_port=7947,
                gossip_port=7946,
                role=NodeRole.VOTER,
                cpu_nanos=4_000_000_000,
                memory_bytes=8 << 30,
            ),
        ).encode()
    )
    spec = ServiceSpec.from_dict(
        {
            "name": "web",
            "image": "busybox",
            "replicas": replicas,
            "limit_cpu_nanos": int(LIMIT * 1e9),
            "autoscale": autoscale,
        }
    )
    await store.write(C.CreateService(at=clock.now(), service_id="s1", spec=spec).encode())
    return store


def steps(raft: MemoryRaft) -> list[tuple[int, int, str]]:
    """Every committed autoscale step as (from, to, reason), in log order, as `p2porch events` shows them."""
    out = []
    state = ClusterState()
    for command in raft.log:
        before = state
        state, _, changes = fsm.apply(state, command)
        for change in changes:
            if change.kind != "service":
                continue
            event = describe_change(change, before.services.get(change.key), state, 0.0)
            if event and event["action"] == "autoscaled":
                out.append((event["from"], event["to"], event["reason"]))
    return out


def replicas(store: MemoryStore) -> int:
    return store.snapshot().services["s1"].spec.replicas


async def test_step_load_scales_up_in_bounded_steps_to_max_and_every_step_is_an_event(
    autojump_clock: Any,
) -> None:
    clock = TrioClock(EPOCH)
    raft = MemoryRaft([A, B], leader=A)
    store = await setup(raft, clock, {"min": 1, "max": 6, "cpu_percent": 50})
    load = Workload(demand=2.0)  # 2 cores at 50 % of 0.5 -> 8 tasks wanted, max 6
    ctx = context(store, clock, "n1")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_tasks, store, clock)
        await nursery.start(partial(serve_autoscaler, ctx, SECTION, fetch=load.fetch))
        with trio.fail_after(600):
            while replicas(store) != 6:
                await trio.sleep(1)
        reached = trio.current_time()
        await trio.sleep(300)  # it stays at max
        held = ctx.board.autoscale["s1"]
        nursery.cancel_scope.cancel()
    chain = [(a, b) for a, b, _ in steps(raft)]
    assert chain == [(1, 2), (2, 4), (4, 6)], chain
    assert replicas(store) == 6
    # one window to fill before the first step, and each new task fills one before the next
    assert reached <= 4 * (SECTION.window_s + SECTION.sync_s)
    first_reason = steps(raft)[0][2]
    assert first_reason == "cpu 100 % of limit over 30 s, target 50 %", first_reason
    assert held["current"] == held["desired"] == 6 and held["recommended"] == 6, held
    assert held["reason"].startswith("steady: cpu 66.7 % of limit"), held


async def test_missing_usage_never_scales_and_says_so(autojump_clock: Any) -> None:
    clock = TrioClock(EPOCH)
    raft = MemoryRaft([A, B], leader=A)
    store = await setup(raft, clock, {"min": 1, "max": 6, "cpu_percent": 50})
    load = Workload(demand=2.0)
    load.answering = False  # the node does not answer the usage request
    ctx = context(store, clock, "n1")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_tasks, store, clock)
        await nursery.start(partial(serve_autoscaler, ctx, SECTION, fetch=load.fetch))
        await trio.sleep(10 * SECTION.sync_s)
        assert "missing data" in ctx.board.autoscale["s1"]["reason"]
        load.answering = True  # data comes back: it scales
        with trio.fail_after(300):
            while replicas(store) == 1:
                await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert steps(raft)[0][:2] == (1, 2)


async def test_paused_while_a_rolling_update_owns_the_tasks(autojump_clock: Any) -> None:
    clock = TrioClock(EPOCH)
    raft = MemoryRaft([A, B], leader=A)
    store = await setup(raft, clock, {"min": 1, "max": 6, "cpu_percent": 50})
    load = Workload(demand=2.0)
    ctx = context(store, clock, "n1")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial_run_outdated, store, clock)
        await nursery.start(partial(serve_autoscaler, ctx, SECTION, fetch=load.fetch))
        await trio.sleep(10 * SECTION.sync_s)
        reason = ctx.board.autoscale["s1"]["reason"]
        nursery.cancel_scope.cancel()
    assert steps(raft) == []
    assert reason == "paused: a rolling update is in progress"


async def partial_run_outdated(store: MemoryStore, clock: TrioClock) -> None:
    await run_tasks(store, clock, outdated=True)


async def test_leader_change_resumes_without_a_jump_and_without_duplicate_steps(autojump_clock: Any) -> None:
    """Load drops after a scale-up; the leader changes mid scale-down window. The new leader waits a full
    window of its own before stepping down, and the step chain has no gap and no repeat."""
    clock = TrioClock(EPOCH)
    raft = MemoryRaft([A, B], leader=A)
    down_delay = 120.0
    store_a = await setup(
        raft, clock, {"min": 1, "max": 8, "cpu_percent": 50, "scale_down_delay": "2m"}, replicas=4
    )
    store_b = raft.store(B)
    load = Workload(demand=0.1)  # 4 tasks at 5 % of their limit: wants 1
    ctx_a, ctx_b = context(store_a, clock, "n1"), context(store_b, clock, "n2")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_tasks, store_a, clock)
        nursery.start_soon(run_tasks, store_b, clock)
        await nursery.start(partial(serve_autoscaler, ctx_a, SECTION, fetch=load.fetch))
        await nursery.start(partial(serve_autoscaler, ctx_b, SECTION, fetch=load.fetch))
        with trio.fail_after(1000):
            while replicas(store_a) == 4:
                await trio.sleep(1)
        assert replicas(store_a) == 2  # at most half per step
        await trio.sleep(100)  # the last step's delay ends in 20 s; the new leader's own window in 120
        raft.set_leader(B)  # A is gone; B leads from now on
        changed_at = trio.current_time()
        with trio.fail_after(1000):
            while replicas(store_b) != 1:
                await trio.sleep(1)
        stepped_at = trio.current_time()
        await trio.sleep(600)
        assert ctx_a.board.autoscale == {}  # a former leader publishes no decisions
        assert ctx_b.board.autoscale["s1"]["current"] == 1
        nursery.cancel_scope.cancel()
    assert stepped_at - changed_at >= down_delay, "the new leader observed a full scale-down window first"
    chain = [(a, b) for a, b, _ in steps(raft)]
    assert chain == [(4, 2), (2, 1)], chain
