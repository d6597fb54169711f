"""The leader loops that write one command now and then (autopilot, autoscaler, re-seal) go through
``write_as_leader``: the write carries the claimed epoch, and a node that does not lead, or whose view of
leading is behind a newer claimed epoch, writes nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from p2porch.clock import TrioClock
from p2porch.context import MemberContext
from p2porch.errors import ConflictError
from p2porch.leader.epoch import write_as_leader
from p2porch.model import Node, NodeRole
from p2porch.raft import commands as C
from p2porch.raft.status import RaftStatus
from p2porch.testing.leader_context import leader_context
from p2porch.testing.memstore import MemoryRaft, MemoryStore

ME, OTHER = "10.0.0.1:7947", "10.0.0.2:7947"


class FrozenView(MemoryStore):
    """A store whose status can be frozen: this node still believes it leads in its old term."""

    view: RaftStatus | None = None

    def status(self) -> RaftStatus:
        return self.view if self.view is not None else super().status()


def context(store: MemoryStore) -> MemberContext:
    return leader_context(store, TrioClock(1_800_000_000.0))


async def cluster_of_one_node(raft: MemoryRaft, store: MemoryStore) -> None:
    raft.submit(C.InitCluster(at=0.0, cluster_id="c0ffee").encode())
    raft.submit(C.AddNode(at=0.0, node=Node("n1", "n1", "10.0.0.1", 7947, 7946)).encode())


def promote(store: MemoryStore) -> C.UpdateNode:
    node = store.snapshot().nodes["n1"]
    assert node.role == NodeRole.REPLICA
    return C.UpdateNode(at=1.0, node_id="n1", role=NodeRole.VOTER, node_version=node.version)


async def test_a_leaders_write_is_claimed_and_stamped_with_its_epoch() -> None:
    raft = MemoryRaft([ME, OTHER], leader=ME)
    store = FrozenView(raft, ME)
    await cluster_of_one_node(raft, store)
    await write_as_leader(context(store), promote(store))
    commands = [C.decode_command(c) for c in raft.log]
    assert isinstance(commands[-2], C.ClaimLeaderEpoch) and commands[-2].epoch == raft.term
    assert isinstance(commands[-1], C.UpdateNode) and commands[-1].leader_epoch == raft.term
    assert store.snapshot().nodes["n1"].role == NodeRole.VOTER


async def test_a_follower_writes_nothing() -> None:
    raft = MemoryRaft([ME, OTHER], leader=OTHER)
    store = FrozenView(raft, ME)
    await cluster_of_one_node(raft, store)
    logged = len(raft.log)
    with pytest.raises(ConflictError) as info:
        await write_as_leader(context(store), promote(store))
    assert info.value.field == "leader_epoch" and len(raft.log) == logged


async def test_a_deposed_leader_whose_view_is_behind_is_refused_by_the_fsm() -> None:
    raft = MemoryRaft([ME, OTHER], leader=ME)
    store = FrozenView(raft, ME)
    await cluster_of_one_node(raft, store)
    ctx = context(store)
    await write_as_leader(ctx, C.Noop(at=0.0, tag=1))  # claims this term's epoch
    store.view = replace(store.status())  # it keeps believing it leads in that term
    raft.set_leader(OTHER)
    raft.submit(C.ClaimLeaderEpoch(at=0.0, epoch=raft.term).encode())  # the new leader claims its own
    with pytest.raises(ConflictError) as info:
        await write_as_leader(ctx, promote(store))
    assert info.value.field == "leader_epoch"
    assert store.snapshot().nodes["n1"].role == NodeRole.REPLICA


async def test_a_bookkeeping_write_the_fsm_refuses_is_logged_once_not_raised(caplog) -> None:
    """h52b journey: the leader's rollback to a spec naming a network removed since was refused by the
    FSM, and the NotFoundError raised out of the scheduler at every round (nothing placed anywhere); then
    (review r52c) the refusal was logged at every round, forever: now once per service version and
    message."""
    from p2porch.leader.bookkeeping import Bookkeeping
    from p2porch.model import ServiceSpec

    raft = MemoryRaft([ME, OTHER], leader=ME)
    store = FrozenView(raft, ME)
    await cluster_of_one_node(raft, store)
    ctx = context(store)
    await write_as_leader(ctx, promote(store))  # claims this term's epoch
    raft.submit(C.CreateService(at=1.0, service_id="s1", spec=ServiceSpec(name="web", image="app")).encode())
    service = store.snapshot().services["s1"]
    gone = ServiceSpec.from_dict({"name": "web", "image": "app", "networks": ["shop_back"]})
    update = C.UpdateService.of(service, at=2.0, spec=gone)
    book = Bookkeeping(ctx)
    for _round in range(3):
        outcome = await book.write(service, update, "update failure action", raft.term)  # h52b: raised
        assert outcome.kind == "refused" and "network 'shop_back' not found" in outcome.message
    assert caplog.text.count("update failure action for web refused: network 'shop_back' not found") == 1
    assert store.snapshot().services["s1"].spec.networks == ()


async def test_a_deposed_leader_writes_no_more_of_its_rounds_bookkeeping() -> None:
    """Review r52c: after a stale-epoch refusal the deposed leader went on proposing the rest of its
    round's decisions; now it stops at the refusal, and writes nothing once it sees it no longer leads."""
    from p2porch.leader.bookkeeping import Bookkeeping
    from p2porch.leader.followups import Write, each
    from p2porch.model import ServiceSpec

    raft = MemoryRaft([ME, OTHER], leader=ME)
    store = FrozenView(raft, ME)
    await cluster_of_one_node(raft, store)
    ctx = context(store)
    await write_as_leader(ctx, C.Noop(at=0.0, tag=1))  # claims this term's epoch
    epoch = raft.term
    for sid in ("s1", "s2"):
        raft.submit(C.CreateService(at=1.0, service_id=sid, spec=ServiceSpec(name=sid, image="app")).encode())
    state = store.snapshot()
    writes = [
        Write(svc, C.UpdateService.of(svc, at=2.0, rebalance_requested=0.0), "clearing the rebalance request")
        for svc in state.services.values()
    ]
    store.view = replace(store.status())  # it keeps believing it leads in that term
    raft.set_leader(OTHER)
    raft.submit(C.ClaimLeaderEpoch(at=0.0, epoch=raft.term).encode())  # the new leader claims its own
    logged = len(raft.log)
    assert await Bookkeeping(ctx).drive(each(writes), epoch)  # the round ends
    assert len(raft.log) == logged + 1  # main: both proposed, both refused
    store.view = None  # it sees it no longer leads: nothing proposed
    assert await Bookkeeping(ctx).drive(each(writes), epoch)
    assert len(raft.log) == logged + 1
