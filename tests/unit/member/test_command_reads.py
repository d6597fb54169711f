"""Every member's command-version advertisement, from the committed nodes and this node's gossip."""

from __future__ import annotations

from typing import Any, NamedTuple

from p2porch.member.command_reads import advertisements, update_node_hold_behind
from p2porch.model import Node, NodeStatus
from p2porch.raft import command_gate
from p2porch.raft.state import EMPTY_STATE, ClusterState

NEW = command_gate.advertisement()


class Member(NamedTuple):
    state: str
    meta: dict[str, Any]


def state(*nodes: tuple[str, NodeStatus]) -> ClusterState:
    records = {nid: Node(nid, nid, "10.0.0.1", 7947, 7946, status=status) for nid, status in nodes}
    return EMPTY_STATE.evolve(nodes=records)


def test_every_recorded_node_counts_down_or_unseen_and_a_left_one_does_not() -> None:
    s = state(
        ("a", NodeStatus.READY), ("b", NodeStatus.DOWN), ("c", NodeStatus.READY), ("d", NodeStatus.LEFT)
    )
    members = {
        "a": Member("alive", {"cv": NEW}),
        "b": Member("dead", {"cv": NEW}),  # down: its last advertisement here
        "d": Member("left", {}),
        "j": Member("alive", {"cv": NEW}),  # a joiner not recorded yet
        "x": Member("dead", {}),  # neither recorded nor alive
    }
    assert advertisements(s, members) == {"a": NEW, "b": NEW, "c": None, "j": NEW}
    assert update_node_hold_behind(s, members) == ["c"]  # c: never seen here, so the baseline
    members["c"] = Member("suspect", {"cv": NEW})
    assert update_node_hold_behind(s, members) == []
    members["j"] = Member("alive", {"l": {}})  # a joiner of a release before the gate
    assert update_node_hold_behind(s, members) == ["j"]
