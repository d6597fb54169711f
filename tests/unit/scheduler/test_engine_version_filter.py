"""A volume ``subpath`` needs Docker 26.0 (Engine API 1.45): placement avoids nodes whose gossiped engine
version is older and says why; a node whose version is not known passes (its agent still refuses the task
at start); the leader's round reads the versions from gossip (pure)."""

from __future__ import annotations

import random

from p2porch.leader.engine_view import EngineVersions
from p2porch.model import Mount, Node, Service, ServiceSpec
from p2porch.model.group import GroupContainer
from p2porch.raft.state import ClusterState
from p2porch.scheduler import Orchestrator, TaskRequest, build_node_infos, schedule
from p2porch.scheduler.filters import EngineVersionFilter, Requirements, engine_release

SUBPATH = Mount(type="volume", target="/data", source="data", subpath="tenants/a")
SPEC = ServiceSpec(name="web", image="x", mounts=(SUBPATH,))


def test_engine_release_reads_docker_release_numbers_and_nothing_else() -> None:
    assert engine_release("26.1.4") == (26, 1)
    assert engine_release("20.10.24") == (20, 10)
    assert engine_release("28.0.0-rc.1") == (28, 0)
    assert engine_release("27.3") == (27, 3)
    for unknown in ("", "dev", "master-dockerproject-2026-01-01", "27"):
        assert engine_release(unknown) is None


def test_the_filter_rejects_an_older_engine_only_for_a_task_that_mounts_a_subpath() -> None:
    old, new, unknown = build_node_infos(
        [Node("a", engine_version="20.10.24"), Node("b", engine_version="26.0.0"), Node("c")]
    )
    req = Requirements.from_spec(SPEC)
    check = EngineVersionFilter()
    assert check.applies(req)
    assert check.reject(old, req) == (
        "engine 20.10.24 older than 26.0 (volume subpath needs Docker 26.0, API 1.45)"
    )
    assert check.reject(new, req) is None
    assert check.reject(unknown, req) is None
    assert not check.applies(Requirements.from_spec(ServiceSpec(name="web", image="x")))


def test_a_sidecars_own_subpath_mount_counts() -> None:
    member = GroupContainer(name="log", image="x", mounts=(SUBPATH,))
    spec = ServiceSpec(name="web", image="x", sidecars=(member,))
    assert Requirements.from_spec(spec).min_engine == (26, 0)


def test_placement_goes_to_the_new_engine_and_explains_the_old_one() -> None:
    nodes = build_node_infos(
        [
            Node("a", engine_version="20.10.24"),
            Node("b", engine_version="27.5.1"),
            Node("c", engine_version="24.0.7"),
        ]
    )
    result = schedule([TaskRequest("t0", SPEC), TaskRequest("t1", SPEC)], nodes)
    assert result.assignments == {"t0": "b", "t1": "b"}
    one = ServiceSpec(name="web", image="x", mounts=(SUBPATH,), max_replicas_per_node=1)
    result = schedule(
        [TaskRequest("t0", one), TaskRequest("t1", one)],
        build_node_infos([Node("a", engine_version="20.10.24"), Node("b", engine_version="27.5.1")]),
    )
    assert result.unschedulable["t1"] == (
        "2 nodes: 1 engine 20.10.24 older than 26.0 (volume subpath needs Docker 26.0, API 1.45), "
        "1 max replicas per node (1)"
    )


def test_a_global_service_gets_no_task_on_an_older_engine() -> None:
    spec = ServiceSpec(name="agent", image="x", mode="global", mounts=(SUBPATH,))
    nodes = [Node("a", engine_version="20.10.24"), Node("b", engine_version="26.1.0"), Node("c")]
    created = Orchestrator(random.Random(1)).reconcile([Service("s1", spec)], [], nodes, now=1.0).creates
    assert [c.node_id for c in created] == ["b", "c"]
    plain = ServiceSpec(name="agent", image="x", mode="global")
    created = Orchestrator(random.Random(1)).reconcile([Service("s1", plain)], [], nodes, now=1.0).creates
    assert [c.node_id for c in created] == ["a", "b", "c"]


def test_the_leaders_view_carries_gossiped_versions_and_keeps_its_copies() -> None:
    state = ClusterState(nodes={"a": Node("a"), "b": Node("b")})
    engines = EngineVersions()
    assert engines.view(state, {"a": "", "zz": "26.0.0"}) is state  # none known (or not a node)
    first = engines.view(state, {"a": "20.10.24"})
    assert first.nodes["a"].engine_version == "20.10.24" and first.nodes["b"] is state.nodes["b"]
    again = engines.view(state, {"a": "20.10.24", "b": ""})
    assert again.nodes is first.nodes  # unchanged: no full round for the incremental planner
    upgraded = engines.view(state, {"a": "26.0.0"})
    assert upgraded.nodes["a"].engine_version == "26.0.0" and upgraded.nodes["a"] is not first.nodes["a"]
    assert "engine_version" not in first.nodes["b"].to_dict()
    assert state.nodes["a"].to_dict() == Node("a").to_dict()  # the committed records are untouched
