"""The incremental round equals the full round, on random clusters driven through the real FSM (pure).

Each scenario (seeded) builds a cluster, then alternates rounds and random changes: agents' reports
(running, failed, complete, unhealthy, shut down), service creates, updates (scale, new image, restart
policy), removals, invalid specs, node status and availability changes, and time passing. Every round
is planned twice, by a full ``plan_round`` and by the ``IncrementalPlanner``, with orchestrators whose
random sources are in the same state; the decisions must be identical, and the round (or the leader
loop's follow-up write) is then committed as the loop would, sometimes not at all (a lost write).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import pytest

from p2porch.leader.followups import rollout_done_updates, update_failure_updates
from p2porch.leader.incremental import IncrementalPlanner, restless
from p2porch.leader.scheduling import (
    Round,
    full_scope,
    occupies_node,
    placed_tasks,
    plan_round,
    plan_scope,
    spread_without_outgoing,
)
from p2porch.model import Node, NodeStatus, Rollout, ServiceSpec, Task
from p2porch.model.container import PortPublish, RestartPolicy, UpdateConfig
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE, ClusterState
from p2porch.scheduler import Orchestrator, build_node_infos
from p2porch.scheduler.usage import NodeUsage

GIB = 1024**3


def run(state: ClusterState, command: C.Command) -> ClusterState:
    new, result, _ = apply(state, command.encode())
    assert result["ok"], result
    return new


def try_run(state: ClusterState, command: C.Command) -> ClusterState:
    return apply(state, command.encode())[0]


def random_spec(rng: random.Random, name: str) -> ServiceSpec:
    mode = rng.choice(["replicated"] * 6 + ["global", "replicated-job"])
    publish = (PortPublish(target=80, published=8000 + rng.randrange(3)),) if rng.random() < 0.15 else ()
    return ServiceSpec(
        name=name,
        image=f"app:{rng.randrange(3)}",
        mode=mode,
        replicas=rng.randrange(0, 6),
        reserve_cpu_nanos=rng.choice([0, 0, 5 * 10**8, 10**9]),
        reserve_memory_bytes=rng.choice([0, GIB]),
        publish=publish if mode != "replicated-job" else (),
        max_replicas_per_node=rng.choice([0, 0, 1, 2]),
        restart=RestartPolicy(
            condition=rng.choice(["any", "on-failure", "none"]),
            delay_s=rng.choice([0.0, 1.0, 5.0]),
            max_attempts=rng.choice([0, 0, 2]),
            window_s=rng.choice([0.0, 20.0]),
        ),
        update=UpdateConfig(
            parallelism=rng.choice([0, 1, 2]),
            delay_s=rng.choice([0.0, 2.0]),
            order=rng.choice(["stop-first", "start-first"]),
            failure_action=rng.choice(["pause", "rollback", "continue"]),
            monitor_s=rng.choice([0.0, 3.0]),
        ),
    )


def new_cluster(rng: random.Random) -> ClusterState:
    state = run(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c"))
    for i in range(rng.randrange(2, 7)):
        labels = {"region": rng.choice(["a", "b"])} if rng.random() < 0.5 else {}
        node = Node(
            f"id{i}", f"n{i}", f"10.0.0.{i + 1}", 7947, 7946, labels=labels,
            cpu_nanos=rng.choice([0, 2 * 10**9, 4 * 10**9]), memory_bytes=rng.choice([0, 4 * GIB]),
        )  # fmt: skip
        state = run(state, C.AddNode(at=1.0, node=node))
    for s in range(rng.randrange(1, 6)):
        state = run(state, C.CreateService(at=1.5, service_id=f"s{s}", spec=random_spec(rng, f"svc{s}")))
    return state


def report(cluster: ClusterState, now: float, task_id: str, **fields: object) -> ClusterState:
    """The task's node reports ``fields`` (``state``, ``health``, ...) for it."""
    task = cluster.tasks[task_id]
    item = C.TaskStatusReport.from_wire({"task_id": task_id, "state_at": now, **fields}, 0)
    return try_run(cluster, C.ReportTaskStates(at=now, node_id=task.node_id or "", reports=(item,)))


def random_change(rng: random.Random, state: ClusterState, now: float) -> ClusterState:
    """One change an agent, an operator or gossip could make."""
    roll = rng.random()
    placed = [t for t in state.tasks.values() if t.node_id is not None]
    if roll < 0.55 and placed:
        t = rng.choice(placed)
        kind = rng.choice(["running"] * 5 + ["failed", "complete", "shutdown", "unhealthy", "healthy"])
        if kind in ("unhealthy", "healthy"):
            return report(state, now, t.task_id, state="running", health=kind)
        extra = {"error": "exit 1", "exit_code": 1} if kind == "failed" else {}
        return report(state, now, t.task_id, state=kind, **extra)
    services = sorted(state.services)
    if roll < 0.70 and services:
        svc = state.services[rng.choice(services)]
        spec = random_spec(rng, svc.spec.name)
        rollout = Rollout.update(now) if spec.template_hash() != svc.spec.template_hash() else svc.rollout
        if rng.random() < 0.3:
            rollout = None  # a change without a rollout record (as written before rollouts existed)
        return try_run(
            state, C.UpdateService.of(svc, at=now, spec=spec, previous_spec=svc.spec, rollout=rollout)
        )
    if roll < 0.76:
        sid = f"s{len(state.services) + rng.randrange(100, 10**6)}"
        return try_run(state, C.CreateService(at=now, service_id=sid, spec=random_spec(rng, f"x{sid}")))
    if roll < 0.80 and services:
        svc = state.services[rng.choice(services)]
        return try_run(state, C.RemoveService(at=now, service_id=svc.service_id))
    if roll < 0.83 and services:  # a spec this version no longer accepts, committed by another
        svc = state.services[rng.choice(services)]
        raw = {"name": svc.spec.name, "image": "app:1", "replicas": -1}
        body = C.UpdateService.of(svc, at=now).body() | {"spec": raw}
        bad = C.UpdateService.from_body(body, C.COMMAND_VERSION, at=now)
        return try_run(state, bad)
    if roll < 0.92 and state.nodes:
        node = state.nodes[rng.choice(sorted(state.nodes))]
        change = rng.choice(
            [{"status": NodeStatus.DOWN}, {"status": NodeStatus.READY}, {"availability": "drain"}]
            + [{"availability": "active"}, {"engine_down_at": now, "engine_error": "gone"}]
            + [{"engine_down_at": 0.0}]
        )
        return try_run(state, C.UpdateNode(at=now, node_id=node.node_id, **change))  # type: ignore[arg-type]
    return state


def commit(rng: random.Random, state: ClusterState, plan: Round, now: float) -> ClusterState:
    """What the leader loop writes after a round (sometimes lost)."""
    if rng.random() < 0.1:
        return state
    if plan.update_failures:
        for _, update, _ in update_failure_updates(state, plan.update_failures, now):
            state = try_run(state, update)
        return state
    if plan.rollouts_done:
        for _, update in rollout_done_updates(state, plan.rollouts_done, now):
            state = try_run(state, update)
        return state
    if plan.items:
        state = try_run(state, C.PutTasks(at=now, items=tuple(plan.items), expected_version=state.version))
    return state


def decisions(plan: Round) -> dict[str, object]:
    return {
        "items": {item.task_id: item for item in plan.items},
        "created": [item.task_id for item in plan.items if getattr(item, "task_version", None) == 0],
        "failures": plan.update_failures,
        "done": plan.rollouts_done,
        "wake_at": plan.wake_at,
        "skipped": plan.skipped,
        "rebalanced": plan.rebalanced,
    }


@pytest.mark.parametrize("seed", range(40))
def test_incremental_rounds_equal_full_rounds(seed: int) -> None:
    rng = random.Random(seed)
    state, now = new_cluster(rng), 10.0
    full_orch, inc_orch = Orchestrator(random.Random(seed)), Orchestrator(random.Random(seed))
    planner = IncrementalPlanner(inc_orch, full_every_s=1e9)
    scopes = Counter[str]()
    for step in range(60):
        full = plan_round(state, now, full_orch)
        incremental = planner.plan(state, now)
        assert decisions(incremental) == decisions(full), f"seed {seed} step {step}"
        assert inc_orch.rng.getstate() == full_orch.rng.getstate()
        scopes["partial" if planner.last_scope < len(state.services) else "all"] += 1
        state = commit(rng, state, full, now)
        for _ in range(rng.randrange(0, 4)):
            state = random_change(rng, state, now)
        if rng.random() < 0.05:
            planner.reset()  # leadership lost and won back
        now += rng.choice([0.0, 0.5, 1.0, 3.0, 10.0, 30.0])
    assert scopes["partial"] > 0  # the scenario did exercise incremental rounds


def test_a_quiet_cluster_plans_nothing_and_a_changed_service_alone() -> None:
    rng = random.Random(7)
    state = run(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c"))
    for i in range(3):
        state = run(state, C.AddNode(at=1.0, node=Node(f"id{i}", f"n{i}", f"10.0.0.{i + 1}", 7947, 7946)))
    for s in range(20):
        spec = ServiceSpec(name=f"svc{s}", image="app:1", replicas=3, restart=RestartPolicy(delay_s=0.0))
        state = run(state, C.CreateService(at=1.5, service_id=f"s{s}", spec=spec))
    planner = IncrementalPlanner(Orchestrator(rng))
    assert not planner.quiet  # nothing planned yet
    plan = planner.plan(state, 2.0)
    assert planner.full_rounds == 1 and len(plan.items) == 60
    assert not planner.quiet  # every service acted
    state = run(state, C.PutTasks(at=2.0, items=tuple(plan.items)))
    for t in list(state.tasks.values()):
        state = report(state, 2.5, t.task_id, state="running")
    assert planner.plan(state, 3.0).empty and planner.last_scope == 20  # every service acted last time
    assert planner.plan(state, 3.5).empty and planner.last_scope == 0
    assert planner.quiet  # all running, nothing acted: only a change or a wake time gives it work
    victim = next(t for t in state.tasks.values() if t.service_id == "s7")
    state = report(state, 4.0, victim.task_id, state="failed", error="exit 1")
    plan = planner.plan(state, 4.5)  # before the tasks' 5 s update monitor ends (they wake then)
    assert planner.last_scope == 1 and planner.full_rounds == 1
    assert {i.task.service_id for i in plan.items if isinstance(i, C.TaskPut)} == {"s7"}
    assert len(plan.items) == 2  # the failed task shut down, its replacement created
    assert not planner.quiet  # s7 acted (and holds an ended task)


def test_a_node_change_or_a_rebalance_plans_everything() -> None:
    state = run(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c"))
    state = run(state, C.AddNode(at=1.0, node=Node("id0", "n0", "10.0.0.1", 7947, 7946)))
    state = run(state, C.CreateService(at=1.5, service_id="s0", spec=ServiceSpec(name="a", image="x")))
    planner = IncrementalPlanner(Orchestrator(random.Random(1)), full_every_s=100.0)
    planner.plan(state, 2.0)
    planner.plan(state, 3.0)
    assert planner.full_rounds == 1
    state = run(state, C.UpdateNode(at=3.0, node_id="id0", availability="drain"))  # type: ignore[arg-type]
    planner.plan(state, 4.0)
    assert planner.full_rounds == 2
    planner.plan(state, 104.0)  # the safety net
    assert planner.full_rounds == 3
    svc = state.services["s0"]
    state = run(state, C.UpdateService.of(svc, at=5.0, rebalance_requested=5.0))
    planner.plan(state, 105.0)
    assert planner.full_rounds == 4


def test_restless_services() -> None:
    spec = ServiceSpec(name="a", image="x", replicas=1)
    state = run(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c"))
    state = run(state, C.AddNode(at=1.0, node=Node("id0", "n0", "10.0.0.1", 7947, 7946)))
    state = run(state, C.CreateService(at=1.5, service_id="s0", spec=spec))
    svc = state.services["s0"]
    assert not restless(svc, []) and not restless(None, [])
    plan = plan_round(state, 2.0, Orchestrator(random.Random(1)))
    state = run(state, C.PutTasks(at=2.0, items=tuple(plan.items)))
    (task,) = state.tasks.values()
    assert not restless(svc, [task])  # assigned, waiting for its agent: a change will come
    state = report(state, 3.0, task.task_id, state="failed", error="exit 1")
    assert restless(svc, state.tasks.values())  # the restart back-off runs on time
    state = report(state, 3.0, task.task_id, state="running", health="unhealthy")
    assert restless(svc, state.tasks.values())


def test_node_usage_equals_the_infos_built_from_every_placed_task() -> None:
    rng = random.Random(3)
    state = new_cluster(rng)
    orchestrator = Orchestrator(rng)
    for step in range(10):
        plan = plan_round(state, 10.0 + step, orchestrator)
        state = commit(random.Random(step), state, plan, 10.0 + step)
        state = random_change(rng, state, 10.0 + step)
    scope = full_scope(state)
    usage = NodeUsage()
    by_service: dict[str, list] = {}
    for t in state.tasks.values():
        by_service.setdefault(t.service_id, []).append(t)
    for sid, tasks in by_service.items():
        usage.add(placed_tasks(state.services.get(sid), tasks))
    assert (
        usage.infos(state.nodes.values())
        == scope.infos
        == build_node_infos(state.nodes.values(), scope.placed or [])
    )
    for sid, tasks in by_service.items():  # removing everything leaves empty nodes
        usage.remove(placed_tasks(state.services.get(sid), tasks))
    assert usage.infos(state.nodes.values()) == build_node_infos(state.nodes.values())


@pytest.mark.parametrize("mode", ["replicated", "replicated-job"])
def test_a_slot_that_gave_up_restarts_when_its_window_moves_on_with_no_change(mode: str) -> None:
    """Past ``max_attempts`` within ``window`` the slot gives up without asking to wake; once the window
    moved past its restarts, the round restarts it although nothing changed: the service is restless."""
    policy = RestartPolicy(condition="any", delay_s=0.0, max_attempts=1, window_s=10.0)
    spec = ServiceSpec(name="a", image="x", mode=mode, replicas=1, restart=policy)
    state = run(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c"))
    state = run(state, C.AddNode(at=1.0, node=Node("id0", "n0", "10.0.0.1", 7947, 7946)))
    state = run(state, C.CreateService(at=1.5, service_id="s0", spec=spec))
    planner = IncrementalPlanner(Orchestrator(random.Random(1)))
    full = Orchestrator(random.Random(1))

    def both(now: float) -> Round:
        plan = planner.plan(state, now)
        assert decisions(plan) == decisions(plan_round(state, now, full))
        return plan

    for now in (2.0, 3.0, 4.0):  # placed; failed and restarted; failed again: gave up
        plan = both(now)
        if plan.items:
            state = run(state, C.PutTasks(at=now, items=tuple(plan.items)))
        for t in [t for t in state.tasks.values() if t.desired_state == "running" and t.state == "assigned"]:
            state = report(state, now + 0.5, t.task_id, state="failed", error="exit 1")
    assert both(5.0).empty and both(6.0).empty and planner.full_rounds == 1
    plan = both(16.0)  # the first restart left the window: one attempt is free again
    assert any(getattr(i, "task_version", None) == 0 for i in plan.items)


def _spread_by_walk(infos, slots, placing, tasks, specs):  # type: ignore[no-untyped-def]
    """The walk ``spread_without_outgoing`` made before it took each service's tasks: every task of the
    round's scope, kept here as the reference the indexed one must equal."""
    replicated = {key for key in slots if specs[key[0]].mode == "replicated"}
    if not replicated:
        return infos
    by_id = {n.node_id: n for n in infos}
    changed = {}
    for t in tasks:
        if (t.service_id, t.slot) not in replicated or t.task_id in placing or not occupies_node(t):
            continue
        node = changed.get(t.node_id or "")
        if node is None:
            found = by_id.get(t.node_id or "")
            if found is None:
                continue
            node = changed[found.node_id] = found.copy()
        node.remove_task(specs[t.service_id].name)
    return [changed.get(n.node_id, n) for n in infos] if changed else infos


def _random_states(seed: int, steps: int = 25) -> list[ClusterState]:
    """A seeded cluster after each of ``steps`` rounds and random changes (commits sometimes lost)."""
    rng = random.Random(seed)
    state, now, orchestrator, out = new_cluster(rng), 10.0, Orchestrator(random.Random(seed)), []
    for _ in range(steps):
        state = commit(rng, state, plan_round(state, now, orchestrator), now)
        for _ in range(rng.randrange(1, 4)):
            state = random_change(rng, state, now)
        out.append(state)
        now += rng.choice([0.5, 1.0, 3.0])
    return out


@pytest.mark.parametrize("seed", range(30))
def test_spread_without_outgoing_by_service_equals_the_walk_over_every_task(seed: int) -> None:
    rng = random.Random(1000 + seed)
    for state in _random_states(seed):
        scope = full_scope(state)
        specs = {sid: s.spec for sid, s in state.services.items()}
        tasks = [t for t in state.tasks.values() if t.service_id in specs]
        # any slots (a replacement's, a new slot's, a slot with no task) and tasks being placed
        slots = {(t.service_id, t.slot) for t in tasks if rng.random() < 0.5}
        slots |= {(sid, rng.randrange(0, 8)) for sid in specs if rng.random() < 0.3}
        placing = {t.task_id for t in tasks if rng.random() < 0.2}
        expected = _spread_by_walk(scope.infos, slots, placing, tasks, specs)
        tasks_of = {sid: group.values() for sid, group in scope.by_service.items()}  # the round's reading
        indexed = spread_without_outgoing(scope.infos, slots, placing, tasks_of, specs)
        assert indexed == expected
        # a node it did not change is the caller's own object (copied only when changed)
        unchanged = [i for i, n in enumerate(expected) if n is scope.infos[i]]
        assert all(indexed[i] is scope.infos[i] for i in unchanged)


def _grouped_by_walk(tasks: list[Task]) -> dict[str, dict[str, Task]]:
    """The reference grouping: only ``tasks`` (a round's own), service id -> task id -> task."""
    out: dict[str, dict[str, Task]] = {}
    for t in tasks:
        out.setdefault(t.service_id, {})[t.task_id] = t
    return out


@pytest.mark.parametrize("seed", range(20))
def test_a_round_reads_only_its_own_services_of_the_grouping(seed: int) -> None:
    """A full round's grouping (``group_tasks``) and an incremental round's (every service's, kept) hold
    more than the round plans: the round reads only its own services' tasks of it."""
    rng = random.Random(seed)
    for state in _random_states(seed, steps=15):
        now = 50.0
        whole = full_scope(state)
        own = replace(whole, by_service=_grouped_by_walk(whole.tasks))
        full = plan_scope(state, now, Orchestrator(random.Random(seed)), whole)
        assert decisions(full) == decisions(plan_scope(state, now, Orchestrator(random.Random(seed)), own))
        # some services, as an incremental round plans them, given every service's grouping
        part_ids = {sid for sid in state.services if rng.random() < 0.5}
        part = replace(
            whole,
            services=[s for s in whole.services if s.service_id in part_ids],
            tasks=[t for t in whole.tasks if t.service_id in part_ids],
            placed=None,
        )
        part_own = replace(part, by_service=_grouped_by_walk(part.tasks))
        given_all = plan_scope(state, now, Orchestrator(random.Random(seed)), part)
        given_own = plan_scope(state, now, Orchestrator(random.Random(seed)), part_own)
        assert decisions(given_all) == decisions(given_own)


@pytest.mark.parametrize("seed", range(20))
def test_the_kept_usage_equals_every_placed_task_after_each_incremental_round(seed: int) -> None:
    """A changed service's placed tasks are summed again only when one of its tasks came, went or
    holds another node (or its record changed): what the planner keeps must still equal a fresh sum."""
    rng = random.Random(seed)
    state, now = new_cluster(rng), 10.0
    planner = IncrementalPlanner(Orchestrator(random.Random(seed)), full_every_s=1e9)
    for _ in range(40):
        plan = planner.plan(state, now)
        kept = planner._last
        assert kept is not None
        assert kept.usage.infos(state.nodes.values()) == full_scope(state).infos
        state = commit(rng, state, plan, now)
        for _ in range(rng.randrange(0, 4)):
            state = random_change(rng, state, now)
        now += rng.choice([0.5, 1.0, 3.0])


def test_a_report_of_a_task_starting_or_running_does_not_sum_its_service_again() -> None:
    state = run(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c"))
    state = run(state, C.AddNode(at=1.0, node=Node("id0", "n0", "10.0.0.1", 7947, 7946)))
    spec = ServiceSpec(name="a", image="x", replicas=3, restart=RestartPolicy(delay_s=0.0))
    state = run(state, C.CreateService(at=1.5, service_id="s0", spec=spec))
    planner = IncrementalPlanner(Orchestrator(random.Random(1)), full_every_s=1e9)
    plan = planner.plan(state, 2.0)
    state = run(state, C.PutTasks(at=2.0, items=tuple(plan.items)))
    planner.plan(state, 2.1)  # the placements: the service holds 3 tasks on id0
    kept = planner._last
    assert kept is not None
    held = kept.held["s0"]
    first, second, third = sorted(state.tasks)
    state = report(state, 2.2, first, state="starting")
    state = report(state, 2.2, second, state="running")
    planner.plan(state, 2.3)
    assert kept.held["s0"] is held  # the same placed tasks: not summed again
    state = report(state, 2.4, third, state="failed", error="exit 1")
    plan = planner.plan(state, 2.5)  # ended, still desired running: it holds its node until shut down
    assert kept.held["s0"] is held and len(plan.items) == 2  # shut down, and a replacement placed
    state = run(state, C.PutTasks(at=2.5, items=tuple(plan.items)))
    planner.plan(state, 2.6)
    assert kept.held["s0"] is not held and len(kept.held["s0"]) == 3  # the replacement, not the ended
    held = kept.held["s0"]
    gone = state.tasks[second]  # a running task's record removed (no leader does, a restore may)
    state = run(state, C.PutTasks(at=2.7, items=(C.TaskRemove(second, task_version=gone.version),)))
    planner.plan(state, 2.8)
    assert kept.held["s0"] is not held and len(kept.held["s0"]) == 2
    assert kept.usage.infos(state.nodes.values()) == full_scope(state).infos
