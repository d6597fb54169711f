"""Placement changes roll tasks as Swarm's updater does: a task off its new constraints is replaced by
the update config (stop-first by default: stopped, then its replacement waits for a node), and a
changed placement preference is a template change (every task rolled)."""

from __future__ import annotations

import dataclasses
import random

from p2porch.model import Node, Service, ServiceSpec, Task, UpdateConfig, parse_constraint
from p2porch.model.placement import parse_placement_pref
from p2porch.scheduler import Orchestrator, Reconciliation, ShutdownTask

SSD = (parse_constraint("node.labels.ssd==true"),)
NODES = [Node("n1", "n1"), Node("n2", "n2"), Node("n3", "n3")]


def spec_of(replicas: int = 2, **kw: object) -> ServiceSpec:
    return ServiceSpec(name="web", image="busybox:1", replicas=replicas, **kw)  # type: ignore[arg-type]


def task(slot: int, node: str | None, spec: ServiceSpec, **kw: object) -> Task:
    fields: dict[str, object] = {
        "task_id": f"t{slot}-{node}",
        "service_id": "s1",
        "slot": slot,
        "node_id": node,
        "state": "running",
        "started_at": 1.0,
        "state_at": 1.0,
        "template_hash": spec.template_hash(),
        **kw,
    }
    return Task(**fields)  # type: ignore[arg-type]


def reconcile(spec: ServiceSpec, tasks: list[Task], now: float = 100.0) -> Reconciliation:
    return Orchestrator(random.Random(3)).reconcile([Service("s1", spec)], tasks, NODES, now)


def test_new_constraints_stop_first_stop_one_slot_at_a_time_then_replace_it() -> None:
    """The default update config (stop-first, parallelism 1): the first slot's task is stopped with
    the reason ``service ps`` shows, nothing is created until it stopped, the other slot waits; once
    stopped its replacement is created (the scheduler leaves it pending with its explanation)."""
    old = spec_of()
    spec = dataclasses.replace(old, constraints=SSD)
    tasks = [task(1, "n1", old), task(2, "n2", old)]
    first = reconcile(spec, tasks)
    assert first.actions == [ShutdownTask("t1-n1", "constraints no longer met")]
    stopping = dataclasses.replace(
        tasks[0], desired_state="shutdown", message="constraints no longer met", state_at=100.0
    )
    assert reconcile(spec, [stopping, tasks[1]], 101.0).actions == []  # held until it stopped
    stopped = dataclasses.replace(stopping, state="shutdown", state_at=102.0)
    after = reconcile(spec, [stopped, tasks[1]], 102.0)
    assert [(c.slot, c.node_id, c.reason) for c in after.creates] == [(1, None, "constraints no longer met")]
    assert after.shutdowns == []
    pending = task(1, None, spec, task_id="new1", state="pending", started_at=0.0)
    # the pending replacement is in flight: parallelism 1 holds slot 2 (as Swarm's updater waits)
    assert reconcile(spec, [stopped, pending, tasks[1]], 200.0).actions == []


def test_new_constraints_with_parallelism_0_stop_every_task_off_them() -> None:
    old = spec_of(replicas=3)
    spec = dataclasses.replace(old, constraints=SSD, update=UpdateConfig(parallelism=0))
    nodes_ok = [Node("n1", "n1", labels={"ssd": "true"}), *NODES[1:]]
    tasks = [task(1, "n1", old), task(2, "n2", old), task(3, "n3", old)]
    r = Orchestrator(random.Random(3)).reconcile([Service("s1", spec)], tasks, nodes_ok, 100.0)
    # the task on a node that meets the constraints stays, as Swarm's (not dirty)
    assert sorted(r.actions, key=str) == [
        ShutdownTask("t2-n2", "constraints no longer met"),
        ShutdownTask("t3-n3", "constraints no longer met"),
    ]


def test_new_constraints_start_first_keep_the_old_task_until_its_replacement_runs() -> None:
    old = spec_of(replicas=1)
    spec = dataclasses.replace(old, constraints=SSD, update=UpdateConfig(order="start-first"))
    r = reconcile(spec, [task(1, "n1", old)])
    assert [(c.slot, c.reason) for c in r.creates] == [(1, "constraints no longer met")] and r.shutdowns == []
    pending = task(1, None, spec, task_id="new1", state="pending", started_at=0.0)
    assert reconcile(spec, [task(1, "n1", old), pending], 200.0).actions == []  # never placed: old serves


def test_new_constraint_moves_wait_for_the_update_delay() -> None:
    old = spec_of()
    spec = dataclasses.replace(old, constraints=SSD, update=UpdateConfig(delay_s=30.0, monitor_s=5.0))
    moved = task(1, "n1", spec, task_id="moved", started_at=100.0, state_at=100.0)
    nodes_ok = [Node("n1", "n1", labels={"ssd": "true"}), *NODES[1:]]
    r = Orchestrator(random.Random(3)).reconcile(
        [Service("s1", spec)], [moved, task(2, "n2", old)], nodes_ok, 110
    )
    assert r.actions == [] and r.wake_at == 135.0  # started 100 + monitor 5 + delay 30


def test_a_changed_placement_preference_is_a_template_change() -> None:
    plain = spec_of()
    spread = dataclasses.replace(
        plain, placement_preferences=(parse_placement_pref("spread=node.labels.zone"),)
    )
    assert spread.template_hash() != plain.template_hash()
    # a spec without preferences keeps the hash it had before preferences counted
    assert "placement_preferences" not in plain.template_dict()
    r = reconcile(spread, [task(1, "n1", plain), task(2, "n2", plain)])
    assert r.actions == [ShutdownTask("t1-n1", "rolling update")]  # stop-first, parallelism 1
