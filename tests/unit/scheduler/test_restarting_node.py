"""A node held while its daemon restarts (leader/restart_hold.py): it takes no new task, its tasks stay
running where they are and count as running, and its record says so only while held (pure)."""

from __future__ import annotations

import random
from dataclasses import replace

from p2porch.control.task_liveness import counts_as_running
from p2porch.model import Node, Service, ServiceSpec, Task
from p2porch.scheduler import Orchestrator, TaskRequest, build_node_infos, schedule

SPEC = ServiceSpec(name="web", image="busybox:1", replicas=3)


def running(slot: int, node: str, spec: ServiceSpec = SPEC) -> Task:
    return Task(f"t{slot}-{node}", "s1", slot, node, state="running", template_hash=spec.template_hash())


def test_a_held_node_is_not_schedulable_and_its_record_says_so_only_then() -> None:
    node = Node("n1", "n1")
    assert node.schedulable and "restart_until" not in node.to_dict()
    held = replace(node, restart_until=130.0, restart_incarnation=4)
    assert not held.schedulable
    assert Node.from_dict(held.to_dict()) == held


def test_placement_never_chooses_a_restarting_node_and_says_why() -> None:
    nodes = build_node_infos([Node("a", "a", restart_until=130.0), Node("b", "b")])
    spec = ServiceSpec(name="web", image="x", max_replicas_per_node=1)
    result = schedule([TaskRequest("t0", spec), TaskRequest("t1", spec)], nodes)
    assert result.assignments == {"t0": "b"}
    assert result.unschedulable["t1"] == "2 nodes: 1 max replicas per node (1), 1 node restarting"


def test_its_tasks_are_neither_replaced_nor_counted_out_and_a_global_service_gets_no_new_one() -> None:
    nodes = [Node("n1"), Node("n2", restart_until=130.0, restart_incarnation=4), Node("n3")]
    tasks = [running(1, "n1"), running(2, "n2"), running(3, "n3")]
    plan = Orchestrator(random.Random(1)).reconcile([Service("s1", SPEC)], tasks, nodes, now=120.0)
    assert plan.actions == []
    assert counts_as_running(tasks[1], nodes[1])
    spec = ServiceSpec(name="agent", image="x", mode="global")
    created = Orchestrator(random.Random(1)).reconcile([Service("s1", spec)], [], nodes, now=120.0).creates
    assert sorted(c.node_id for c in created) == ["n1", "n3"]
