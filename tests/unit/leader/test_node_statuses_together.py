"""The leader writes the node statuses gossip changed together: one Raft entry for nodes changed at once."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
import trio.testing

from p2porch.clock import TrioClock
from p2porch.context import LocalBoard, LocalNode, MemberContext
from p2porch.errors import NotLeaderError
from p2porch.leader.epoch import claim_epoch
from p2porch.leader.loop import sync_node_statuses
from p2porch.leader.restart_hold import PastHolds, RestartHolds
from p2porch.leader.unseen import UnseenNodes
from p2porch.member.held import data_path_out
from p2porch.model import Node
from p2porch.raft import command_gate
from p2porch.raft import commands as C
from p2porch.testing.memstore import MemoryRaft

AT = 1_800_000_000.0


class Gossip:
    """What ``LocalBoard.gossip_states`` and the restart holds read: members with a state, an incarnation
    and meta (``metas``: a restart announcement, ``leader/restart_hold.py``)."""

    def __init__(self, states: dict[str, str], metas: dict[str, dict[str, Any]] | None = None) -> None:
        self.states = states
        self.metas = metas or {}

    def members(self) -> dict[str, Any]:
        return {
            node_id: type(
                "Member", (), {"state": state, "incarnation": 3, "meta": self.metas.get(node_id, {})}
            )()
            for node_id, state in self.states.items()
        }


ADDR = "10.0.0.1:7947"


def advertising(nodes: list[str], metas: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``metas`` with the command versions this release reads advertised by ``nodes`` (gossip ``cv``)."""
    cv = {"cv": command_gate.advertisement()}
    return {node: {**cv, **metas.get(node, {})} for node in nodes} | {
        node: meta for node, meta in metas.items() if node not in nodes
    }


def member_context(store: Any) -> MemberContext:
    """n1, the leader, whose gossip sees n2 and n3 alive and n4 dead."""
    board = LocalBoard()
    board.gossip = Gossip({"id1": "alive", "id2": "alive", "id3": "alive", "id4": "dead"})  # type: ignore[assignment]
    local = LocalNode("id1", "n1", "10.0.0.1", ADDR, "voter", 0, b"k" * 32)

    async def ask_member(host: str) -> None:
        return None

    return MemberContext(
        store=store, voter_control=store, local=local, board=board, clock=TrioClock(AT),
        commit_timeout_s=5.0, ask_member=ask_member,
    )  # fmt: skip


def announced_by_n4() -> tuple[Any, MemberContext]:
    """A store and n1's context where every node advertises this release and n4 announced a restart."""
    store = MemoryRaft([ADDR], leader=ADDR).store(ADDR)
    ctx = member_context(store)
    ctx.board.gossip.metas = advertising(["id1", "id2", "id3", "id4"], {"id4": {"r": int(AT) + 30}})  # type: ignore[union-attr]
    return store, ctx


async def held_first_round(store: Any, ctx: MemberContext, holds: RestartHolds) -> int:
    """The four nodes, n1's leader epoch and its first status round (n4's hold written); the epoch."""
    await four_nodes(store)
    epoch = await claim_epoch(ctx)
    assert epoch is not None
    assert await sync_node_statuses(ctx, store.snapshot(), epoch, UnseenNodes(), holds)
    return epoch


async def four_nodes(store: Any) -> None:
    await store.write(C.InitCluster(at=AT, cluster_id="c" * 16).encode())
    for i, status in ((1, "ready"), (2, "joining"), (3, "joining"), (4, "ready")):
        node = Node(f"id{i}", f"n{i}", f"10.0.0.{i}", 7947, 7946, status=status, status_at=AT)
        await store.write(C.AddNode(at=AT, node=node).encode())


def test_statuses_changed_at_once_are_proposed_together() -> None:
    raft = MemoryRaft([ADDR], leader=ADDR)
    store = raft.store(ADDR)
    ctx = member_context(store)
    held_together: list[int] = []

    async def main() -> None:
        await four_nodes(store)
        epoch = await claim_epoch(ctx)
        assert epoch is not None
        raft.hold()  # the leader accepts proposals and commits none: what waits together is one entry
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sync_node_statuses, ctx, store.snapshot(), epoch)
            await trio.testing.wait_all_tasks_blocked()
            held_together.append(raft.held)
            raft.release()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert held_together == [3]  # n2 and n3 ready, n4 down: all three waiting at once (one by one: 1)
    nodes = store.snapshot().nodes
    assert [nodes[f"id{i}"].status for i in (2, 3, 4)] == ["ready", "ready", "down"]


def test_a_refused_write_ends_the_round_with_its_own_error() -> None:
    """Not the leader any more: the error itself comes out (not a group of the concurrent writes')."""
    raft = MemoryRaft([ADDR], leader=ADDR)
    store = raft.store(ADDR)

    class Deposed:
        async def propose_together(self, commands: list[bytes], timeout_s: float = 5.0) -> Any:
            raise NotLeaderError("not the leader", leader="10.0.0.2:7947")

    async def main() -> None:
        await four_nodes(store)
        with pytest.raises(NotLeaderError):
            await sync_node_statuses(member_context(Deposed()), store.snapshot(), 1)

    trio.run(main)


def test_a_ready_node_its_gossip_never_saw_is_written_down_after_the_grace() -> None:
    """n5, admitted ready (a replica), never gossiped: down once unseen for the grace (leader/unseen.py)."""
    raft = MemoryRaft([ADDR], leader=ADDR)
    store = raft.store(ADDR)
    ctx = member_context(store)
    unseen = UnseenNodes(grace_s=30.0)

    async def main() -> None:
        await four_nodes(store)
        node = Node("id5", "n5", "10.0.0.5", 7947, 7946, status="ready", status_at=AT)
        await store.write(C.AddNode(at=AT, node=node).encode())
        epoch = await claim_epoch(ctx)
        assert epoch is not None
        await sync_node_statuses(ctx, store.snapshot(), epoch, unseen)  # n2, n3 ready, n4 down
        assert store.snapshot().nodes["id5"].status == "ready"  # unseen since now: within the grace
        await trio.sleep(30.0)
        assert await sync_node_statuses(ctx, store.snapshot(), epoch, unseen)
        assert store.snapshot().nodes["id5"].status == "down"
        assert not await sync_node_statuses(ctx, store.snapshot(), epoch, unseen)  # written once

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_a_node_that_announced_a_restart_is_held_ready_then_down_when_it_does_not_return() -> None:
    """n4 announced a restart (gossip meta) and is dead in gossip: ready and held (no new tasks) until
    the announced deadline, then down; without the announcement it is down at once (the first test)."""
    store, ctx = announced_by_n4()
    holds = RestartHolds()

    async def main() -> None:
        epoch = await held_first_round(store, ctx, holds)
        n4 = store.snapshot().nodes["id4"]
        assert n4.status == "ready" and n4.restart_until == AT + 30 and n4.restart_incarnation == 3
        assert not n4.schedulable and holds.wake_at == AT + 30
        await trio.sleep(29.0)
        assert not await sync_node_statuses(ctx, store.snapshot(), epoch, UnseenNodes(), holds)
        assert store.snapshot().nodes["id4"].status == "ready"
        await trio.sleep(1.0)
        assert await sync_node_statuses(ctx, store.snapshot(), epoch, UnseenNodes(), holds)
        n4 = store.snapshot().nodes["id4"]
        assert n4.status == "down" and n4.restart_until == 0 and n4.restart_incarnation == 0

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_no_hold_is_written_while_a_member_does_not_advertise_update_node_version_2() -> None:
    """n3 advertises nothing (a release from before the gate reads update_node version 1 only): n4's
    announced restart is not held (as with restart_grace_s = 0: n4 alive stays as it is, n4 dead is down
    at once); once n3 advertises the version, the announcement is held."""
    raft = MemoryRaft([ADDR], leader=ADDR)
    store = raft.store(ADDR)
    ctx = member_context(store)
    gossip = ctx.board.gossip
    announced = {"id4": {"r": int(AT) + 30}}
    gossip.states["id4"] = "alive"  # type: ignore[union-attr]
    gossip.metas = advertising(["id1", "id2", "id4"], announced)  # type: ignore[union-attr]
    holds = RestartHolds()

    async def main() -> None:
        await four_nodes(store)
        epoch = await claim_epoch(ctx)
        assert epoch is not None
        await sync_node_statuses(ctx, store.snapshot(), epoch, UnseenNodes(), holds)  # n2, n3 ready
        n4 = store.snapshot().nodes["id4"]
        assert n4.status == "ready" and n4.restart_until == 0 and holds.wake_at is None
        gossip.states["id4"] = "dead"  # type: ignore[union-attr]
        assert await sync_node_statuses(ctx, store.snapshot(), epoch, UnseenNodes(), holds)
        assert store.snapshot().nodes["id4"].status == "down"  # not held: down as without the hold
        gossip.states["id4"] = "alive"  # type: ignore[union-attr]
        assert await sync_node_statuses(ctx, store.snapshot(), epoch, UnseenNodes(), holds)
        assert store.snapshot().nodes["id4"].status == "ready"
        gossip.metas = advertising(["id1", "id2", "id3", "id4"], announced)  # type: ignore[union-attr]
        assert await sync_node_statuses(ctx, store.snapshot(), epoch, UnseenNodes(), holds)
        n4 = store.snapshot().nodes["id4"]
        assert n4.status == "ready" and n4.restart_until == AT + 30 and holds.wake_at == AT + 30

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


class Gated:
    """``store`` with the write gate a daemon's store runs (``RaftStore.propose_together``), reading
    ``readers`` (which may know less than the leader's plan did: the race the loop covers)."""

    def __init__(self, store: Any, readers: Any) -> None:
        self.store, self.readers = store, readers

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def propose_together(self, commands: list[bytes], timeout_s: float = 5.0) -> list[dict[str, Any]]:
        admitted = [command_gate.admit(command, self.readers) for command in commands]
        return await self.store.propose_together(admitted, timeout_s)


def test_a_hold_the_gate_refuses_at_the_store_does_not_drop_the_status_writes() -> None:
    """The plan saw every member read update_node version 2, the store's gate (a moment later) does not:
    n4's hold-only update is refused, n2's and n3's status writes proposed with it still commit."""
    raft = MemoryRaft([ADDR], leader=ADDR)
    store = raft.store(ADDR)
    new = command_gate.advertisement()
    ctx = member_context(Gated(store, lambda: {"id1": new, "id2": new, "id3": None, "id4": new}))
    ctx.board.gossip.states["id4"] = "alive"  # type: ignore[union-attr]
    ctx.board.gossip.metas = advertising(["id1", "id2", "id3", "id4"], {"id4": {"r": int(AT) + 30}})  # type: ignore[union-attr]

    async def main() -> None:
        await four_nodes(store)
        epoch = await claim_epoch(ctx)
        assert epoch is not None
        assert await sync_node_statuses(ctx, store.snapshot(), epoch, UnseenNodes(), RestartHolds())
        nodes = store.snapshot().nodes
        assert [nodes[f"id{i}"].status for i in (2, 3, 4)] == ["ready", "ready", "ready"]
        assert nodes["id4"].restart_until == 0

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_a_hold_recorded_before_the_gate_closed_is_inert_once_past_and_its_blocked_clear_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """n4 was held while every member read version 2; n3 stops advertising (a long-down node's cv
    forgotten). n4 comes back ready after its deadline: the clear cannot be written (zeroes are hold
    fields), so the record keeps the hold: the scheduler's view (``PastHolds``) and the data path treat
    it as no hold, and the blocked clear is logged and counted once, naming n3."""
    store, ctx = announced_by_n4()
    gossip = ctx.board.gossip
    holds = RestartHolds()

    async def main() -> None:
        epoch = await held_first_round(store, ctx, holds)
        assert store.snapshot().nodes["id4"].restart_until == AT + 30
        gossip.metas = advertising(["id1", "id2", "id4"], {})  # type: ignore[union-attr]
        gossip.states["id4"] = "alive"  # type: ignore[union-attr]
        await trio.sleep(40.0)
        caplog.set_level(logging.WARNING, logger="p2porch.leader.loop")
        for _ in range(3):
            assert not await sync_node_statuses(ctx, store.snapshot(), epoch, UnseenNodes(), holds)
        state = store.snapshot()
        n4 = state.nodes["id4"]
        assert n4.status == "ready" and n4.restart_until == AT + 30 and not n4.schedulable  # recorded
        assert PastHolds().view(state, AT + 40).nodes["id4"].schedulable
        assert data_path_out(state, set(), AT + 40) == set()
        warnings = [r.getMessage() for r in caplog.records if "not written" in r.getMessage()]
        assert len(warnings) == 1 and "restart hold of node n4" in warnings[0] and "by n3," in warnings[0]
        assert ctx.metrics.restart_holds_gated.values() == {("clear",): 1.0}

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
