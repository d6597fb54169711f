"""``node stats`` counts what the state has running on each node (control/usage_ops.py): a node's usage book
keeps a stopped or removed task's window until its next sample (up to ``autoscale.sample_s``), and the
stats went on counting it there after ``service rm``; a node removed while the nodes were asked was a
KeyError (500)."""

from __future__ import annotations

from typing import Any

from p2porch.control.usage_ops import UsageOps
from p2porch.testing.seed_state import node_id, seed_state


class Cluster:
    def __init__(self, states: list[Any]) -> None:
        self.states = states

    def snapshot(self) -> Any:
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]


def _row(task_id: str) -> dict[str, Any]:
    return {"task_id": task_id, "cpu_cores": 0.5, "memory_bytes": 1000}


async def test_only_tasks_running_there_count(monkeypatch) -> None:
    state = seed_state(2, 100, at=1.0)
    ops = UsageOps(Cluster([state]))  # type: ignore[arg-type]
    on_first = sorted(t.task_id for t in state.tasks.values() if t.node_id == node_id(0))

    async def reports(nodes: Any) -> dict[str, Any]:  # the book: a removed task's window still there
        return {n.node_id: {"tasks": [_row(on_first[0]), _row("gone-task")]} for n in nodes}

    monkeypatch.setattr(ops, "_reports", reports)
    first, second = await ops.node_stats([node_id(0), node_id(1)])
    assert (first["tasks"], first["cpu_cores"], first["memory_bytes"]) == (1, 0.5, 1000)
    assert (second["tasks"], second["cpu_cores"]) == (0, 0.0)  # on_first[0] runs on the other node


async def test_a_node_removed_meanwhile_is_left_out(monkeypatch) -> None:
    state = seed_state(2, 100, at=1.0)
    nodes = dict(state.nodes)
    del nodes[node_id(1)]
    ops = UsageOps(Cluster([state.evolve(nodes=nodes)]))  # type: ignore[arg-type]

    async def reports(nodes: Any) -> dict[str, Any]:
        return {n.node_id: {"tasks": []} for n in nodes}

    monkeypatch.setattr(ops, "_reports", reports)
    assert [row["node"] for row in await ops.node_stats([node_id(0), node_id(1)])] == [
        state.nodes[node_id(0)].name
    ]


class _Local:
    node_id = "n1-id"
    keys = object()


class _AskingCluster:
    """What ``node_report`` reads of the cluster manager: this node and the cluster's default join port."""

    local = _Local()
    join_port = 7948


async def test_a_node_behind_a_shared_nat_is_asked_at_its_own_forwarded_join_port(monkeypatch) -> None:
    """Two sites behind NAT (the h43 walk): n2 shares n1's public address and is reached at the port its
    router forwards to it (8048); asked at the cluster's default port, n1 answered for it, so n2's tasks
    showed no usage in ``service ps`` and the autoscaler held on missing data."""
    from p2porch.control import usage_ops
    from p2porch.model import Node

    asked: list[tuple[str, int]] = []
    books = {"10.98.20.1:8048": "n2-id", "10.98.20.1": "n1-id"}

    async def request_join(host, port, keys, request, **kw):
        asked.append((host, port))
        return {"node_id": books[host], "tasks": []}

    monkeypatch.setattr(usage_ops, "request_join", request_join)
    ops = UsageOps(_AskingCluster())  # type: ignore[arg-type]
    n2 = Node(node_id="n2-id", name="n2", addr="10.98.20.1", join_port=8048)
    assert await ops.node_report(n2) == {"node_id": "n2-id", "tasks": []}
    assert asked == [("10.98.20.1:8048", 7948)]
    # a node whose address another node answers at (a stale forward): its book is not n3's usage
    n3 = Node(node_id="n3-id", name="n3", addr="10.98.20.1")
    assert await ops.node_report(n3) is None
