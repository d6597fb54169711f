"""Committed state with a spec today's validator rejects still loads and applies (model/committed.py).

The spec used throughout has ``replicas`` above MAX_REPLICAS: ``ServiceSpec.from_dict`` refuses it,
as a stricter future validator would refuse a spec an older version committed."""

from __future__ import annotations

import random

from p2porch.leader.scheduling import plan_round
from p2porch.model import Node, ServiceSpec, Task, TaskState
from p2porch.model.committed import PLACEHOLDER_IMAGE, committed_spec
from p2porch.model.spec import MAX_REPLICAS
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE, ClusterState
from p2porch.scheduler import Orchestrator
from p2porch.wire import pack

REJECTED = {"name": "web", "image": "nginx", "replicas": MAX_REPLICAS + 1}


def ok(state: ClusterState, command: bytes) -> ClusterState:
    new, result, _ = apply(state, command)
    assert result["ok"], result
    return new


def cluster_with_rejected_service() -> ClusterState:
    s = ok(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c").encode())
    node = Node("id1", "n1", "10.0.0.1", 7947, 7946, role="voter", cpu_nanos=10**9, memory_bytes=2**30)  # type: ignore[arg-type]
    s = ok(s, C.AddNode(at=1.0, node=node).encode())
    body = {"at": 2.0, "service_id": "s1", "spec": REJECTED}
    s = ok(s, pack({"t": "create_service", "v": 1, "b": body}))
    task = Task("t1", "s1", 1, "id1", state=TaskState.RUNNING)
    return ok(s, C.PutTasks(at=3.0, items=(C.TaskPut(task, task_version=0),)).encode())


def test_committed_spec_keeps_the_name_and_says_which_field() -> None:
    spec, why = committed_spec(REJECTED, "s1")
    assert why.startswith("replicas:") and spec.name == "web" and spec.image == PLACEHOLDER_IMAGE
    assert spec.replicas == 0
    spec, why = committed_spec({"name": "Not A Label!", "image": 3}, "abc123")
    assert why and spec.name == "invalid-abc123"
    assert committed_spec(["not", "a", "map"], "x")[1].startswith("spec:")
    assert committed_spec({"name": "ok", "image": "busybox"}, "s") == (
        ServiceSpec(name="ok", image="busybox"),
        "",
    )


def test_a_snapshot_holding_a_rejected_spec_loads_and_keeps_it_whole() -> None:
    state = cluster_with_rejected_service()
    dumped = state.to_dict()
    assert [s["spec"] for s in dumped["services"]] == [REJECTED]  # written back as committed
    loaded = ClusterState.from_dict(dumped)  # before: ConfigError, the node could not start
    service = loaded.services["s1"]
    assert service.invalid.startswith("replicas:") and service.invalid_spec == REJECTED
    assert loaded.to_dict() == dumped and loaded.service_by_name("web") is service


def test_the_leader_leaves_an_invalid_service_and_its_tasks_alone() -> None:
    state = cluster_with_rejected_service()
    plan = plan_round(state, 10.0, Orchestrator(random.Random(1)))
    assert plan.empty and list(plan.skipped) == ["s1"] and plan.skipped["s1"].startswith("replicas:")
    # a later, valid update makes it an ordinary service again
    fixed = ServiceSpec(name="web", image="nginx", replicas=2)
    state = ok(state, C.UpdateService.of(state.services["s1"], at=11.0, spec=fixed).encode())
    assert not state.services["s1"].invalid
    assert not plan_round(state, 12.0, Orchestrator(random.Random(1))).empty
