"""The daemon's words for a node reference it cannot resolve, as Docker's: ``No such node: X``, and
``node X is ambiguous (N matches found)`` for an id prefix of several nodes (it said "no node 'X' in the
cluster" for both)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from p2porch.errors import NotFoundError
from p2porch.model import Node, NodeRole
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE


def _state(*ids: str):
    state, _, _ = apply(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c1").encode())
    for i, node_id in enumerate(ids, 1):
        node = Node(node_id, f"n{i}", f"10.0.0.{i}", 7947, 7946, role=NodeRole.VOTER)
        state, result, _ = apply(state, C.AddNode(at=1.0, node=node).encode())
        assert result["ok"], result
    return state


def test_the_daemon_says_no_such_node_and_an_ambiguous_prefix(node_ops) -> None:
    ops, _ = node_ops(_state("abcd1111", "abcd2222"))
    ops.cluster.local = SimpleNamespace(node_id="abcd1111")
    with pytest.raises(NotFoundError, match=r"^No such node: nosuch$") as caught:
        ops.find_node("nosuch")
    assert caught.value.field == "NODE"
    with pytest.raises(NotFoundError, match=r"^node abcd is ambiguous \(2 matches found\)$"):
        ops.find_node("abcd")
    assert ops.find_node("abcd2").name == "n2"


async def test_label_rm_of_a_key_the_node_does_not_have_is_refused(node_ops) -> None:
    """Docker: ``key nosuch doesn't exist in node's labels`` (exit 1, a missing thing, not bad usage); it
    used to succeed and change nothing."""

    ops, raft = node_ops(_state("abcd1111"))
    await ops.update_node("n1", {"label_add": {"ssd": "true"}})
    before = raft.state
    refused = r"^--label-rm: key nosuch doesn't exist in node's labels$"
    with pytest.raises(NotFoundError, match=refused) as caught:
        await ops.update_node("n1", {"label_rm": ["ssd", "nosuch"]})
    assert caught.value.field == "--label-rm" and raft.state is before  # nothing written
    assert (await ops.update_node("n1", {"label_rm": ["ssd"]}))["labels"] == {}
