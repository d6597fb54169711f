"""``node ls`` lists nodes in natural order: n2 before n10 (the NodeOps view over a memory store)."""

from __future__ import annotations

from types import SimpleNamespace

from p2porch.control.node_ops import NodeOps
from p2porch.model import Node, natural_key
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE
from p2porch.testing.memstore import MemoryRaft


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


def test_node_list_is_in_natural_order() -> None:
    raft = MemoryRaft(["10.0.0.1:7947"], leader="10.0.0.1:7947")
    state, _, _ = apply(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c1").encode())
    for i in (10, 2, 1, 11, 3):
        node = Node(f"id{i}", f"n{i}", f"10.0.0.{i}", 7947, 7946)
        state, result, _ = apply(state, C.AddNode(at=1.0, node=node).encode())
        assert result["ok"], result
    raft.state = state
    store = raft.store("10.0.0.1:7947")
    cluster = SimpleNamespace(
        require_store=lambda: store,
        store=store,
        local=None,
        board=SimpleNamespace(gossip_states=lambda: {}),
        join_port=7948,
        config=SimpleNamespace(overlay=SimpleNamespace(vxlan_port=4789)),
    )
    names = [n["name"] for n in NodeOps(cluster).nodes()]  # type: ignore[arg-type]
    assert names == ["n1", "n2", "n3", "n10", "n11"]
