"""A node's engine fields: written by its agent with ``update_node``, checked by the FSM, kept in
snapshots only while set (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from p2porch.model import Node
from p2porch.model.records import MAX_ENGINE_ERROR
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE, ClusterState
from p2porch.wire import pack


def cluster() -> ClusterState:
    state, result, _ = apply(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c").encode())
    node = Node("id1", "n1", "10.0.0.1", 7947, 7946)
    state, result, _ = apply(state, C.AddNode(at=1.0, node=node).encode())
    assert result["ok"], result
    return state


def test_the_agent_records_its_engine_away_and_back() -> None:
    down = C.UpdateNode(at=5.0, node_id="id1", engine_down_at=4.5, engine_error="refused")
    before = cluster().nodes["id1"]
    state, result, _ = apply(cluster(), down.encode())
    assert result["ok"], result
    node = state.nodes["id1"]
    assert (node.engine_down_at, node.engine_error, node.schedulable) == (4.5, "refused", False)
    assert (node.status, node.status_at) == (before.status, before.status_at)  # gossip's, unchanged
    back = C.UpdateNode(at=9.0, node_id="id1", engine_down_at=0.0, engine_error="")
    state, result, _ = apply(state, back.encode())
    assert result["ok"] and state.nodes["id1"].schedulable
    assert "engine_down_at" not in state.nodes["id1"].to_dict()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"engine_down_at": -1}, "engine_down_at"),
        ({"engine_down_at": "soon"}, "engine_down_at"),
        ({"engine_down_at": float("nan")}, "engine_down_at"),
        ({"engine_error": 7}, "engine_error"),
        ({"engine_error": "x" * (MAX_ENGINE_ERROR + 1)}, "engine_error"),
    ],
)
def test_a_bad_engine_field_is_refused_naming_it(fields: dict[str, Any], field: str) -> None:
    raw = {"at": 2.0, "node_id": "id1", "fields": fields}
    state, result, _ = apply(cluster(), pack({"t": "update_node", "v": 1, "b": raw}))
    assert not result["ok"] and result["field"] == field, result
    assert state.nodes["id1"].engine_down_at == 0.0


def test_the_leader_records_a_restart_hold_and_a_bad_one_is_refused_naming_the_field() -> None:
    hold = C.UpdateNode(at=5.0, node_id="id1", restart_until=35.0, restart_incarnation=4)
    state, result, _ = apply(cluster(), hold.encode())
    assert result["ok"], result
    node = state.nodes["id1"]
    assert (node.restart_until, node.restart_incarnation, node.schedulable) == (35.0, 4, False)
    for fields, field in (
        ({"restart_until": -1}, "restart_until"),
        ({"restart_incarnation": 1.5}, "restart_incarnation"),
    ):
        raw = {"at": 2.0, "node_id": "id1", "fields": fields}
        _, refused, _ = apply(cluster(), pack({"t": "update_node", "v": 1, "b": raw}))
        assert not refused["ok"] and refused["field"] == field, refused
