"""``node inspect self`` / ``node update self`` as in Docker: ``self`` is the node the CLI talks to
(it was "no node 'self' in the cluster"); a node really named ``self`` keeps its name."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from p2porch.errors import NotFoundError
from p2porch.model import Node, NodeRole
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE


def _state(*names: str):
    state, _, _ = apply(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c1").encode())
    for i, name in enumerate(names, 1):
        node = Node(f"id{i}", name, f"10.0.0.{i}", 7947, 7946, role=NodeRole.VOTER)
        state, result, _ = apply(state, C.AddNode(at=1.0, node=node).encode())
        assert result["ok"], result
    return state


def test_self_is_the_local_node(node_ops) -> None:
    ops, _ = node_ops(_state("n1", "n2"))
    with pytest.raises(NotFoundError):  # no local node known: as any unknown name
        ops.find_node("self")
    ops.cluster.local = SimpleNamespace(node_id="id2")
    assert ops.find_node("self").name == "n2"


def test_a_node_named_self_keeps_its_name(node_ops) -> None:
    ops, _ = node_ops(_state("n1", "self"))
    ops.cluster.local = SimpleNamespace(node_id="id1")
    assert ops.find_node("self").node_id == "id2"
