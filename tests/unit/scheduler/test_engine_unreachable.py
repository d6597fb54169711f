"""A node whose Docker engine its agent cannot reach: it takes no new task (the placement filter and the
orchestrator's eligible nodes), keeps its tasks for ``engine_grace_s`` (their containers may still serve),
then loses them like a down node; back, it takes tasks again (pure)."""

from __future__ import annotations

import random
from dataclasses import replace

from p2porch.leader.first_round import SteadyCheck
from p2porch.model import Node, Service, ServiceSpec, Task
from p2porch.scheduler import Orchestrator, ShutdownTask, TaskRequest, build_node_infos, schedule

SPEC = ServiceSpec(name="web", image="busybox:1", replicas=3)


def orch(engine_grace_s: float = 10.0) -> Orchestrator:
    return Orchestrator(random.Random(1), engine_grace_s=engine_grace_s)


def running(slot: int, node: str, spec: ServiceSpec = SPEC) -> Task:
    return Task(f"t{slot}-{node}", "s1", slot, node, state="running", template_hash=spec.template_hash())


def test_a_node_without_its_engine_is_not_schedulable_and_its_record_says_so_only_then() -> None:
    node = Node("n1", "n1")
    assert node.schedulable and "engine_down_at" not in node.to_dict()
    gone = replace(node, engine_down_at=100.0, engine_error="cannot reach the Docker engine")
    assert not gone.schedulable
    assert Node.from_dict(gone.to_dict()) == gone


def test_placement_never_chooses_a_node_whose_engine_is_unreachable_and_says_why() -> None:
    nodes = build_node_infos([Node("a", "a", engine_down_at=5.0), Node("b", "b")])
    spec = ServiceSpec(name="web", image="x", max_replicas_per_node=1)
    result = schedule([TaskRequest("t0", spec), TaskRequest("t1", spec)], nodes)
    assert result.assignments == {"t0": "b"}
    assert result.unschedulable["t1"] == "2 nodes: 1 engine unreachable, 1 max replicas per node (1)"


def test_its_tasks_stay_within_the_grace_then_are_replaced() -> None:
    nodes = [Node("n1"), Node("n2", engine_down_at=100.0, engine_error="refused"), Node("n3")]
    tasks = [running(1, "n1"), running(2, "n2"), running(3, "n3")]
    services = [Service("s1", SPEC)]
    within = orch().reconcile(services, tasks, nodes, now=105.0)
    assert within.actions == [] and within.wake_at == 110.0
    after = orch().reconcile(services, tasks, nodes, now=110.0)
    assert after.shutdowns == [ShutdownTask("t2-n2", "node engine unreachable")]
    assert [(c.slot, c.reason) for c in after.creates] == [(2, "replace lost task")]
    back = [*nodes[:1], replace(nodes[1], engine_down_at=0.0, engine_error=""), nodes[2]]
    assert orch().reconcile(services, tasks, back, now=110.0).actions == []


def test_a_global_service_gets_no_task_there_and_loses_it_after_the_grace() -> None:
    spec = ServiceSpec(name="agent", image="x", mode="global")
    services = [Service("s1", spec)]
    nodes = [Node("a"), Node("b", engine_down_at=100.0)]
    created = orch().reconcile(services, [], nodes, now=101.0).creates
    assert [c.node_id for c in created] == ["a"]
    tasks = [running(1, "a", spec), running(2, "b", spec)]
    assert orch().reconcile(services, tasks, nodes, now=101.0).actions == []
    late = orch().reconcile(services, tasks, nodes, now=111.0)
    assert late.actions == [ShutdownTask("t2-b", "node engine unreachable")]


def test_a_service_with_a_task_there_is_not_steady() -> None:
    """The leader's first round and incremental rounds plan it (its grace wakes them), as a full round."""
    nodes = {"n1": Node("n1"), "n2": Node("n2")}
    tasks = [running(1, "n1", replace(SPEC, replicas=2)), running(2, "n2", replace(SPEC, replicas=2))]
    svc = Service("s1", replace(SPEC, replicas=2))
    assert SteadyCheck(nodes, 1000.0).steady(svc, tasks)[0]
    nodes["n2"] = replace(nodes["n2"], engine_down_at=999.0)
    assert not SteadyCheck(nodes, 1000.0).steady(svc, tasks)[0]
