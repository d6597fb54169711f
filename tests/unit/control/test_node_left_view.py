"""``node ls`` after ``p2porch leave``: the node that left shows status ``left``, Raft role ``none`` and
gossip ``left`` (it showed ``voter`` and ``alive``: the record keeps its last role, and gossip forgets it)."""

from __future__ import annotations

from p2porch.model import Node, NodeRole, NodeStatus
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE


def test_a_node_that_left_is_no_voter_and_shows_left(node_ops) -> None:
    state, _, _ = apply(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c1").encode())
    for i in (1, 2, 3):
        node = Node(f"id{i}", f"n{i}", f"10.0.0.{i}", 7947, 7946, role=NodeRole.VOTER)
        state, result, _ = apply(state, C.AddNode(at=1.0, node=node).encode())
        assert result["ok"], result
    state, result, _ = apply(state, C.UpdateNode(at=2.0, node_id="id3", status=NodeStatus.LEFT).encode())
    assert result["ok"], result
    assert state.nodes["id3"].role == NodeRole.VOTER  # what the record keeps
    ops, _ = node_ops(state)
    rows = {n["name"]: n for n in ops.nodes()}
    assert (rows["n3"]["status"], rows["n3"]["raft_role"], rows["n3"]["gossip"]) == ("left", "none", "left")
    assert (rows["n1"]["raft_role"], rows["n1"]["gossip"]) == ("leader", "unknown")
    assert rows["n2"]["raft_role"] == "voter"
