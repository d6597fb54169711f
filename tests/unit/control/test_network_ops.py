"""NetworkOps over the real FSM in memory: create/ls/inspect/rm, request checks, --network-add/rm merging."""

from __future__ import annotations

import pytest

from p2porch.control.network_ops import NetworkOps, network_body, network_changes
from p2porch.errors import ConfigError, ConflictError, NotFoundError
from p2porch.model import Node, ServiceSpec, Task, TaskState
from p2porch.raft import commands as C
from p2porch.testing.memstore import MemoryManager


def service(service_id: str, name: str, networks: list) -> bytes:
    spec = ServiceSpec.from_dict({"name": name, "image": "busybox", "networks": networks})
    return C.CreateService(at=0.0, service_id=service_id, spec=spec).encode()


@pytest.fixture
def manager() -> MemoryManager:
    return MemoryManager()


@pytest.fixture
def ops(manager) -> NetworkOps:
    return NetworkOps(manager)  # type: ignore[arg-type]


async def test_create_list_inspect_remove(ops, manager):
    view = await ops.create({"name": "back", "internal": True, "labels": {"a": "b"}})
    assert (view["name"], view["internal"], view["labels"], view["services"]) == (
        "back",
        True,
        {"a": "b"},
        [],
    )
    assert [v["name"] for v in ops.list_all()] == ["p2porch", "back"]
    assert ops.inspect(view["id"][:6])["name"] == "back"  # by id prefix
    manager._apply(C.AddNode(at=0.0, node=Node("n1", "node1", "10.0.0.1", 7947, 7946)).encode())
    manager._apply(service("s1", "db", ["back"]))
    task = Task("t1", "s1", 1, "n1", state=TaskState.RUNNING, address="10.240.1.2")
    manager._apply(C.PutTasks(at=0.0, items=(C.TaskPut(task, task_version=0),)).encode())
    manager._apply(C.LeaseSubnet(at=0.0, node_id="n1").encode())  # the lowest free block
    inspected = ops.inspect("back")
    assert inspected["services"] == ["db"]
    assert inspected["tasks"] == [
        {"task": "db.1", "service": "db", "node": "node1", "address": "10.240.1.2", "task_id": "t1"}
        | {"container_id": "", "node_address": "10.0.0.1"}  # Docker's .Containers and .Peers
    ]
    # Docker's .IPAM.Config: every network's addresses come from the nodes' leased blocks
    assert inspected["subnets"] == [{"node": "node1", "subnet": "10.240.0.0/24", "gateway": "10.240.0.1"}]
    with pytest.raises(ConflictError, match="db"):
        await ops.remove("back")
    manager._apply(C.RemoveService(at=0.0, service_id="s1").encode())
    assert (await ops.remove("back"))["removed"] == "back"
    with pytest.raises(NotFoundError):
        ops.inspect("back")


async def test_the_default_network_is_listed_and_cannot_be_removed(ops, manager):
    manager._apply(service("s1", "web", []))
    assert ops.inspect("p2porch")["services"] == ["web"] and ops.inspect("p2porch")["builtin"]
    with pytest.raises(ConflictError, match="cannot be removed"):
        await ops.remove("p2porch")
    with pytest.raises(ConflictError, match="already exists"):
        await ops.create({"name": "x"}) and await ops.create({"name": "x"})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "bad name"}, "name"),
        ({"name": "ingress"}, "name"),
        ({"name": "a", "driver": "bridge"}, "driver"),
        ({"name": "a", "subnet": "10.1.0.0/24"}, "subnet"),
        ({"name": "a", "internal": "yes"}, "internal"),
        ({"name": "a", "labels": {"k": 1}}, "labels"),
        ({"name": "a", "ipam": {}}, "ipam"),
    ],
)
def test_bad_requests_name_the_field(body, field):
    with pytest.raises(ConfigError) as info:
        network_body(body)
    assert info.value.field == field


def test_network_add_and_rm_merge_into_the_list():
    current = {"networks": [{"target": "a", "aliases": []}, {"target": "b", "aliases": ["x"]}]}
    out = network_changes(current, {"networks_rm": ["a"], "networks_add": ["name=b,alias=y", "c"]})
    assert out == {"networks": [{"target": "b", "aliases": ["y"]}, {"target": "c", "aliases": []}]}
    assert network_changes(current, {"replicas": 2}) == {"replicas": 2}
    with pytest.raises(ConfigError):
        network_changes(current, {"networks_add": ["bad name"]})
