"""``node ls`` lists nodes in natural order: n2 before n10 (the NodeOps view over a memory store)."""

from __future__ import annotations

from p2porch.model import Node, natural_key
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE


def test_natural_key_orders_digit_runs_by_value() -> None:
    names = ["n10", "n2", "n1", "web-10-b", "web-9-b", "n", "a100", "a20b", "a20a"]
    assert sorted(names, key=natural_key) == [
        "a20a",
        "a20b",
        "a100",
        "n",
        "n1",
        "n2",
        "n10",
        "web-9-b",
        "web-10-b",
    ]


def test_node_list_is_in_natural_order(node_ops) -> None:
    state, _, _ = apply(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c1").encode())
    for i in (10, 2, 1, 11, 3):
        node = Node(f"id{i}", f"n{i}", f"10.0.0.{i}", 7947, 7946)
        state, result, _ = apply(state, C.AddNode(at=1.0, node=node).encode())
        assert result["ok"], result
    ops, _ = node_ops(state)
    names = [n["name"] for n in ops.nodes()]
    assert names == ["n1", "n2", "n3", "n10", "n11"]
