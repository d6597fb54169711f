"""A failed rollout whose automatic rollback the FSM refuses (review r52c): the real leader loop on an
in-memory Raft applying the real FSM, under trio's MockClock.

On main the refused rollback was logged and the loop went back to planning before placing anything: the
orchestrator reported the failure again at every round, so no task of ANY service was placed again, while
``status`` said the scheduler was running (19 refusals in 19 mock seconds, none of another service's tasks
placed). Now the rollback is written as a pause naming the refusal, and the round's placements go on.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
import trio
import trio.testing

from p2porch.clock import TrioClock
from p2porch.config import SchedulerConfig
from p2porch.leader.loop import serve_scheduler
from p2porch.model import Node, NodeRole, Rollout, ServiceSpec, Task, TaskState
from p2porch.raft import commands as C
from p2porch.raft.state import ClusterState
from p2porch.testing.leader_context import ADDR, leader_context
from p2porch.testing.memstore import MemoryRaft, MemoryStore

EPOCH = 1_800_000_000.0


def node(node_id: str) -> Node:
    return Node(
        node_id,
        node_id,
        f"10.0.0.{node_id[-1]}",
        7947,
        7946,
        role=NodeRole.VOTER,
        cpu_nanos=4 * 10**9,
        memory_bytes=8 << 30,
    )


def spec(name: str, image: str, *publish: str) -> ServiceSpec:
    update = {"failure_action": "rollback", "monitor": "5s"}
    return ServiceSpec.from_dict(
        {"name": name, "image": image, "replicas": 2, "publish": list(publish), "update": update}
    )


async def wait_for(store: MemoryStore, condition: Callable[[ClusterState], bool]) -> None:
    async with store.subscribe() as changes:
        while not condition(store.snapshot()):
            await changes.receive()


def placed(state: ClusterState, service_id: str) -> int:
    return sum(1 for t in state.tasks.values() if t.service_id == service_id and t.node_id is not None)


def new_web(state: ClusterState) -> list[Task]:
    """web's tasks of its updated spec that were placed."""
    current = state.services["web"].spec.template_hash()
    return [
        t
        for t in state.tasks.values()
        if t.service_id == "web" and t.template_hash == current and t.node_id is not None
    ]


async def report(store: MemoryStore, clock: TrioClock, tasks: list[Task], state: TaskState) -> None:
    """Each task's agent reports it in ``state``."""
    for task in tasks:
        seen = C.TaskStatusReport(
            task.task_id,
            state=state,
            state_at=clock.now(),
            error="boom" if state == TaskState.FAILED else None,
        )
        await store.write(
            C.ReportTaskStates(at=clock.now(), node_id=task.node_id or "", reports=(seen,)).encode()
        )


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def test_a_refused_rollback_pauses_the_service_and_the_cluster_is_scheduled(
    autojump_clock: Any, caplog: Any
) -> None:
    caplog.set_level(logging.INFO)
    clock = TrioClock(EPOCH)
    store = MemoryRaft([ADDR], leader=ADDR).store(ADDR)
    await store.write(C.InitCluster(at=clock.now(), cluster_id="c0ffee").encode())
    for record in (node("n1"), node("n2")):
        await store.write(C.AddNode(at=clock.now(), node=record).encode())
        await store.write(C.LeaseSubnet(at=clock.now(), node_id=record.node_id).encode())
    await store.write(
        C.CreateService(at=clock.now(), service_id="web", spec=spec("web", "app:1", "30000:80")).encode()
    )
    ctx = leader_context(store, clock)

    async with trio.open_nursery() as nursery:
        await nursery.start(partial(serve_scheduler, ctx, SchedulerConfig(), rng=random.Random(7)))
        await wait_for(store, lambda s: placed(s, "web") == 2)
        await report(store, clock, [t for t in store.snapshot().tasks.values()], TaskState.RUNNING)
        # an update moves web off its chosen ingress port 30000 (to 9081), and api is then assigned
        # 30000 from the dynamic range: the rollback point's port is another service's now
        web = store.snapshot().services["web"]
        moved = C.UpdateService.of(
            web,
            at=clock.now(),
            spec=spec("web", "app:2", "9081:80"),
            previous_spec=web.spec,
            rollout=Rollout.update(clock.now()),
        )
        await store.write(moved.encode())
        await store.write(
            C.CreateService(at=clock.now(), service_id="api", spec=spec("api", "app:1", "80")).encode()
        )
        assert store.snapshot().services["api"].assigned_ports == (("tcp", 80, 30000),)
        await wait_for(store, lambda s: any(new_web(s)))
        await report(store, clock, new_web(store.snapshot()), TaskState.FAILED)
        # an unrelated service created after the failure: main placed none of its tasks, ever
        await store.write(
            C.CreateService(at=clock.now(), service_id="late", spec=spec("late", "app:1")).encode()
        )
        # bounded by rounds, not mock time: autojump moves the clock while a round plans in its thread
        while not (placed(store.snapshot(), "late") == 2 and store.snapshot().services["web"].update_paused):
            if sum("update of web failed" in r.getMessage() for r in caplog.records) >= 10:
                break  # main: the failure again at every round, the rollback refused each time
            await trio.sleep(1)
        nursery.cancel_scope.cancel()

    state = store.snapshot()
    assert placed(state, "late") == 2
    web = state.services["web"]
    assert web.update_paused and web.spec.image == "app:2"
    assert web.rollout is not None
    assert web.rollout.reason.startswith("update failed: ")
    assert (
        "(not rolled back: --publish: port '30000' (tcp) is already in use by service 'api'"
        in web.rollout.reason
    )
    refusals = [r for r in caplog.records if "update failure action for web refused" in r.getMessage()]
    assert len(refusals) == 1  # main: one per round, with the failure line, forever
    assert ctx.board.health["scheduler"] == "running"
