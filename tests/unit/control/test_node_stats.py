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
