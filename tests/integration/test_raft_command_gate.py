"""The command-version gate on real Raft processes: a node of a release before ``update_node`` version 2
(``p2porch.testing.baseline_node``: it reads version 1 without the hold and advertises nothing) never
gets an entry it refuses, and the hold is written once every node advertises the version.

3 voters as separate processes on loopback (``LocalCluster``); each new node's store is told the
members' advertisements as a daemon's gossip tells it (the ``advertisements`` control op). The writes
are the leader loop's: ``update_node`` with a status change and the hold, through each new node (the
leader, or a follower that forwards it; a leader of the old release writes no version 2 of its own).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from p2porch.model import Node, NodeStatus
from p2porch.raft import command_gate
from p2porch.raft import commands as C
from p2porch.testing.raftprocs import LocalCluster, NodeProc

pytestmark = pytest.mark.integration

NEW = command_gate.advertisement()
OLD = {"v2"}  # the nodes that run the release before the gate


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    def module(node: NodeProc) -> str:
        return "p2porch.testing.baseline_node" if node.name in OLD else "p2porch.raft.node"

    with contextlib.closing(LocalCluster(tmp_path / "p8g", voters=3, module_for=module)) as c:
        c.start_all()
        yield c


def propose(node: NodeProc, command: C.Command) -> dict[str, Any]:
    """The node's answer (a refusal before proposing is ``ok`` False with the error's name)."""
    return node.call(op="propose", cmd=command.encode().hex(), timeout_s=10.0)


def committed(node: NodeProc, command: C.Command) -> dict[str, Any]:
    answer = propose(node, command)
    assert answer["ok"] and answer["result"]["ok"], answer
    return answer["result"]  # type: ignore[no-any-return]


def advertise(cluster: LocalCluster) -> None:
    """What gossip tells every new node: the others' advertisements (the old ones advertise nothing)."""
    members = {n.name: None if n.name in OLD else NEW for n in cluster.nodes}
    for node in cluster.nodes:
        if node.name not in OLD:
            assert node.call(op="advertisements", members=members)["ok"]


def states_at(cluster: LocalCluster, version: int, timeout_s: float = 15.0) -> dict[str, Any]:
    """Every node's state (by node name) once each reached ``version``, none past it (no entry refused
    anywhere), no command undecodable anywhere."""
    deadline = time.monotonic() + timeout_s
    states: dict[str, Any] = {}
    while time.monotonic() < deadline:
        states = {n.name: n.call(op="state")["state"] for n in cluster.nodes}
        if all(s["version"] >= version for s in states.values()):
            break
        time.sleep(0.05)
    versions = {name: s["version"] for name, s in states.items()}
    assert set(versions.values()) == {version}, versions
    for node in cluster.nodes:
        assert node.call(op="raw")["raw"]["undecodable_commands"] == "0"
    return states


def same_states(cluster: LocalCluster, version: int, timeout_s: float = 15.0) -> dict[str, Any]:
    """Every node's state once each reached ``version``: the same everywhere, no entry refused; its
    node records by id."""
    states = states_at(cluster, version, timeout_s)
    first = next(iter(states.values()))
    assert all(s == first for s in states.values())
    return {node["node_id"]: node for node in first["nodes"]}


def hold_of(node: dict[str, Any]) -> tuple[float, int]:
    return node.get("restart_until", 0.0), node.get("restart_incarnation", 0)


def test_the_hold_waits_for_every_node_to_read_update_node_version_2(cluster: LocalCluster) -> None:
    leader = cluster.leader()
    first, second = (n for n in cluster.nodes if n.name not in OLD)  # the leader or a follower (forwarded)
    committed(leader, C.InitCluster(at=time.time(), cluster_id="p8g"))
    for node in cluster.nodes:
        committed(leader, C.AddNode(at=time.time(), node=Node(node.name, node.name, "127.0.0.1", 7947, 7946)))
    advertise(cluster)
    version = 4  # init and three nodes
    same_states(cluster, version)

    # v2 advertises nothing: the hold is left out of both writes, their status changes commit everywhere
    held_down = C.UpdateNode(
        at=time.time(), node_id="v0", status=NodeStatus.DOWN, restart_until=2e9, restart_incarnation=3
    )
    assert committed(first, held_down)["version"] == version + 1
    held_drained = C.UpdateNode(
        at=time.time(), node_id="v1", availability="drain", restart_until=2e9, restart_incarnation=3
    )
    assert committed(second, held_drained)["version"] == version + 2
    hold_only = C.UpdateNode(at=time.time(), node_id="v1", restart_until=2e9, restart_incarnation=4)
    for writer in (first, second):
        answer = propose(writer, hold_only)
        assert answer["error"] == "NotAllowedError" and "update_node version 2" in answer["message"]
        assert "v2" in answer["message"]
    nodes = same_states(cluster, version + 2)
    assert nodes["v0"]["status"] == "down" and nodes["v1"]["availability"] == "drain"
    assert {hold_of(n) for n in nodes.values()} == {(0.0, 0)}

    # v2 restarts as this release and advertises the version: the hold is written, read everywhere
    old = cluster.node("v2")
    cluster.kill(old)
    OLD.discard("v2")
    cluster.start(old)
    advertise(cluster)
    assert committed(cluster.leader(), hold_only)["version"] == version + 3
    assert hold_of(same_states(cluster, version + 3)["v1"]) == (2e9, 4)
