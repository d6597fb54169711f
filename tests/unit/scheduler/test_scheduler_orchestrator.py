"""Orchestrator: slots, scaling, global mode, lost and drained nodes, restarts, rolling updates."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2porch.model import (
    TERMINAL_STATES,
    Node,
    RestartPolicy,
    Service,
    ServiceSpec,
    Task,
    TaskState,
    UpdateConfig,
    parse_constraint,
    parse_port,
)
from p2porch.scheduler import CreateTask, Orchestrator, Reconciliation, ShutdownTask, UpdateFailed

SPEC = ServiceSpec(name="web", image="busybox:1", replicas=3)
NODES = [Node("n1", "n1"), Node("n2", "n2"), Node("n3", "n3")]


def orch(seed: int = 1, grace: float = 0.0) -> Orchestrator:
    return Orchestrator(random.Random(seed), down_grace_s=grace)


def running(
    slot: int, node: str = "n1", spec: ServiceSpec = SPEC, tid: str | None = None, **kw: object
) -> Task:
    fields: dict[str, object] = {
        "task_id": tid or f"t{slot}-{node}",
        "service_id": "s1",
        "slot": slot,
        "node_id": node,
        "state": "running",
        "state_at": 0.0,
        "started_at": 0.0,
        "template_hash": spec.template_hash(),
        **kw,
    }
    return Task(**fields)  # type: ignore[arg-type]


def shut_ids(r: Reconciliation) -> list[str]:
    return [a.task_id for a in r.shutdowns]


def test_creates_missing_slots_with_template_and_version() -> None:
    r = orch().reconcile([Service("s1", SPEC, version=7)], [], NODES, now=10.0)
    assert [(c.slot, c.node_id, c.spec_version) for c in r.creates] == [(s, None, 7) for s in (1, 2, 3)]
    assert all(c.template_hash == SPEC.template_hash() and c.created_at == 10.0 for c in r.creates)
    assert len({c.task_id for c in r.creates}) == 3
    assert all(len(c.task_id) == 24 for c in r.creates)
    assert r.shutdowns == [] and r.wake_at is None


def test_same_seed_same_actions() -> None:
    a = orch(5).reconcile([Service("s1", SPEC)], [], NODES, now=0.0)
    b = orch(5).reconcile([Service("s1", SPEC)], [], NODES, now=0.0)
    assert a.actions == b.actions
    assert a.actions != orch(6).reconcile([Service("s1", SPEC)], [], NODES, now=0.0).actions


def test_steady_state_is_a_no_op() -> None:
    tasks = [running(1, "n1"), running(2, "n2"), running(3, "n3")]
    r = orch().reconcile([Service("s1", SPEC)], tasks, NODES, now=100.0)
    assert r.actions == [] and r.events == []


def test_scale_up_keeps_slots_and_fills_gaps() -> None:
    tasks = [running(1), running(3)]
    spec = dataclasses.replace(SPEC, replicas=5)
    r = orch().reconcile([Service("s1", spec)], tasks, NODES, now=1.0)
    assert sorted(c.slot for c in r.creates) == [2, 4, 5]
    assert r.shutdowns == []


def test_scale_down_removes_highest_slots() -> None:
    tasks = [running(s, f"n{1 + s % 3}") for s in range(1, 6)]
    r = orch().reconcile([Service("s1", SPEC)], tasks, NODES, now=1.0)
    assert shut_ids(r) == ["t4-n2", "t5-n3"]
    assert all(a.reason == "scale down" for a in r.shutdowns)
    assert r.creates == []


def test_removed_service_tasks_are_shut_down_and_shutdown_tasks_ignored() -> None:
    tasks = [running(1), running(2, tid="gone", desired_state="shutdown")]
    r = orch().reconcile([], tasks, NODES, now=1.0)
    assert r.actions == [ShutdownTask("t1-n1", "service removed")]


def test_global_mode_one_task_per_eligible_node() -> None:
    nodes = [
        Node("a", labels={"ssd": "true"}),
        Node("b", labels={"ssd": "true"}, availability="drain"),
        Node("c", labels={"ssd": "true"}, status="down", status_at=0.0),
        Node("d", labels={"ssd": "false"}),
        Node("e", labels={"ssd": "true"}, availability="pause"),
        Node("f", labels={"ssd": "true"}),
    ]
    spec = ServiceSpec(
        name="agent", image="x", mode="global", constraints=(parse_constraint("node.labels.ssd==true"),)
    )
    existing = [
        running(1, "a", spec=spec),
        running(2, "b", spec=spec),
        running(4, "e", spec=spec),
        running(5, "d", spec=spec),
    ]
    r = orch().reconcile([Service("s1", spec)], existing, nodes, now=50.0)
    assert [(c.node_id, c.slot) for c in r.creates] == [("f", 3)]
    assert sorted(shut_ids(r)) == ["t2-b", "t5-d"]


def test_global_mode_down_node_after_grace_is_not_replaced() -> None:
    spec = ServiceSpec(name="agent", image="x", mode="global")
    nodes = [Node("a"), Node("b", status="down", status_at=10.0)]
    tasks = [running(1, "a", spec=spec), running(2, "b", spec=spec)]
    early = orch(grace=5.0).reconcile([Service("s1", spec)], tasks, nodes, now=12.0)
    assert early.actions == [] and early.wake_at == 15.0
    late = orch(grace=5.0).reconcile([Service("s1", spec)], tasks, nodes, now=15.0)
    assert late.actions == [ShutdownTask("t2-b", "node down")]  # service ps names the node (it said its id)


def test_reschedule_from_down_node_after_grace() -> None:
    nodes = [Node("n1"), Node("n2", status="down", status_at=100.0), Node("n3")]
    tasks = [running(1, "n1"), running(2, "n2"), running(3, "n3")]
    services = [Service("s1", SPEC)]
    within = orch(grace=10.0).reconcile(services, tasks, nodes, now=105.0)
    assert within.actions == [] and within.wake_at == 110.0
    after = orch(grace=10.0).reconcile(services, tasks, nodes, now=110.0)
    assert shut_ids(after) == ["t2-n2"]
    assert [(c.slot, c.node_id, c.reason) for c in after.creates] == [(2, None, "replace lost task")]


def test_task_on_unknown_node_is_lost() -> None:
    tasks = [running(1, "n1"), running(2, "ghost"), running(3, "n3")]
    r = orch().reconcile([Service("s1", SPEC)], tasks, NODES, 0)
    assert shut_ids(r) == ["t2-ghost"] and [c.slot for c in r.creates] == [2]


def test_drain_starts_replacement_before_stopping_old() -> None:
    nodes = [Node("n1"), Node("n2", availability="drain"), Node("n3")]
    tasks = [running(1, "n1"), running(2, "n2"), running(3, "n3")]
    services = [Service("s1", SPEC)]
    r1 = orch().reconcile(services, tasks, nodes, now=5.0)
    assert r1.shutdowns == []
    (new,) = r1.creates
    assert (new.slot, new.node_id, new.reason) == (2, None, "node drained")
    pending = Task(new.task_id, "s1", 2, None, state="pending", template_hash=new.template_hash)
    r2 = orch().reconcile(services, [*tasks, pending], nodes, now=6.0)
    assert r2.actions == []  # replacement not running yet: the old one keeps serving
    started = dataclasses.replace(pending, node_id="n3", state="running", state_at=7.0, started_at=7.0)
    r3 = orch().reconcile(services, [*tasks, started], nodes, now=8.0)
    assert r3.actions == [ShutdownTask("t2-n2", "node drained")]  # service ps: why it stopped


def test_changed_constraint_moves_tasks_off_nodes_that_no_longer_match_start_first() -> None:
    """With ``update.order`` start-first; stop-first (the default): tests/unit/scheduler/
    test_placement_changes.py."""
    nodes = [Node("n1", labels={"ssd": "true"}), Node("n2")]
    spec = dataclasses.replace(
        SPEC,
        replicas=1,
        constraints=(parse_constraint("node.labels.ssd==true"),),
        update=UpdateConfig(order="start-first"),
    )
    r = orch().reconcile([Service("s1", spec)], [running(1, "n2", spec=spec)], nodes, now=1.0)
    assert [c.reason for c in r.creates] == ["constraints no longer met"] and r.shutdowns == []


def test_a_lowered_max_replicas_per_node_moves_the_newest_tasks_of_a_crowded_node() -> None:
    """``--replicas-max-per-node`` lowered from 3 to 1 with three tasks on n1: the two newest there are
    moved start-first (replacements created, nothing stopped until they run), as off-constraint tasks
    are; Swarm rolls every task out on such a change, p2porch only those over the limit. Before: the
    limit held for new placements only, so n1 kept three tasks for good."""
    spec = dataclasses.replace(SPEC, replicas=3, max_replicas_per_node=1)
    tasks = [running(s, "n1", spec=spec, created_at=float(s)) for s in (1, 2, 3)]
    r = orch().reconcile([Service("s1", spec)], tasks, NODES, now=10.0)
    assert [(c.slot, c.reason) for c in r.creates] == [
        (2, "max replicas per node"),
        (3, "max replicas per node"),
    ]
    assert r.shutdowns == []
    placed = [
        running(2, "n2", spec=spec, tid="new2", created_at=10.0),
        running(3, "n3", spec=spec, tid="new3", created_at=10.0),
    ]
    done = orch().reconcile([Service("s1", spec)], tasks + placed, NODES, now=20.0)
    assert sorted(shut_ids(done)) == ["t2-n1", "t3-n1"] and done.creates == []
    within = dataclasses.replace(spec, max_replicas_per_node=3)
    assert orch().reconcile([Service("s1", within)], tasks, NODES, now=10.0).actions == []


def test_duplicate_slot_after_partition_keeps_the_older_task() -> None:
    spec = dataclasses.replace(SPEC, replicas=1)
    a = running(1, "n1", spec=spec, tid="a", created_at=5.0)
    b = running(1, "n2", spec=spec, tid="b", created_at=3.0)
    r = orch().reconcile([Service("s1", spec)], [a, b], NODES, now=10.0)
    assert r.actions == [ShutdownTask("a", "superseded")]


# ----------------------------------------------------------------------------------- restarts


def failed(state: str = "failed", at: float = 100.0, history: tuple[float, ...] = (), **kw: object) -> Task:
    spec = kw.pop("spec", SPEC)
    return running(1, "n1", spec=spec, state=state, state_at=at, restart_history=history, **kw)  # type: ignore[arg-type]


def _one(restart: RestartPolicy) -> list[Service]:
    return [Service("s1", dataclasses.replace(SPEC, replicas=1, restart=restart))]


def test_restart_waits_for_delay_then_replaces() -> None:
    services = _one(RestartPolicy(delay_s=5.0))
    spec = services[0].spec
    early = orch().reconcile(services, [failed(spec=spec)], NODES, now=102.0)
    assert early.actions == [] and early.wake_at == 105.0
    due = orch().reconcile(services, [failed(spec=spec)], NODES, now=105.0)
    assert shut_ids(due) == ["t1-n1"]
    (new,) = due.creates
    assert (new.slot, new.restart_history, new.reason) == (1, (105.0,), "restart after failed")


def test_restart_backoff_doubles_with_recent_restarts() -> None:
    services = _one(RestartPolicy(delay_s=5.0))
    task = failed(spec=services[0].spec, history=(60.0, 80.0))
    r = orch().reconcile(services, [task], NODES, now=110.0)
    assert r.actions == [] and r.wake_at == 120.0  # 5 * 2**2 after the failure at 100


def test_restart_conditions_and_max_attempts() -> None:
    on_failure = _one(RestartPolicy(condition="on-failure"))
    done = failed(state="complete", spec=on_failure[0].spec)
    ended = orch().reconcile(on_failure, [done], NODES, now=1000.0).actions
    assert ended == [ShutdownTask("t1-n1", "not restarted: completed (restart condition on-failure)")]
    crashed = failed(state="failed", spec=on_failure[0].spec)
    assert len(orch().reconcile(on_failure, [crashed], NODES, now=1000.0).creates) == 1
    never = _one(RestartPolicy(condition="none"))
    ended = orch().reconcile(never, [failed(spec=never[0].spec)], NODES, now=1000.0).actions
    assert ended == [ShutdownTask("t1-n1", "not restarted: restart condition none")]
    limited = _one(RestartPolicy(max_attempts=2, window_s=60.0, delay_s=0.0))
    spec = limited[0].spec
    gave_up = failed(spec=spec, history=(950.0, 990.0))
    assert orch().reconcile(limited, [gave_up], NODES, now=1000.0).actions == []
    window_passed = failed(spec=spec, history=(900.0, 990.0))
    assert len(orch().reconcile(limited, [window_passed], NODES, now=1000.0).creates) == 1


@pytest.mark.parametrize("mode", ["replicated", "global"])
def test_a_slot_out_of_restart_attempts_is_shut_down_and_not_created_again(mode: str) -> None:
    """The third user walk: ``--restart-condition on-failure --restart-max-attempts 2`` on a command that
    fails left ``service ps`` showing DESIRED ``running`` on the last failed task forever. As Swarm: it is
    shut down once it will not be restarted, and its slot (a global service's node) is not created again
    as a missing one; a new template (``service update``) starts it again."""
    policy = RestartPolicy(condition="on-failure", max_attempts=2, delay_s=0.0)
    spec = dataclasses.replace(SPEC, replicas=1, mode=mode, restart=policy)
    services = [Service("s1", spec)]
    nodes = NODES[:1]
    last = failed(spec=spec, history=(50.0, 90.0), created_at=90.0)
    first = orch().reconcile(services, [last], nodes, now=1000.0)
    reason = "not restarted: 2 restart attempts used (restart max attempts)"
    assert first.actions == [ShutdownTask("t1-n1", reason)]
    shut = dataclasses.replace(last, desired_state="shutdown", message=reason)
    older = failed(spec=spec, history=(50.0,), created_at=50.0, tid="t0", desired_state="shutdown")
    assert orch().reconcile(services, [older, shut], nodes, now=2000.0).actions == []
    changed = [Service("s1", dataclasses.replace(spec, image="busybox:2"), version=2)]
    (again,) = orch().reconcile(changed, [older, shut], nodes, now=2000.0).creates
    assert again.slot == 1
    stopped_by_us = dataclasses.replace(shut, state="shutdown")  # e.g. scaled down: not the policy's end
    assert len(orch().reconcile(services, [stopped_by_us], nodes, now=2000.0).creates) == 1


# ------------------------------------------------------------------------------ rolling update


def _updated(order: str = "stop-first", parallelism: int = 2, delay_s: float = 0.0) -> ServiceSpec:
    cfg = UpdateConfig(parallelism=parallelism, delay_s=delay_s, order=order, monitor_s=5.0)
    return dataclasses.replace(SPEC, replicas=4, image="busybox:2", update=cfg)


def test_stop_first_update_goes_in_batches() -> None:
    spec = _updated()
    old = [running(s, f"n{1 + s % 3}") for s in range(1, 5)]
    services = [Service("s1", spec, version=2)]
    r1 = orch().reconcile(services, old, NODES, now=100.0)
    assert shut_ids(r1) == ["t1-n2", "t2-n3"] and r1.creates == []  # created once they stopped
    stopping = [
        dataclasses.replace(t, desired_state="shutdown", state_at=100.0) for t in old[:2]
    ]  # the write
    assert orch().reconcile(services, stopping + old[2:], NODES, now=101.0).actions == []
    stopped = [dataclasses.replace(t, state="shutdown", state_at=102.0) for t in stopping]
    r2 = orch().reconcile(services, stopped + old[2:], NODES, now=102.0)
    assert r2.shutdowns == []
    assert [(c.slot, c.template_hash, c.reason) for c in r2.creates] == [
        (s, spec.template_hash(), "rolling update") for s in (1, 2)
    ]
    new = [
        Task(c.task_id, "s1", c.slot, "n1", state="starting", template_hash=c.template_hash, created_at=102.0)
        for c in r2.creates
    ]
    state = stopped + old[2:] + new
    assert orch().reconcile(services, state, NODES, now=103.0).actions == []  # batch in flight
    monitoring = [dataclasses.replace(t, state="running", state_at=104.0, started_at=104.0) for t in new]
    r3 = orch().reconcile(services, stopped + old[2:] + monitoring, NODES, now=106.0)
    assert r3.actions == [] and r3.wake_at == 109.0
    r4 = orch().reconcile(services, stopped + old[2:] + monitoring, NODES, now=109.0)
    assert shut_ids(r4) == ["t3-n1", "t4-n2"] and r4.creates == []


def test_update_delay_between_batches() -> None:
    spec = _updated(delay_s=30.0, parallelism=1)
    services = [Service("s1", spec)]
    tasks = [running(s, "n1") for s in range(2, 5)]
    tasks.append(running(1, "n2", spec=spec, tid="new1", started_at=100.0, state_at=100.0))
    gated = orch().reconcile(services, tasks, NODES, now=110.0)
    assert gated.actions == [] and gated.wake_at == 135.0
    assert len(orch().reconcile(services, tasks, NODES, now=135.0).shutdowns) == 1  # stop-first


def test_start_first_update_keeps_old_until_new_runs() -> None:
    spec = _updated(order="start-first", parallelism=1)
    services = [Service("s1", spec)]
    old = [running(s, "n1") for s in range(1, 5)]
    r1 = orch().reconcile(services, old, NODES, now=100.0)
    assert r1.shutdowns == [] and [c.slot for c in r1.creates] == [1]
    c = r1.creates[0]
    new = Task(c.task_id, "s1", 1, "n2", state="running", state_at=101.0, started_at=101.0)
    new = dataclasses.replace(new, template_hash=c.template_hash)
    r2 = orch().reconcile(services, [*old, new], NODES, now=102.0)
    assert r2.actions == [
        ShutdownTask("t1-n1", "rolling update")
    ]  # as a stop-first update's (was superseded)
    unhealthy = dataclasses.replace(new, health="unhealthy")
    assert orch().reconcile(services, [*old, unhealthy], NODES, now=102.0).actions == []


def test_update_failure_pauses() -> None:
    spec = _updated(parallelism=1)
    services = [Service("s1", dataclasses.replace(spec, restart=RestartPolicy(delay_s=60.0)))]
    spec = services[0].spec
    old = [running(s, "n1") for s in range(2, 5)]
    bad = running(1, "n2", spec=spec, tid="bad", state="failed", state_at=101.0, started_at=100.5)
    r = orch().reconcile(services, [*old, bad], NODES, now=102.0)
    assert [(e.service_id, e.task_id, e.action) for e in r.events] == [("s1", "bad", "pause")]
    assert isinstance(r.events[0], UpdateFailed) and "1 of 4 tasks failed" in r.events[0].reason
    assert r.creates == []
    paused = [dataclasses.replace(services[0], update_paused=True)]
    r2 = orch().reconcile(paused, [*old, bad], NODES, now=200.0)
    assert r2.events == [] and [c.reason for c in r2.creates] == ["restart after failed"]


def test_scaling_does_not_trigger_an_update() -> None:
    tasks = [running(s, "n1") for s in range(1, 4)]
    spec = dataclasses.replace(SPEC, replicas=4, update=UpdateConfig(parallelism=9))
    r = orch().reconcile([Service("s1", spec, version=9)], tasks, NODES, now=1.0)
    assert [c.slot for c in r.creates] == [4] and r.shutdowns == []


# ------------------------------------------------------------------------------ convergence


def _simulate(
    services: list[Service], tasks: list[Task], nodes: list[Node], seed: int, rounds: int = 20
) -> tuple[list[Task], list[Reconciliation]]:
    """Apply actions as if every created task starts at once on the least loaded schedulable node and
    every task told to stop stops at once."""
    o = orch(seed)
    history = []
    now = 1000.0
    for _ in range(rounds):
        r = o.reconcile(services, tasks, nodes, now)
        history.append(r)
        by_id = {t.task_id: t for t in tasks}
        for a in r.actions:
            if isinstance(a, ShutdownTask):
                t = by_id[a.task_id]
                state = t.state if t.state in TERMINAL_STATES else TaskState.SHUTDOWN
                by_id[a.task_id] = dataclasses.replace(t, desired_state="shutdown", state=state)
            else:
                assert isinstance(a, CreateTask)
                load = Counter(t.node_id for t in by_id.values() if t.desired_state == "running")
                ok = [n.node_id for n in nodes if n.schedulable]
                node = a.node_id or min(ok, key=lambda n: (load[n], n))
                by_id[a.task_id] = Task(
                    a.task_id, a.service_id, a.slot, node, state="running", state_at=now, started_at=now,
                    template_hash=a.template_hash, created_at=now,
                )  # fmt: skip
        tasks = list(by_id.values())
        now += 100.0
    return tasks, history


@settings(max_examples=80, deadline=None)
@given(
    replicas=st.integers(0, 8),
    existing_slots=st.lists(st.integers(1, 12), max_size=12),
    down=st.sets(st.sampled_from(["n1", "n2", "n3"]), max_size=2),
    drain=st.sets(st.sampled_from(["n1", "n2", "n3"]), max_size=1),
    new_image=st.booleans(),
    seed=st.integers(0, 3),
)
def test_converges_to_exactly_the_desired_slots(
    replicas: int, existing_slots: list[int], down: set[str], drain: set[str], new_image: bool, seed: int
) -> None:
    nodes = [
        Node(
            n,
            status="down" if n in down else "ready",
            status_at=0.0,
            availability="drain" if n in drain else "active",
        )
        for n in ("n1", "n2", "n3", "n4")
    ]
    tasks = [running(s, ("n1", "n2", "n3", "n4")[i % 4], tid=f"old{i}") for i, s in enumerate(existing_slots)]
    spec = dataclasses.replace(SPEC, replicas=replicas, image="busybox:2" if new_image else SPEC.image)
    final, history = _simulate([Service("s1", spec)], tasks, nodes, seed)
    assert history[-1].actions == []
    live = [t for t in final if t.desired_state == "running"]
    assert sorted(t.slot for t in live) == list(range(1, replicas + 1))
    assert all(t.template_hash == spec.template_hash() for t in live)
    ready = {n.node_id for n in nodes if n.schedulable}
    assert all(t.node_id in ready for t in live)


def test_global_update_and_restart_stay_on_their_node() -> None:
    spec = ServiceSpec(
        name="agent", image="x:1", mode="global", publish=(parse_port("mode=host,published=80,target=80"),)
    )
    nodes = [Node("a"), Node("b")]
    old = [running(1, "a", spec=spec), running(2, "b", spec=spec, state="failed", state_at=0.0)]
    new_spec = dataclasses.replace(spec, image="x:2", update=UpdateConfig(order="start-first", parallelism=0))
    r = orch().reconcile([Service("s1", new_spec)], old, nodes, now=100.0)
    # b's failed task is restarted (on b); a is updated stop-first because it publishes a host port:
    # its replacement is created once it stopped
    assert sorted(shut_ids(r)) == ["t1-a", "t2-b"]
    assert [(c.node_id, c.slot) for c in r.creates] == [("b", 2)]
    stopping = dataclasses.replace(old[0], desired_state="shutdown", state_at=100.0)
    assert orch().reconcile([Service("s1", new_spec)], [stopping], nodes[:1], now=101.0).actions == []
    stopped = dataclasses.replace(stopping, state="shutdown", state_at=102.0)
    (again,) = orch().reconcile([Service("s1", new_spec)], [stopped], nodes[:1], now=102.0).creates
    assert (again.node_id, again.slot, again.reason) == ("a", 1, "rolling update")


@pytest.mark.parametrize("mode", ["replicated", "global"])
def test_an_unhealthy_task_under_restart_condition_none_is_shut_down_and_not_created_again(mode: str) -> None:
    """The third user walk: a task failing its health check under ``--restart-condition none`` was stopped,
    and its slot created again in the next round as a missing one (the stopped task's state is
    ``shutdown``, which the policy did not count as the task's own end). As a failed task: shut down
    with the policy's reason, the slot kept, until the template changes."""
    spec = dataclasses.replace(SPEC, replicas=1, mode=mode, restart=RestartPolicy(condition="none"))
    services = [Service("s1", spec)]
    nodes = NODES[:1]
    sick = running(1, "n1", spec=spec, health="unhealthy", created_at=10.0)
    first = orch().reconcile(services, [sick], nodes, now=100.0)
    reason = "not restarted: unhealthy; restart condition none"
    assert first.actions == [ShutdownTask("t1-n1", reason)]
    stopping = dataclasses.replace(sick, desired_state="shutdown", message=reason)
    assert orch().reconcile(services, [stopping], nodes, now=101.0).actions == []
    stopped = dataclasses.replace(stopping, state="shutdown", state_at=102.0, health="")
    assert orch().reconcile(services, [stopped], nodes, now=200.0).actions == []
    changed = [Service("s1", dataclasses.replace(spec, image="busybox:2"), version=2)]
    (again,) = orch().reconcile(changed, [stopped], nodes, now=300.0).creates
    assert again.slot == 1


def test_unhealthy_tasks_use_up_restart_attempts_as_failed_ones_do() -> None:
    """``--restart-max-attempts 2``: an unhealthy task is replaced while attempts remain (its history
    carried), then shut down with the policy's reason and not replaced (it was replaced forever)."""
    policy = RestartPolicy(condition="on-failure", max_attempts=2, delay_s=0.0)
    spec = dataclasses.replace(SPEC, replicas=1, restart=policy)
    services = [Service("s1", spec)]
    retried = orch().reconcile(services, [running(1, spec=spec, health="unhealthy", restart_history=(50.0,))],
                               NODES, now=100.0)  # fmt: skip
    assert retried.actions == [ShutdownTask("t1-n1", "unhealthy")]  # replaced once it stopped:
    first = running(
        1, spec=spec, restart_history=(50.0,), desired_state="shutdown", state="shutdown", message="unhealthy"
    )
    (again,) = orch().reconcile(services, [first], NODES, now=101.0).creates
    assert again.restart_history == (50.0, 101.0)
    sick = running(1, spec=spec, health="unhealthy", restart_history=(50.0, 90.0))
    reason = "not restarted: unhealthy; 2 restart attempts used (restart max attempts)"
    assert orch().reconcile(services, [sick], NODES, now=100.0).actions == [ShutdownTask("t1-n1", reason)]
    stopped = dataclasses.replace(sick, desired_state="shutdown", message=reason, state="shutdown")
    assert orch().reconcile(services, [stopped], NODES, now=200.0).actions == []
