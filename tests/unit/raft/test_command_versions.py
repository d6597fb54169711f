"""The version rule for every command (docs/raft.md, "Versions"), on ``update_node`` version 2 (the restart
hold's fields), with encoded old and new entries: an update that sets none of a later version's fields is
written at the lowest version (the bytes older nodes read), one that sets them at that version; every
version a node reads applies as it did; a version or command newer than it reads stops its FSM
(``NewerCommand``), never an error result that would leave its state behind the others'."""

from __future__ import annotations

import msgpack
import pytest

from p2porch.errors import ConfigError
from p2porch.model import Node, NodeRole, NodeStatus
from p2porch.raft import commands as C
from p2porch.raft import fsm
from p2porch.raft.state import EMPTY_STATE, ClusterState
from p2porch.wire import pack

HOLD = {"restart_until": 1700000030.0, "restart_incarnation": 4}


@pytest.fixture
def state() -> ClusterState:
    s = EMPTY_STATE
    for command in (
        C.InitCluster(at=1.0, cluster_id="c0ffee"),
        C.AddNode(at=2.0, node=Node("id1", "n1", "10.0.0.1", 7946, 7947, role=NodeRole.VOTER)),
    ):
        s, result, _ = fsm.apply(s, command.encode())
        assert result["ok"], result
    return s


def frame(command: C.Command) -> dict:
    return msgpack.unpackb(command.encode(), raw=False)


def test_an_update_without_the_hold_stays_at_version_1_and_one_with_it_is_version_2() -> None:
    plain = C.UpdateNode(at=3.0, node_id="id1", node_version=2, status=NodeStatus.DOWN)
    held = C.UpdateNode(at=3.0, node_id="id1", node_version=2, **HOLD)
    released = C.UpdateNode(at=3.0, node_id="id1", restart_until=0.0, restart_incarnation=0)
    assert frame(plain)["v"] == 1 and frame(held)["v"] == 2 and frame(released)["v"] == 2
    for command in (plain, held, released):
        assert C.decode_command(command.encode()) == command


def test_a_version_1_entry_with_the_hold_applies_as_version_2(state: ClusterState) -> None:
    """The code between the fields and this rule wrote them at version 1: journals hold such entries."""
    held = C.UpdateNode(at=3.0, node_id="id1", node_version=2, **HOLD)
    as_v1 = pack({**frame(held), "v": 1})  # the bytes main wrote before the bump
    new_v1, r1, _ = fsm.apply(state, as_v1)
    new_v2, r2, _ = fsm.apply(state, held.encode())
    assert r1 == r2 and r1["ok"] and new_v1 == new_v2
    assert new_v2.nodes["id1"].restart_until == HOLD["restart_until"]


def test_a_node_that_reads_version_1_stops_at_version_2(
    state: ClusterState, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = C.UpdateNode(at=3.0, node_id="id1", **HOLD).encode()
    plain = C.UpdateNode(at=3.0, node_id="id1", status=NodeStatus.DOWN).encode()
    monkeypatch.setattr(C.UpdateNode, "VERSION", 1)  # what an older node reads
    with pytest.raises(C.NewerCommand, match="update_node version 2"):
        fsm.apply(state, held)
    with pytest.raises(C.NewerCommand):  # inside a batch: the whole entry waits, nothing of it applies
        fsm.apply_batch(state, fsm.encode_batch([plain, held]))
    assert fsm.apply(state, plain)[1]["ok"]  # the lowest version: read and applied as before


def test_a_command_of_a_later_release_stops_the_fsm_and_a_malformed_one_is_a_result(
    state: ClusterState,
) -> None:
    with pytest.raises(C.NewerCommand, match="'elect_pope'"):
        fsm.apply(state, pack({"t": "elect_pope", "v": 1, "b": {"at": 1.0}}))
    with pytest.raises(C.NewerCommand, match="noop version 9"):
        fsm.apply(state, pack({"t": "noop", "v": 9, "b": {"at": 1.0, "tag": "x"}}))
    for malformed in ({"t": "noop", "v": 0, "b": {"at": 1.0}}, {"t": "noop", "v": True, "b": {}}):
        assert fsm.apply(state, pack(malformed))[1]["error"] == "WireError"
    _, result, _ = fsm.apply(state, pack({"op": "nope", "at": 1.0}))  # an op map: as it always was
    assert isinstance(C.error_of(result), ConfigError)
