"""Rebalance planner and the orchestrator's start-first moves (pure)."""

from __future__ import annotations

import dataclasses
import random

from p2porch.model import TERMINAL_STATES, Node, Service, ServiceSpec, Task
from p2porch.scheduler import Orchestrator, PlacedTask, ShutdownTask
from p2porch.scheduler.rebalance import FAILURE_COOLDOWN_S, MOVE_DEADLINE_S, Move, plan_rebalance

SPEC = ServiceSpec(name="web", image="busybox:1", replicas=4, rebalance=True)


def task(
    slot: int, node: str, spec: ServiceSpec = SPEC, sid: str = "s1", tid: str = "", **kw: object
) -> Task:
    fields: dict[str, object] = {
        "task_id": tid or f"{sid}-t{slot}-{node}",
        "service_id": sid,
        "slot": slot,
        "node_id": node,
        "state": "running",
        "started_at": 1.0,
        "template_hash": spec.template_hash(),
        **kw,
    }
    return Task(**fields)  # type: ignore[arg-type]


def placed(tasks: list[Task], services: list[Service]) -> list[PlacedTask]:
    names = {s.service_id: s.spec.name for s in services}
    return [
        PlacedTask(names[t.service_id], t.node_id)
        for t in tasks
        if t.node_id and (t.desired_state == "running" or t.state not in TERMINAL_STATES)
    ]


def plan(
    services: list[Service], tasks: list[Task], nodes: list[Node], now: float = 100.0, max_moves: int = 2
):
    return plan_rebalance(
        services,
        tasks,
        nodes,
        placed(tasks, services),
        now,
        wanted={s.service_id for s in services},
        max_moves=max_moves,
    )


NODES = [Node("n1", "n1"), Node("n2", "n2"), Node("n3", "n3")]
PILED = [task(1, "n1"), task(2, "n1"), task(3, "n2"), task(4, "n2")]


def test_moves_one_task_of_the_most_loaded_node_to_the_empty_one() -> None:
    p = plan([Service("s1", SPEC)], PILED, NODES)
    assert p.moves == [Move("s1-t2-n1", "s1", 2, "n1", "n3")] and p.balanced == set()


def test_balanced_service_is_reported_and_not_moved() -> None:
    tasks = [task(1, "n1"), task(2, "n2"), task(3, "n3"), task(4, "n1")]
    p = plan([Service("s1", SPEC)], tasks, NODES)
    assert p.moves == [] and p.balanced == {"s1"}


def test_one_move_at_a_time_per_service_and_budget_cluster_wide() -> None:
    moving = [dataclasses.replace(PILED[1], move_to="n3"), *PILED[:1], *PILED[2:]]
    p = plan([Service("s1", SPEC)], moving, NODES)
    assert p.moves == [] and p.balanced == set()  # busy: its move is in flight
    other = dataclasses.replace(SPEC, name="api")
    services = [Service("s1", SPEC), Service("s2", other)]
    both = [*PILED, *(task(t.slot, t.node_id or "", other, sid="s2") for t in PILED)]
    assert len(plan(services, both, NODES, max_moves=2).moves) == 2
    assert len(plan(services, both, NODES, max_moves=1).moves) == 1


def test_unsettled_or_recently_failed_services_wait() -> None:
    starting = [*PILED[:3], dataclasses.replace(PILED[3], state="starting")]
    assert plan([Service("s1", SPEC)], starting, NODES).moves == []
    unhealthy = [*PILED[:3], dataclasses.replace(PILED[3], health="unhealthy")]
    assert plan([Service("s1", SPEC)], unhealthy, NODES).moves == []
    crashed = task(2, "n3", tid="x", desired_state="shutdown", state="failed", state_at=95.0, created_at=9.0)
    assert plan([Service("s1", SPEC)], [*PILED, crashed], NODES).moves == []
    # a task that failed before its slot's running task was created (e.g. lost with its node) is history
    lost = dataclasses.replace(crashed, created_at=-1.0)
    assert len(plan([Service("s1", SPEC)], [*PILED, lost], NODES).moves) == 1
    later = plan([Service("s1", SPEC)], [*PILED, crashed], NODES, now=95.0 + FAILURE_COOLDOWN_S + 1)
    assert len(later.moves) == 1


def test_targets_respect_filters_and_strategy() -> None:
    small = [Node("n1", "n1", memory_bytes=8 << 30), Node("n2", "n2", memory_bytes=8 << 30), Node("n3", "n3")]
    reserving = dataclasses.replace(SPEC, reserve_memory_bytes=1 << 30)
    p = plan([Service("s1", reserving)], [task(t.slot, t.node_id or "", reserving) for t in PILED], small)
    assert p.moves == [] and p.balanced == {"s1"}  # n3 has no known memory: nothing reserving fits
    drained = [*NODES[:2], Node("n3", "n3", availability="drain")]
    assert plan([Service("s1", SPEC)], PILED, drained).moves == []
    binpack = dataclasses.replace(SPEC, strategy="binpack")
    p = plan([Service("s1", binpack)], [task(t.slot, t.node_id or "", binpack) for t in PILED], NODES)
    assert p.moves == [] and p.balanced == {"s1"}


def test_moves_whose_target_left_or_whose_replacement_failed_are_cancelled() -> None:
    old = dataclasses.replace(PILED[1], move_to="n3", created_at=1.0)
    gone = [Node("n1", "n1"), Node("n2", "n2"), Node("n3", "n3", status="down")]
    assert plan([Service("s1", SPEC)], [old, *PILED[2:]], gone).cancels == [old.task_id]
    failed = task(2, "n3", tid="r", state="rejected", created_at=50.0, state_at=51.0)
    assert plan([Service("s1", SPEC)], [old, failed, *PILED[2:]], NODES).cancels == [old.task_id]


def test_orchestrator_starts_the_replacement_on_the_target_then_stops_the_old_task() -> None:
    orch = Orchestrator(random.Random(1))
    services = [Service("s1", SPEC)]
    old = dataclasses.replace(PILED[1], move_to="n3")
    tasks = [PILED[0], old, *PILED[2:]]
    r1 = orch.reconcile(services, tasks, NODES, now=10.0)
    (create,) = r1.creates
    assert (create.slot, create.node_id, create.reason) == (2, "n3", "rebalance") and r1.shutdowns == []
    new = Task(
        create.task_id, "s1", 2, "n3", state="starting", template_hash=create.template_hash, created_at=10.0
    )
    assert orch.reconcile(services, [*tasks, new], NODES, now=11.0).actions == []
    up = dataclasses.replace(new, state="running", started_at=12.0)
    r3 = orch.reconcile(services, [*tasks, up], NODES, now=12.0)
    assert r3.actions == [ShutdownTask(old.task_id, "moved to n3 (rebalance)")]


def test_orchestrator_keeps_the_old_task_when_the_replacement_fails() -> None:
    orch = Orchestrator(random.Random(2))
    old = dataclasses.replace(PILED[1], move_to="n3", created_at=1.0)
    failed = task(2, "n3", tid="r", state="failed", created_at=10.0, state_at=11.0)
    r = orch.reconcile([Service("s1", SPEC)], [PILED[0], old, failed, *PILED[2:]], NODES, now=12.0)
    assert r.creates == [] and r.shutdowns == [ShutdownTask("r", "superseded")]


def test_an_earlier_failed_attempt_does_not_cancel_a_new_move() -> None:
    old = dataclasses.replace(PILED[1], move_to="n3", move_at=200.0)
    earlier = task(
        2, "n3", tid="r1", desired_state="shutdown", state="failed", created_at=100.0, state_at=101.0
    )
    p = plan([Service("s1", SPEC)], [old, earlier, PILED[0], *PILED[2:]], NODES, now=205.0)
    assert p.cancels == []
    # and the orchestrator, which sees it too, starts the replacement rather than giving up
    r = Orchestrator(random.Random(3)).reconcile(
        [Service("s1", SPEC)], [old, earlier, PILED[0], *PILED[2:]], NODES, now=205.0
    )
    assert [(c.slot, c.node_id) for c in r.creates] == [(2, "n3")]


def test_moves_with_an_unhealthy_or_late_replacement_are_cancelled() -> None:
    old = dataclasses.replace(PILED[1], move_to="n3", move_at=50.0)
    sick = task(2, "n3", tid="r", created_at=51.0, health="unhealthy")
    assert plan([Service("s1", SPEC)], [old, sick, PILED[0], *PILED[2:]], NODES, now=60.0).cancels == [
        old.task_id
    ]
    pending = Task("r", "s1", 2, None, state="pending", template_hash=SPEC.template_hash(), created_at=51.0)
    tasks = [old, pending, PILED[0], *PILED[2:]]
    assert plan([Service("s1", SPEC)], tasks, NODES, now=60.0).cancels == []
    assert plan([Service("s1", SPEC)], tasks, NODES, now=50.0 + MOVE_DEADLINE_S + 1).cancels == [old.task_id]


def test_no_move_while_a_stopped_task_still_holds_its_node() -> None:
    stopping = task(5, "n1", tid="gone", desired_state="shutdown", state="running")
    assert plan([Service("s1", SPEC)], [*PILED, stopping], NODES).moves == []


def test_the_moved_task_names_its_target_node_not_its_id() -> None:
    """The h50 journey: `service ps` after `service rebalance` said `moved to f568e656c1f0197b
    (rebalance)`, a node id where every other column and docs/scheduler.md give the node's name."""
    nodes = [Node("a1f0", "n1"), Node("b2e1", "n2"), Node("c3d2", "n3")]
    orch = Orchestrator(random.Random(1))
    services = [Service("s1", SPEC)]
    piled = [task(1, "a1f0"), task(2, "a1f0"), task(3, "b2e1"), task(4, "b2e1")]
    old = dataclasses.replace(piled[1], move_to="c3d2")
    tasks = [piled[0], old, *piled[2:]]
    (create,) = orch.reconcile(services, tasks, nodes, now=10.0).creates
    up = Task(
        create.task_id, "s1", 2, "c3d2", state="running", template_hash=create.template_hash,
        created_at=10.0, started_at=12.0,
    )  # fmt: skip
    done = orch.reconcile(services, [*tasks, up], nodes, now=12.0)
    assert done.actions == [ShutdownTask(old.task_id, "moved to n3 (rebalance)")]
