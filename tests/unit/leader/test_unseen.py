"""Ready nodes the leader's gossip never saw go down after the grace; seen, joining or self never."""

from __future__ import annotations

from p2porch.leader.unseen import UnseenNodes
from p2porch.model import Node, NodeStatus
from p2porch.raft import commands as C
from p2porch.raft import fsm
from p2porch.raft.state import EMPTY_STATE, ClusterState


def state_of(*statuses: str) -> ClusterState:
    state, _, _ = fsm.apply_command(EMPTY_STATE, C.InitCluster(at=0.0, cluster_id="c" * 16))
    for i, status in enumerate(statuses, start=1):
        node = Node(f"id{i}", f"n{i}", f"10.0.0.{i}", 7947, 7946, status=NodeStatus(status))
        state, _, _ = fsm.apply_command(state, C.AddNode(at=0.0, node=node))
    return state


ALIVE_1 = {"id1": "alive"}  # the leader's own gossip runs and knows itself


def test_a_ready_node_unknown_to_gossip_goes_down_after_the_grace_not_before() -> None:
    unseen = UnseenNodes(grace_s=30.0)
    state = state_of("ready", "ready", "joining", "ready")
    gossip = ALIVE_1 | {"id4": "alive"}  # n2 never seen; n3 joining (its mark is gossip's)
    assert unseen.downs(state, gossip, "id1", 100.0, epoch=1) == []
    assert unseen.downs(state, gossip, "id1", 129.9, epoch=1) == []
    assert unseen.downs(state, gossip, "id1", 130.0, epoch=1) == ["id2"]


def test_a_node_seen_meanwhile_starts_again_from_zero() -> None:
    unseen = UnseenNodes(grace_s=30.0)
    state = state_of("ready", "ready")
    assert unseen.downs(state, ALIVE_1, "id1", 0.0, epoch=1) == []
    assert unseen.downs(state, ALIVE_1 | {"id2": "suspect"}, "id1", 20.0, epoch=1) == []  # known: not unseen
    assert unseen.downs(state, ALIVE_1, "id1", 40.0, epoch=1) == []  # unknown again since 40
    assert unseen.downs(state, ALIVE_1, "id1", 70.0, epoch=1) == ["id2"]


def test_a_new_leader_epoch_waits_a_whole_grace_and_no_gossip_counts_nothing() -> None:
    unseen = UnseenNodes(grace_s=30.0)
    state = state_of("ready", "ready")
    assert unseen.downs(state, ALIVE_1, "id1", 0.0, epoch=1) == []
    assert unseen.downs(state, ALIVE_1, "id1", 40.0, epoch=2) == []  # what epoch 1 noted is forgotten
    assert unseen.downs(state, {}, "id1", 80.0, epoch=2) == []  # gossip not running: cannot tell
    assert unseen.downs(state, ALIVE_1, "id1", 90.0, epoch=2) == []  # and starts again from there
    assert unseen.downs(state, ALIVE_1, "id1", 120.0, epoch=2) == ["id2"]


def test_the_leader_itself_and_nodes_not_ready_are_never_named() -> None:
    unseen = UnseenNodes(grace_s=1.0)
    state = state_of("ready", "down", "joining", "left")
    assert unseen.downs(state, {"id9": "alive"}, "id1", 0.0, epoch=1) == []
    assert unseen.downs(state, {"id9": "alive"}, "id1", 5.0, epoch=1) == []
