"""Docker's ``node ps``: every service's tasks on one node (``GET /nodes/{node}/tasks``); the third user
walk found ``node ps`` an invalid choice."""

from __future__ import annotations

from typing import Any

from p2porch.cli import node as cli_node
from p2porch.cli.main import main
from p2porch.model import Node, NodeRole, Task
from p2porch.raft import commands as C


async def test_the_tasks_on_a_node_with_their_service_names(ops, manager) -> None:
    for i in (1, 2):
        node = Node(f"n{i}", f"n{i}", f"10.0.0.{i}", 7947, 7946, role=NodeRole.VOTER)
        await manager.write(C.AddNode(at=1.0, node=node).encode())
    web = (await ops.create({"name": "web", "image": "x"}))["id"]
    api = (await ops.create({"name": "api", "image": "x"}))["id"]
    tasks = [
        Task("w1", web, 1, "n1", "running", "running", 5.0),
        Task("w0", web, 1, "n1", "shutdown", "failed", 4.0, error="exit 1"),
        Task("w2", web, 2, "n2", "running", "running", 5.0),
        Task("a1", api, 1, "n1", "running", "running", 5.0),
    ]
    await manager.write(C.PutTasks(at=3.0, items=tuple(C.TaskPut(t, task_version=0) for t in tasks)).encode())
    assert [(t["name"], t["id"]) for t in ops.tasks_on_node("n1")] == [
        ("api.1", "a1"),
        ("web.1", "w1"),
        ("web.1", "w0"),
    ]
    assert [t["id"] for t in ops.tasks_on_node("n1", include_history=False)] == ["a1", "w1"]
    assert ops.tasks_on_node("n9") == []


async def test_each_task_carries_its_services_labels_for_node_ps_label_filter(ops, manager) -> None:
    await manager.write(C.AddNode(at=1.0, node=Node("n1", "n1", "10.0.0.1", 7947, 7946)).encode())
    redis = (await ops.create({"name": "redis", "image": "x", "service_labels": {"usage": "cache"}}))["id"]
    task = Task("r1", redis, 1, "n1", "running", "running", 5.0)
    await manager.write(C.PutTasks(at=3.0, items=(C.TaskPut(task, task_version=0),)).encode())
    assert [t["service_labels"] for t in ops.tasks_on_node("n1")] == [{"usage": "cache"}]


class Api:
    def __init__(self) -> None:
        self.asked: list[tuple[str, dict[str, Any]]] = []

    def get(self, path: str, **params: Any) -> Any:
        self.asked.append((path, params))
        node = path.split("/")[2]
        return [{"id": f"{node}-t", "name": "web.1", "node": node, "desired_state": "running",
                 "state": "running", "state_at": 0, "error": "", "message": ""}]  # fmt: skip


def test_node_ps_asks_for_each_node_given_and_this_one_by_default(monkeypatch, capsys) -> None:
    api = Api()
    monkeypatch.setattr(cli_node, "client_for", lambda args: api)
    assert main(["node", "ps", "--format", "{{.Name}} {{.Node}}"]) == 0
    assert capsys.readouterr().out.splitlines() == ["web.1 self"]
    assert main(["node", "ps", "--running", "-q", "n1", "n2"]) == 0
    assert capsys.readouterr().out.split() == ["n1-t", "n2-t"]
    assert api.asked[-2:] == [("/nodes/n1/tasks", {"all": "false"}), ("/nodes/n2/tasks", {"all": "false"})]
