"""``node ls --format '{{.TLSStatus}}'`` (Docker's field, refused until the fourth walk): ``Ready`` when the
node runs in the cluster's current key epoch (its API certificate, Raft and gossip keys come from that
epoch's cluster CA and key), ``Needs Rotation`` in an older one, empty when unknown. Each node publishes
its epoch in its gossip metadata (``"k"``); this node's is its own."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

import pytest

from p2porch.cli import node as cli_node
from p2porch.cli.main import main
from p2porch.context import LocalBoard
from p2porch.control.node_ops import NodeOps, tls_status
from p2porch.gossip.messages import NodeMeta
from p2porch.gossip.swim_output import MemberView
from p2porch.model import Node, NodeRole, NodeStatus
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE
from p2porch.testing.memstore import MemoryRaft


def test_tls_status_from_the_key_epoch() -> None:
    assert tls_status(2, 2) == "Ready"
    assert tls_status(3, 2) == "Ready"  # switched before this node applied the rotation
    assert tls_status(1, 2) == "Needs Rotation"
    assert tls_status(None, 2) == ""


def test_the_key_epoch_travels_in_gossip_metadata() -> None:
    meta = NodeMeta("10.0.0.1", "10.0.0.1", key_epoch=3)
    assert meta.to_wire()["k"] == 3 and NodeMeta.from_wire(meta.to_wire()) == meta
    assert NodeMeta.from_wire({"k": "3"}).key_epoch == 0
    board = LocalBoard()
    assert board.key_epochs() == {}
    metas = {"n1": {"k": 2}, "n2": {"k": 1}, "n3": {"e": "27.5.1"}, "n4": {"k": "x"}, "n5": {"k": True}}
    board.gossip = SimpleNamespace(  # type: ignore[assignment]
        members=lambda: {name: MemberView(name, "", "alive", 1, meta) for name, meta in metas.items()}
    )
    assert board.key_epochs() == {"n1": 2, "n2": 1}  # none or ill-typed: unknown


def _ops(epochs: dict[str, int]) -> NodeOps:
    state, _, _ = apply(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c1").encode())
    for i in range(1, 5):
        node = Node(f"id{i}", f"n{i}", f"10.0.0.{i}", 7947, 7946, role=NodeRole.VOTER)
        state, result, _ = apply(state, C.AddNode(at=1.0, node=node).encode())
        assert result["ok"], result
    left = dataclasses.replace(state.nodes["id4"], status=NodeStatus.LEFT)
    state = dataclasses.replace(state, key_epoch=2, nodes={**state.nodes, "id4": left})
    raft = MemoryRaft(["10.0.0.1:7947"], leader="10.0.0.1:7947")
    raft.state = state
    store = raft.store("10.0.0.1:7947")
    board = SimpleNamespace(
        gossip_states=dict,
        engine_versions=dict,
        engine_version="",
        key_epochs=lambda: dict(epochs),
        architectures=dict,
        architecture="",
    )
    cluster = SimpleNamespace(
        require_store=lambda: store,
        store=store,
        local=SimpleNamespace(node_id="id1", key_epoch=2),
        board=board,
        join_port=7948,
        config=SimpleNamespace(overlay=SimpleNamespace(vxlan_port=4789)),
        snapshot=lambda: raft.state,
        clock=SimpleNamespace(now=lambda: 2.0),  # a hold is read against it (node_ops.restart_view)
    )
    return NodeOps(cluster)  # type: ignore[arg-type]


def test_each_node_is_ready_in_the_current_epoch_only() -> None:
    # n1: this node, epoch 2; n2: gossip says 1; n3: gossip says nothing; n4 left (its stale 2 ignored)
    ops = _ops({"id2": 1, "id4": 2})
    assert {n["name"]: n["tls_status"] for n in ops.nodes()} == {
        "n1": "Ready",
        "n2": "Needs Rotation",
        "n3": "",
        "n4": "",
    }
    assert ops.node_view(ops.find_node("n2"), ops.cluster.snapshot(), None)["tls_status"] == "Needs Rotation"


class Api:
    def get(self, path: str, **_: Any) -> Any:
        row = {"address": "10.0.0.1", "raft_role": "voter", "availability": "active", "status": "ready"}
        return [
            {**row, "id": "id1", "name": "n1", "labels": {}, "tls_status": "Ready"},
            {**row, "id": "id2", "name": "n2", "labels": {}, "tls_status": "Needs Rotation"},
        ]


@pytest.mark.parametrize("template", ["{{.Hostname}} {{.TLSStatus}}", "{{.Hostname}} {{.TlsStatus}}"])
def test_node_ls_prints_tls_status(template, monkeypatch, capsys) -> None:
    monkeypatch.setattr(cli_node, "client_for", lambda args: Api())
    assert main(["node", "ls", "--format", template]) == 0
    assert capsys.readouterr().out.splitlines() == ["n1 Ready", "n2 Needs Rotation"]


def test_node_ls_reads_each_gossip_map_once_per_list() -> None:
    """Before: the architectures map (a walk over every gossip member) was rebuilt once per node listed."""
    ops = _ops({})
    calls: list[str] = []
    board = ops.cluster.board
    maps: dict[str, dict[str, Any]] = {
        "engine_versions": {},
        "key_epochs": {},
        "architectures": {"id2": "aarch64"},
    }
    for name, value in maps.items():
        setattr(board, name, lambda name=name, value=value: calls.append(name) or value)
    views = ops.nodes()
    assert sorted(calls) == ["architectures", "engine_versions", "key_epochs"]
    assert {v["name"]: v["platform"]["architecture"] for v in views}["n2"] == "aarch64"
