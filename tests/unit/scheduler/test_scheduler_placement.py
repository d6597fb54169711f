"""Placement: filters, scoring, explanations, determinism; property tests against the naive oracle."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st
from scheduler_helpers import CPU, GIB, Scenario, check_result, explanation_count, scenario_st

from p2porch.model import Node, ServiceSpec, parse_affinity, parse_constraint
from p2porch.scheduler import NodeInfo, TaskRequest, build_node_infos, fullness_ppm, schedule
from p2porch.scheduler.filters import Requirements
from p2porch.scheduler.pipeline import Pipeline
from p2porch.scheduler.placement import processing_order
from p2porch.scheduler.reference import naive_schedule


def _nodes(n: int, **kw: object) -> list[NodeInfo]:
    return build_node_infos([Node(f"n{i}", f"n{i}", **kw) for i in range(n)])  # type: ignore[arg-type]


def _tasks(spec: ServiceSpec, n: int, prefix: str = "t") -> list[TaskRequest]:
    return [TaskRequest(f"{prefix}{i:03d}", spec) for i in range(n)]


def test_spread_six_replicas_on_three_nodes() -> None:
    spec = ServiceSpec(name="web", image="busybox", replicas=6)
    result = schedule(_tasks(spec, 6), _nodes(3))
    assert Counter(result.assignments.values()) == {"n0": 2, "n1": 2, "n2": 2}
    assert result.unschedulable == {}


def test_spread_prefers_nodes_without_the_service_then_least_loaded() -> None:
    infos = _nodes(3)
    infos[0].add_task("web")
    infos[1].add_task("other")
    infos[1].add_task("other")
    spec = ServiceSpec(name="web", image="busybox")
    result = schedule(_tasks(spec, 2), infos)
    assert list(result.assignments.values()) == ["n2", "n1"]


def test_explanation_counts_each_filter() -> None:
    nodes = [
        Node("a", "a", labels={"ssd": "true"}, memory_bytes=256 * 1024**2),
        Node("b", "b", labels={"ssd": "true"}, memory_bytes=256 * 1024**2),
        Node("c", "c", labels={"ssd": "false"}, memory_bytes=8 * GIB),
    ]
    spec = ServiceSpec.from_dict(
        {"name": "db", "image": "pg", "constraints": ["node.labels.ssd==true"], "reserve_memory": "512M"}
    )
    result = schedule(_tasks(spec, 1), build_node_infos(nodes))
    assert result.unschedulable == {
        "t000": "3 nodes: 2 insufficient memory (need 512MiB), 1 constraint node.labels.ssd==true"
    }


def test_reserved_memory_larger_than_any_node_stays_pending_with_explanation() -> None:
    spec = ServiceSpec.from_dict({"name": "big", "image": "x", "reserve_memory": "64G"})
    result = schedule(_tasks(spec, 2), _nodes(3, memory_bytes=8 * GIB))
    assert result.assignments == {}
    assert set(result.unschedulable.values()) == {"3 nodes: 3 insufficient memory (need 64GiB)"}


def test_unavailable_nodes_are_never_chosen_and_explained() -> None:
    nodes = build_node_infos(
        [
            Node("a", availability="drain"),
            Node("b", availability="pause"),
            Node("c", status="down"),
            Node("d"),
        ]
    )
    spec = ServiceSpec(name="web", image="x", max_replicas_per_node=1)
    result = schedule(_tasks(spec, 2), nodes)
    assert result.assignments == {"t000": "d"}
    assert result.unschedulable["t001"] == (
        "4 nodes: 1 availability drain, 1 availability pause, 1 max replicas per node (1), 1 node down"
    )


def test_host_ports_and_anti_affinity() -> None:
    spec = ServiceSpec.from_dict(
        {"name": "lb", "image": "x", "publish": ["mode=host,published=80,target=8080"]}
    )
    result = schedule(_tasks(spec, 3), _nodes(2))
    assert sorted(result.assignments.values()) == ["n0", "n1"]
    assert result.unschedulable == {"t002": "2 nodes: 2 host port 80/tcp in use"}
    # The same port in ingress mode (the default) reserves no host port: 5 replicas fit on 2 nodes.
    mesh = ServiceSpec.from_dict({"name": "lb", "image": "x", "publish": ["80:8080"]})
    assert mesh.host_ports == () and [str(p) for p in mesh.ingress_ports] == ["80:8080/tcp"]
    result = schedule(_tasks(mesh, 5), _nodes(2))
    assert len(result.assignments) == 5 and not result.unschedulable
    infos = _nodes(3)
    infos[1].add_task("db")
    near = ServiceSpec(name="app", image="x", affinities=(parse_affinity("affinity=service==db"),))
    away = ServiceSpec(name="cache", image="x", affinities=(parse_affinity("anti-affinity=service==db"),))
    res = schedule(_tasks(near, 2, "near") + _tasks(away, 2, "away"), infos)
    assert res.assignments == {"near000": "n1", "near001": "n1", "away000": "n0", "away001": "n2"}


def test_pinned_tasks_only_go_to_their_node() -> None:
    infos = _nodes(2, memory_bytes=GIB)
    spec = ServiceSpec.from_dict({"name": "agent", "image": "x", "mode": "global", "reserve_memory": "768M"})
    tasks = [TaskRequest("a", spec, "n1"), TaskRequest("b", spec, "n1"), TaskRequest("c", spec, "zz")]
    result = schedule(tasks, infos)
    assert result.assignments == {"a": "n1"}
    assert result.unschedulable == {
        "b": "pinned node n1: insufficient memory (need 768MiB)",
        "c": "pinned node zz is not in the cluster",
    }


def test_no_nodes() -> None:
    result = schedule(_tasks(ServiceSpec(name="a", image="x"), 1), [])
    assert result.unschedulable == {"t000": "no nodes in the cluster"}


def test_placement_preference_spreads_over_zones_first() -> None:
    nodes = [Node(f"n{i}", labels={"zone": z}) for i, z in enumerate("aaaabc")]
    spec = ServiceSpec.from_dict({"name": "w", "image": "x", "placement_prefs": ["spread=node.labels.zone"]})
    result = schedule(_tasks(spec, 6), build_node_infos(nodes))
    zone_of = {n.node_id: n.labels["zone"] for n in nodes}
    assert Counter(zone_of[n] for n in result.assignments.values()) == {"a": 2, "b": 2, "c": 2}


def test_binpack_fills_one_node_before_the_next() -> None:
    infos = _nodes(3, cpu_nanos=4 * CPU, memory_bytes=4 * GIB)
    infos[2].add_task("other", CPU, GIB)
    spec = ServiceSpec.from_dict({"name": "w", "image": "x", "strategy": "binpack", "reserve_memory": "1G"})
    result = schedule(_tasks(spec, 5), infos)
    assert list(result.assignments.values()) == ["n2", "n2", "n2", "n0", "n0"]


def test_inputs_untouched_unless_in_place() -> None:
    infos = _nodes(2)
    spec = ServiceSpec(name="w", image="x")
    schedule(_tasks(spec, 4), infos)
    assert [n.total_tasks for n in infos] == [0, 0]
    schedule(_tasks(spec, 4), infos, in_place=True)
    assert [n.total_tasks for n in infos] == [2, 2]


def test_constraint_cache_is_per_constraint_set() -> None:
    infos = build_node_infos([Node("a", labels={"ssd": "true"}), Node("b")])
    ssd = ServiceSpec(name="s", image="x", constraints=(parse_constraint("node.labels.ssd==true"),))
    hdd = ServiceSpec(name="h", image="x", constraints=(parse_constraint("node.labels.ssd!=true"),))
    result = schedule(_tasks(ssd, 1, "s") + _tasks(hdd, 1, "h"), infos)
    assert result.assignments == {"s000": "a", "h000": "b"}


def test_pipeline_split_orders_static_first() -> None:
    spec = ServiceSpec.from_dict(
        {
            "name": "w",
            "image": "x",
            "reserve_cpu": 1,
            "constraints": ["node.id!=x"],
            "publish": ["mode=host,published=1,target=1"],
        }
    )
    static, dynamic = Pipeline().split(Requirements.from_spec(spec))
    assert [f.name for f in static] == ["ready", "engine", "availability", "constraints"]
    assert [f.name for f in dynamic] == ["resources", "host_ports"]


# ------------------------------------------------------------------------------------ properties


@settings(max_examples=150, deadline=None)
@given(scenario_st())
def test_matches_naive_oracle_and_respects_every_filter(scn: Scenario) -> None:
    result = schedule(scn.tasks, scn.nodes)
    assert result == naive_schedule(scn.tasks, scn.nodes)
    check_result(scn, result)


@settings(max_examples=100, deadline=None)
@given(scenario_st(), st.randoms(use_true_random=False))
def test_same_input_same_output_whatever_the_node_order(scn: Scenario, rnd: random.Random) -> None:
    first = schedule(scn.tasks, scn.nodes)
    shuffled = [n.copy() for n in scn.nodes]
    rnd.shuffle(shuffled)
    assert schedule(scn.tasks, shuffled) == first
    assert schedule(scn.tasks, scn.nodes) == first


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 12), st.integers(0, 60), st.lists(st.integers(0, 3), max_size=12))
def test_unconstrained_spread_differs_by_at_most_one(n_nodes: int, n_tasks: int, preload: list[int]) -> None:
    infos = _nodes(n_nodes)
    for info, k in zip(infos, preload, strict=False):
        for _ in range(k):
            info.add_task("other")
    spec = ServiceSpec(name="web", image="x")
    result = schedule(_tasks(spec, n_tasks), infos)
    assert len(result.assignments) == n_tasks
    counts = Counter(result.assignments.values())
    per_node = [counts.get(n.node_id, 0) for n in infos]
    assert max(per_node) - min(per_node) <= 1


@settings(max_examples=150, deadline=None)
@given(scenario_st())
def test_binpack_chooses_the_fullest_feasible_node(scn: Scenario) -> None:
    tasks = [t for t in scn.tasks if t.node_id is None and t.spec.strategy == "binpack"]
    tasks = [
        TaskRequest(t.task_id, ServiceSpec(**{**t.spec.__dict__, "placement_preferences": ()})) for t in tasks
    ]
    result = schedule(tasks, scn.nodes)
    pipe = Pipeline()
    infos = {n.node_id: n.copy() for n in scn.nodes}
    for task in processing_order(tasks):
        req = Requirements.from_spec(task.spec)
        feasible = [n for n in infos.values() if pipe.rejection(n, req) is None]
        if task.task_id in result.unschedulable:
            assert not feasible
            continue
        chosen = infos[result.assignments[task.task_id]]
        assert chosen in feasible
        assert fullness_ppm(chosen) == max(fullness_ppm(n) for n in feasible)
        chosen.add_task(req.service, req.cpu_nanos, req.memory_bytes, req.host_ports)


@settings(max_examples=100, deadline=None)
@given(scenario_st())
def test_every_unplaced_task_has_an_explanation_counting_all_nodes(scn: Scenario) -> None:
    result = schedule(scn.tasks, scn.nodes)
    for task in scn.tasks:
        if task.task_id in result.unschedulable and task.node_id is None:
            text = result.unschedulable[task.task_id]
            assert text
            if scn.nodes:
                assert explanation_count(text) == len(scn.nodes)


def test_constraints_match_ignoring_case_as_swarms() -> None:
    """swarmkit's ``constraint.Match`` compares with ``strings.EqualFold``: ``zone==East`` holds on a node
    labelled ``east`` (before: no node, the service never placed), ``!=`` its negation, a missing label
    never equal; the role's Swarm names in any case."""
    infos = build_node_infos(
        [Node("a", "Alpha", labels={"zone": "east"}), Node("b", "beta", labels={"zone": "WEST"}), Node("c")]
    )
    cases = {
        "node.labels.zone==East": ["a"],
        "node.labels.zone==west": ["b"],
        "node.labels.zone!=EAST": ["b", "c"],
        "node.name==ALPHA": ["a"],
        "node.role==Worker": ["a", "b", "c"],
    }
    for expr, expected in cases.items():
        spec = ServiceSpec(name="s", image="x", mode="global", constraints=(parse_constraint(expr),))
        placed = schedule([TaskRequest(f"t-{n.node_id}", spec, node_id=n.node_id) for n in infos], infos)
        assert sorted(placed.assignments.values()) == expected, expr
    assert parse_constraint("node.role==MANAGER").value == "voter"
