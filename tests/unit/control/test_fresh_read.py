"""A request racing the cluster's own write to the same record is redone on the newer record
(control/fresh_read.py): ``service scale`` / ``update`` / ``rm`` while the leader's round commits a change
to that service, ``node update`` while the node's agent records its engine. Main refused each with the
FSM's "service_version is 7, expected 6": an error a user typing the command got for nothing. A user's own
``--if-version`` is still refused, and a record that changes on every run is refused after five runs.

ServiceOps and NodeOps run over the real FSM in memory (no Raft); the background write is applied
between the request's read and its write, as a commit of the leader's or an agent's lands there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from p2porch.control.fresh_read import ATTEMPTS
from p2porch.control.service_ops import ServiceOps
from p2porch.errors import ConflictError
from p2porch.model import Node, NodeRole, rollback_point
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE, ClusterState
from p2porch.testing.memstore import MemoryManager

SPEC = {"name": "web", "image": "p2porch/busybox:latest", "replicas": 1}


class LeaderWritesFirst(MemoryManager):
    """Before each of the next ``races`` writes, the leader's round commits a change to the service
    ``web`` (a rebalance request cleared, as when it marks a rollout done): the request's read is stale."""

    def __init__(self, races: int) -> None:
        super().__init__()
        self.races = races

    async def write(self, command: bytes) -> object:
        service = self.state.service_by_name("web")
        if self.races and service is not None and not isinstance(C.decode_command(command), C.CreateService):
            self.races -= 1
            self._apply(C.UpdateService.of(service, at=1.0, rebalance_requested=0.0).encode())
        return await super().write(command)


async def _created(races: int) -> tuple[ServiceOps, LeaderWritesFirst]:
    manager = LeaderWritesFirst(races=0)
    ops = ServiceOps(manager, logs=None)  # type: ignore[arg-type]
    await ops.create(dict(SPEC))
    manager.races = races
    return ops, manager


async def test_scale_while_the_leader_writes_the_service_is_done() -> None:
    ops, manager = await _created(races=1)
    before = ops.find("web").version
    scaled = await ops.scale("web", 3)
    assert scaled["spec"]["replicas"] == 3
    assert ops.find("web").version > before + 1  # the leader's write, then the scale on top of it
    assert manager.commands[-2:] == ["update_service", "update_service"]  # one refused, one applied


async def test_update_and_rm_while_the_leader_writes_the_service_are_done() -> None:
    ops, manager = await _created(races=2)
    updated = await ops.update("web", {"labels": {"h": "w1"}})
    assert updated["spec"]["labels"] == {"h": "w1"}
    manager.races = 1
    assert (await ops.remove("web"))["name"] == "web"
    assert manager.state.service_by_name("web") is None


async def test_a_service_changing_on_every_run_is_refused_after_the_last() -> None:
    ops, manager = await _created(races=ATTEMPTS)
    writes = manager.writes
    with pytest.raises(ConflictError, match="service_version") as info:
        await ops.scale("web", 3)
    assert info.value.field == "service_version"
    assert manager.writes - writes == ATTEMPTS  # each run refused, none applied
    assert ops.find("web").spec.replicas == 1


async def test_the_users_own_expected_version_is_still_refused() -> None:
    ops, _ = await _created(races=1)
    version = ops.find("web").version
    with pytest.raises(ConflictError, match="changed since you read it") as info:
        await ops.update("web", {"replicas": 2, "expected_version": version})
    assert info.value.field == "expected_version"  # the redo read the newer record: not the user's version
    assert ops.find("web").spec.replicas == 1


def _nodes() -> ClusterState:
    state, _, _ = apply(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c1").encode())
    for i in (1, 2):
        node = Node(f"id{i}", f"n{i}", f"10.0.0.{i}", 7947, 7946, role=NodeRole.VOTER)
        state, result, _ = apply(state, C.AddNode(at=1.0, node=node).encode())
        assert result["ok"], result
    return state


def _agent_writes_first(ops: Any, raft: Any) -> None:
    """n2's agent records its engine unreachable between the request's read and its first write."""
    write, raced = ops.cluster.write, []

    async def agent_first(command: bytes) -> object:
        if not raced:
            raced.append(True)
            engine = C.UpdateNode(at=3.0, node_id="id2", engine_down_at=2.5, engine_error="gone")
            raft.state, result, _ = apply(raft.state, engine.encode())
            assert result["ok"], result
        return await write(command)

    ops.cluster.write = agent_first


async def test_node_update_while_the_agent_records_its_engine_is_done(node_ops: Callable) -> None:
    ops, raft = node_ops(_nodes())
    _agent_writes_first(ops, raft)
    view = await ops.update_node("n2", {"label_add": {"zone": "a"}})
    assert view["labels"] == {"zone": "a"}
    assert raft.state.nodes["id2"].engine_down_at == 2.5  # the agent's record kept


async def test_node_rm_records_the_leading_voter_as_replica_on_its_newest_record(node_ops: Callable) -> None:
    """``node rm`` of the Raft leader first records it as a replica (it steps down): that write too."""
    ops, raft = node_ops(_nodes())
    _agent_writes_first(ops, raft)
    await ops._record_replica("id2")
    assert raft.state.nodes["id2"].role == NodeRole.REPLICA and raft.state.nodes["id2"].engine_down_at == 2.5


class AnotherUserUpdatesFirst(MemoryManager):
    """Before the next write, another user's update of ``web`` commits (its image v2 -> v3): the
    request read the service before it."""

    def __init__(self) -> None:
        super().__init__()
        self.race = False

    async def write(self, command: bytes) -> object:
        service = self.state.service_by_name("web")
        if self.race and service is not None:
            self.race = False
            spec = dataclasses.replace(service.spec, image="p2porch/busybox:v3")
            change = rollback_point.updated(service, spec, 2.0)
            update = C.UpdateService.of(
                service, at=2.0, spec=change.spec, previous_spec=change.previous_spec, rollout=change.rollout
            )
            self._apply(update.encode())
        return await super().write(command)


async def test_a_rollback_after_another_users_update_is_refused_not_redone_over_it() -> None:
    """Main re-ran the rollback on the newer record: it rolled back to v2, silently undoing the other
    user's v3, and both reported success. A rollback's target is what it read: it is refused now."""
    manager = AnotherUserUpdatesFirst()
    ops = ServiceOps(manager, logs=None)  # type: ignore[arg-type]
    await ops.create({**SPEC, "image": "p2porch/busybox:v1"})
    await ops.update("web", {"image": "p2porch/busybox:v2"})
    manager.race = True
    with pytest.raises(ConflictError, match="web changed since you read it") as info:
        await ops.rollback("web")
    assert info.value.field == "SERVICE"
    assert ops.find("web").spec.image == "p2porch/busybox:v3"  # the other user's update stands


async def test_a_rollback_while_the_leader_writes_the_service_is_done() -> None:
    ops, manager = await _created(races=0)
    await ops.update("web", {"image": "p2porch/busybox:v2"})
    manager.races = 1  # the leader's bookkeeping: spec and rollback point unchanged
    rolled = await ops.rollback("web")
    assert rolled["spec"]["image"] == SPEC["image"]
