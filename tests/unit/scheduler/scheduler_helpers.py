"""Hypothesis strategies and checks shared by the scheduler tests."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hypothesis import strategies as st

from p2porch.model import Affinity, Constraint, Node, PlacementPreference, PortPublish, ServiceSpec
from p2porch.scheduler.filters import Requirements, constraint_matches
from p2porch.scheduler.nodeinfo import NodeInfo, build_node_infos
from p2porch.scheduler.placement import ScheduleResult, TaskRequest, processing_order

GIB = 1024**3
CPU = 1_000_000_000


@dataclass
class Scenario:
    nodes: list[NodeInfo]
    tasks: list[TaskRequest]


@st.composite
def nodes_st(draw: st.DrawFn, max_nodes: int = 10, allow_unavailable: bool = True) -> list[NodeInfo]:
    n = draw(st.integers(min_value=0, max_value=max_nodes))
    nodes = []
    for i in range(n):
        labels: dict[str, str] = {}
        zone = draw(st.sampled_from(["a", "b", "c", None]))
        if zone is not None:
            labels["zone"] = zone
        if draw(st.booleans()):
            labels["ssd"] = draw(st.sampled_from(["true", "false"]))
        nodes.append(
            Node(
                node_id=f"id{draw(st.integers(0, 999)):03d}-{i}",
                name=f"n{i}",
                role=draw(st.sampled_from(["voter", "replica"])),
                availability=draw(st.sampled_from(["active"] * 4 + ["drain", "pause"]))
                if allow_unavailable
                else "active",
                status=draw(st.sampled_from(["ready"] * 5 + ["down"])) if allow_unavailable else "ready",
                engine_down_at=draw(st.sampled_from([0.0] * 5 + [1.0])) if allow_unavailable else 0.0,
                labels=labels,
                cpu_nanos=draw(st.sampled_from([0, 1, 2, 4])) * CPU,
                memory_bytes=draw(st.sampled_from([0, 1, 2, 8])) * GIB,
            )
        )
    infos = build_node_infos(nodes)
    # existing tasks that fit
    for info in infos:
        for _ in range(draw(st.integers(0, 3))):
            svc = draw(st.sampled_from(["s0", "s1", "s2", "other"]))
            cpu = draw(st.sampled_from([0, CPU // 2]))
            mem = draw(st.sampled_from([0, GIB // 2]))
            if cpu <= info.free_cpu_nanos and mem <= info.free_memory_bytes:
                info.add_task(svc, cpu, mem)
    return infos


@st.composite
def spec_st(draw: st.DrawFn, name: str, unconstrained: bool = False) -> ServiceSpec:
    if unconstrained:
        return ServiceSpec(name=name, image="img", strategy=draw(st.sampled_from(["spread", "binpack"])))
    constraints = draw(
        st.lists(
            st.sampled_from(
                [
                    Constraint("node.labels.ssd", "==", "true"),
                    Constraint("node.labels.zone", "!=", "c"),
                    Constraint("node.role", "==", "voter"),
                    Constraint("node.name", "!=", "n1"),
                ]
            ),
            max_size=2,
            unique=True,
        )
    )
    prefs = draw(
        st.lists(
            st.sampled_from(
                [PlacementPreference("node.labels.zone"), PlacementPreference("node.labels.ssd")]
            ),
            max_size=2,
            unique=True,
        )
    )
    others = [s for s in ("s0", "s1", "s2", "other") if s != name]
    affinities = draw(
        st.lists(
            st.builds(Affinity, st.sampled_from(["affinity", "anti-affinity"]), st.sampled_from(others))
            | st.just(Affinity("anti-affinity", name)),
            max_size=1,
        )
    )
    publish = draw(st.sampled_from([(), (PortPublish(80, 8080),), (PortPublish(53, 53, "udp"),)]))
    return ServiceSpec(
        name=name,
        image="img",
        constraints=tuple(constraints),
        placement_preferences=tuple(prefs),
        strategy=draw(st.sampled_from(["spread", "binpack"])),
        affinities=tuple(affinities),
        max_replicas_per_node=draw(st.sampled_from([0, 0, 1, 2])),
        reserve_cpu_nanos=draw(st.sampled_from([0, 0, CPU // 4, CPU])),
        reserve_memory_bytes=draw(st.sampled_from([0, 0, GIB // 4, GIB])),
        publish=publish,
    )


@st.composite
def scenario_st(draw: st.DrawFn, unconstrained: bool = False) -> Scenario:
    nodes = draw(nodes_st(allow_unavailable=not unconstrained))
    tasks: list[TaskRequest] = []
    specs = {n: draw(spec_st(n, unconstrained)) for n in ("s0", "s1", "s2")}
    order = draw(st.lists(st.sampled_from(["s0", "s1", "s2"]), max_size=25))
    node_ids = [n.node_id for n in nodes] + ["ghost"]
    for i, svc in enumerate(order):
        pin = None
        if not unconstrained and draw(st.integers(0, 9)) == 0:
            pin = draw(st.sampled_from(node_ids))
        tasks.append(TaskRequest(f"t{i:03d}", specs[svc], pin))
    return Scenario(nodes, tasks)


_EXPL_RE = re.compile(r"^(\d+) nodes?: (.+)$")


def explanation_count(text: str) -> int:
    """Sum of the per-reason counts of an explanation; checks its shape."""
    m = _EXPL_RE.match(text)
    assert m, text
    total = 0
    for part in m.group(2).split(", "):
        count, _, reason = part.partition(" ")
        assert reason, text
        total += int(count)
    assert total == int(m.group(1)), text
    return total


def check_result(scn: Scenario, result: ScheduleResult) -> None:
    """Every invariant a schedule must satisfy, replayed in processing order on fresh copies."""
    infos = {n.node_id: n.copy() for n in scn.nodes}
    ids = [t.task_id for t in scn.tasks]
    assert set(result.assignments) | set(result.unschedulable) == set(ids)
    assert not set(result.assignments) & set(result.unschedulable)
    for task in processing_order(scn.tasks):
        if task.task_id in result.unschedulable:
            why = result.unschedulable[task.task_id]
            assert why
            if task.node_id is None and scn.nodes:
                explanation_count(why)
            continue
        node = infos[result.assignments[task.task_id]]
        req = Requirements.from_spec(task.spec)
        if task.node_id is not None:
            assert node.node_id == task.node_id
        assert node.status == "ready" and node.availability == "active" and not node.engine_down
        for c in task.spec.constraints:
            assert constraint_matches(node, c), (c, node)
        for proto, port in req.host_ports:
            assert (proto, port) not in node.used_ports
        if req.max_per_node:
            assert node.tasks_by_service.get(req.service, 0) < req.max_per_node
        for aff in req.affinities:
            assert (node.tasks_by_service.get(aff.service, 0) > 0) == (aff.kind == "affinity")
        node.add_task(req.service, req.cpu_nanos, req.memory_bytes, req.host_ports)
        assert node.reserved_cpu_nanos <= node.cpu_nanos
        assert node.reserved_memory_bytes <= node.memory_bytes
