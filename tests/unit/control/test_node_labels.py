"""``node update --label-add`` takes the labels a joiner's ``--label`` may have: a key with a space (which
no constraint can match) or a value that is not printable text is refused naming the flag, nothing
written. NodeOps over the real FSM in a memory store."""

from __future__ import annotations

import pytest

from p2porch.errors import ConfigError
from p2porch.model import Node
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE


def one_node_state():
    state, _, _ = apply(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c1").encode())
    state, _, _ = apply(state, C.AddNode(at=1.0, node=Node("id1", "n1", "10.0.0.1", 7947, 7946)).encode())
    return state


@pytest.mark.parametrize(
    ("labels", "fragment"),
    [
        ({"bad key": "1"}, "label key 'bad key' must be"),
        ({"-x": "1"}, "label key '-x' must be"),
        ({"disk": "ss\nd"}, "printable text"),
        ({f"k{i}": "v" for i in range(65)}, "at most 64 labels"),
    ],
)
async def test_a_label_no_joiner_could_have_is_refused_naming_the_flag(labels, fragment, node_ops):
    ops, raft = node_ops(one_node_state())
    with pytest.raises(ConfigError) as info:
        await ops.update_node("n1", {"label_add": labels})
    assert info.value.field == "--label-add" and fragment in info.value.message
    assert raft.state.nodes["id1"].labels == {}


async def test_good_labels_are_added_and_removed(node_ops):
    ops, raft = node_ops(one_node_state())
    view = await ops.update_node("n1", {"label_add": {"disk": "ssd", "topology.io/zone": "a-1"}})
    assert view["labels"] == {"disk": "ssd", "topology.io/zone": "a-1"}
    await ops.update_node("n1", {"label_rm": ["disk"]})
    assert raft.state.nodes["id1"].labels == {"topology.io/zone": "a-1"}


async def test_labels_that_would_not_fit_in_gossip_metadata_are_refused_with_the_room_left(node_ops):
    """Node labels travel in the node's 512-byte gossip metadata (gossip/messages.labels_meta_room).
    Before: 64 labels of 100 bytes were accepted, and the node's gossip could no longer start."""
    ops, raft = node_ops(one_node_state())
    await ops.update_node("n1", {"label_add": {"zone": "a"}})
    too_many = {f"rack{i}": "v" * 100 for i in range(5)}
    with pytest.raises(ConfigError) as info:
        await ops.update_node("n1", {"label_add": too_many})
    assert info.value.field == "--label-add" and "bytes left for labels" in info.value.message
    assert raft.state.nodes["id1"].labels == {"zone": "a"}  # nothing written


def test_a_joiner_or_init_with_labels_past_the_gossip_room_is_refused_naming_the_flag():
    from p2porch.membership.join_checks import check_joiner, labels_fit_gossip

    request = {
        "node_id": "a" * 16,
        "name": "n2",
        "addr": "10.0.0.2",
        "raft_port": 7947,
        "gossip_port": 7946,
        "cpu_nanos": 0,
        "memory_bytes": 0,
    }
    check_joiner({**request, "labels": {"zone": "a"}}, "10.0.0.2", [])
    with pytest.raises(ConfigError) as info:
        check_joiner({**request, "labels": {f"k{i}": "v" * 100 for i in range(5)}}, "10.0.0.2", [])
    assert info.value.field == "--label" and "gossip metadata" in info.value.message
    labels_fit_gossip({"k": "v" * 600}, before={"k": "v" * 700})  # a node already past it may shrink
