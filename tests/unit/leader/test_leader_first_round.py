"""A new leader's first round plans only the services that are not settled, and decides what a full round
decides; the settled ones are planned by the rounds after it (pure; ``leader/first_round.py``)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import pytest
from test_leader_incremental import commit, decisions, new_cluster, random_change, report, run

from p2porch.leader.first_round import SteadyCheck
from p2porch.leader.incremental import IncrementalPlanner
from p2porch.leader.scheduling import plan_round
from p2porch.model import DesiredState, Node, NodeStatus, ServiceSpec, TaskState
from p2porch.model.container import RestartPolicy
from p2porch.raft import commands as C
from p2porch.raft.state import EMPTY_STATE, ClusterState
from p2porch.scheduler import Orchestrator


@pytest.mark.parametrize("seed", range(40))
def test_first_rounds_and_their_sweeps_equal_full_rounds(seed: int) -> None:
    """Leadership changes often (a first round in a third of the steps) and the sweep is slow (2 tasks
    a round), so most rounds are a first round or run during a sweep: every one decides what a full
    round decides, wakes included, and draws the same task ids."""
    rng = random.Random(seed)
    state, now = new_cluster(rng), 10.0
    full_orch, inc_orch = Orchestrator(random.Random(seed)), Orchestrator(random.Random(seed))
    planner = IncrementalPlanner(inc_orch, full_every_s=1e9, sweep_tasks=2)
    seen = Counter[str]()
    for step in range(60):
        full = plan_round(state, now, full_orch)
        first = planner.first_rounds
        incremental = planner.plan(state, now)
        assert decisions(incremental) == decisions(full), f"seed {seed} step {step}"
        assert inc_orch.rng.getstate() == full_orch.rng.getstate()
        if planner.first_rounds > first:
            seen["first, some left out" if planner.last_scope < len(state.services) else "first"] += 1
        if planner.sweeping:
            seen["sweeping"] += 1
        state = commit(rng, state, full, now)
        for _ in range(rng.randrange(0, 4)):
            state = random_change(rng, state, now)
        if rng.random() < 0.33:
            planner.reset()  # leadership lost and won back: a first round next
        now += rng.choice([0.0, 0.5, 1.0, 3.0, 10.0, 30.0])
    assert seen["first, some left out"] + seen["first"] > 0


def settled_cluster(services: int, replicas: int = 3, nodes: int = 4) -> ClusterState:
    """``services`` services of ``replicas`` replicas, every task placed and running."""
    state = run(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c"))
    for i in range(nodes):
        state = run(state, C.AddNode(at=1.0, node=Node(f"id{i}", f"n{i}", f"10.0.0.{i + 1}", 7947, 7946)))
    for s in range(services):
        spec = ServiceSpec(name=f"svc{s:02d}", image="app:1", replicas=replicas, restart=RestartPolicy())
        state = run(state, C.CreateService(at=1.5, service_id=f"s{s:02d}", spec=spec))
    plan = plan_round(state, 2.0, Orchestrator(random.Random(0)))
    state = run(state, C.PutTasks(at=2.0, items=tuple(plan.items)))
    for t in list(state.tasks.values()):
        state = report(state, 2.5, t.task_id, state="running")
    return state


def running(state: ClusterState, service_id: str) -> list[str]:
    return sorted(
        t.node_id or ""
        for t in state.tasks.values()
        if t.service_id == service_id and t.desired_state == DesiredState.RUNNING
    )


def test_a_new_leader_plans_a_new_service_alone_then_sweeps_the_settled_ones() -> None:
    state = settled_cluster(30)
    spec = ServiceSpec(name="probe", image="app:1", replicas=2)
    state = run(state, C.CreateService(at=50.0, service_id="probe", spec=spec))
    planner = IncrementalPlanner(Orchestrator(random.Random(1)), sweep_tasks=9)
    plan = planner.plan(state, 60.0)
    assert planner.first_rounds == 1 and planner.last_scope == 1  # the 30 settled services left out
    placed = [i.task for i in plan.items if isinstance(i, C.TaskPut)]
    assert {t.service_id for t in placed} == {"probe"} and all(t.node_id for t in placed)
    assert len(placed) == 2 and planner.sweeping and not planner.quiet
    state = run(state, C.PutTasks(at=60.0, items=tuple(plan.items)))
    scopes = []
    while planner.sweeping:
        assert planner.plan(state, 61.0).empty  # a settled service decides nothing
        scopes.append(planner.last_scope)
    # 3 services (9 tasks) a round, the probe (it acted) in the first of them
    assert scopes == [4] + [3] * 9 and planner.first_rounds == 1 and planner.full_rounds == 1


def test_a_first_round_repairs_a_dead_nodes_tasks_and_a_replica_change() -> None:
    """What the old leader left undone: a node it marked down, a scale it did not plan yet."""
    state = settled_cluster(10)
    victim = next(t for t in state.tasks.values() if t.service_id == "s03")
    lost = victim.node_id
    state = run(state, C.UpdateNode(at=50.0, node_id=lost or "", status=NodeStatus.DOWN))
    svc = state.services["s07"]
    state = run(state, C.UpdateService.of(svc, at=50.0, spec=replace(svc.spec, replicas=5)))
    hit = {t.service_id for t in state.tasks.values() if t.node_id == lost}
    planner = IncrementalPlanner(Orchestrator(random.Random(2)))
    full = plan_round(state, 60.0, Orchestrator(random.Random(2)))
    plan = planner.plan(state, 60.0)
    assert decisions(plan) == decisions(full)
    assert planner.last_scope == len(hit | {"s07"}) < 10  # only the services with work to do
    state = run(state, C.PutTasks(at=60.0, items=tuple(plan.items)))
    assert len(running(state, "s07")) == 5 and all(running(state, "s07"))
    for sid in hit:  # every slot on a live node again
        nodes = running(state, sid)
        assert lost not in nodes and len(nodes) == (5 if sid == "s07" else 3) and all(nodes)


def test_steady_check() -> None:
    state = settled_cluster(1, replicas=2)
    svc = state.services["s00"]
    tasks = list(state.tasks.values())
    check = SteadyCheck(state.nodes, 3.0)
    assert check.steady(svc, tasks) == (True, 2.5 + svc.spec.update.monitor_s)  # the update monitor
    assert SteadyCheck(state.nodes, 100.0).steady(svc, tasks) == (True, None)  # settled long ago
    assert check.steady(None, tasks) == (False, None)  # a removed service's tasks
    assert not check.steady(svc, tasks[:1])[0]  # a slot missing
    assert not check.steady(replace(svc, spec=replace(svc.spec, replicas=1)), tasks)[0]  # over
    assert not check.steady(replace(svc, spec=replace(svc.spec, image="app:2")), tasks)[0]  # outdated
    starting = [replace(tasks[0], state=TaskState.STARTING), tasks[1]]
    assert not check.steady(svc, starting)[0]
    unhealthy = [replace(tasks[0], health="unhealthy"), tasks[1]]
    assert not check.steady(svc, unhealthy)[0]
    drained = run(state, C.UpdateNode(at=3.0, node_id=tasks[0].node_id or "", availability="drain"))  # type: ignore[arg-type]
    assert not SteadyCheck(drained.nodes, 3.0).steady(svc, tasks)[0]
    old = [
        replace(tasks[0], desired_state=DesiredState.SHUTDOWN, state=TaskState.SHUTDOWN, task_id=f"o{i}")
        for i in range(4)
    ]
    assert check.steady(svc, tasks + old[:3])[0]  # the history kept per slot
    assert not check.steady(svc, tasks + old)[0]  # one more: forgotten by the round
