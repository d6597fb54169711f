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
