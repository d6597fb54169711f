"""A joiner's gossip seeds no one while its greeting is under way (shell tier: the gossip member service's
loop over an in-memory store, ``serve_gossip`` stood in for by a handle that records its push/pulls).

The greeting (``membership.manager.ClusterManager._greet``: one push/pull with the member that admitted
the node) teaches the joiner's gossip every member. Before, the gossip loop saw itself alone as soon as
the Raft catch-up named the members and pushed/pulled with one of them as well: two push/pulls per join
where one does (issue 19, docs/performance.md, "The twenty-ninth round")."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from p2porch.clock import TrioClock
from p2porch.config import GossipConfig as GossipSection
from p2porch.context import LocalBoard, LocalNode, MemberContext
from p2porch.member import gossip as gossip_module
from p2porch.raft import commands as C
from p2porch.testing.memstore import MemoryRaft, MemoryStore
from p2porch.testing.seed_state import bench_node


class RecordingGossip:
    """Knows itself only until a push/pull; a push/pull with a member teaches it every node."""

    def __init__(self, me: str, everyone: set[str]) -> None:
        self.known = {me}
        self.everyone = everyone
        self.pushpulls: list[str] = []

    def members(self) -> dict[str, object]:
        return {node_id: object() for node_id in self.known}

    async def join(self, seeds: list[str]) -> int:
        self.pushpulls += seeds
        self.known |= self.everyone
        return len(seeds)


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


@pytest.mark.parametrize("greeting_done_at", [0.05, None])
async def test_a_joiner_pushes_pulls_once_its_greeting_when_the_catch_up_comes_first(
    autojump_clock: Any, monkeypatch: pytest.MonkeyPatch, greeting_done_at: float | None
) -> None:
    """The members are committed (the catch-up) while the greeting is under way; it then teaches gossip
    every member: no push/pull of the joiner's own (main: one more, to the first member, beside the
    greeting). A greeting that never ends (``None``) holds the loop ``GREETING_WAIT_S`` at most: it then
    seeds on its own."""
    records = [bench_node(i) for i in (1, 2, 3)]  # this node is the third
    me, admitter = records[2], f"{records[0].addr}:{records[0].gossip_port}"
    raft = MemoryRaft([f"{records[0].addr}:7947"], leader=f"{records[0].addr}:7947")
    store = MemoryStore(raft, f"{me.addr}:7947")
    handle = RecordingGossip(me.node_id, {r.node_id for r in records})

    async def fake_serve_gossip(*args: Any, task_status: Any = trio.TASK_STATUS_IGNORED, **kw: Any) -> None:
        task_status.started(handle)
        await trio.sleep_forever()

    monkeypatch.setattr(gossip_module, "serve_gossip", fake_serve_gossip)
    board = LocalBoard()
    board.greeting = trio.Event()  # what the member run sets up for a joiner (membership/runtime.py)
    clock = TrioClock()
    ctx = MemberContext(
        store=store,
        voter_control=store,
        local=LocalNode(me.node_id, me.name, me.addr, f"{me.addr}:7947", "replica", 0, b"k" * 32),
        board=board,
        clock=clock,
        commit_timeout_s=5.0,
        ask_member=lambda host: None,  # type: ignore[arg-type,return-value]
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(gossip_module._run_gossip, ctx, GossipSection())
        await trio.sleep(0.01)  # gossip up, the store still empty
        await store.write(C.InitCluster(at=clock.now(), cluster_id="c0ffee").encode())
        for record in records:  # the catch-up names the members
            await store.write(C.AddNode(at=clock.now(), node=record).encode())
        if greeting_done_at is not None:
            await trio.sleep(greeting_done_at)
            await handle.join([admitter])  # the greeting (manager._greet)
            board.greeting.set()
            await trio.sleep(gossip_module.GOSSIP_SEED_CHECK_S * 2)
            assert handle.pushpulls == [admitter]  # the greeting's, none of its own
        else:
            await trio.sleep(gossip_module.GREETING_WAIT_S + 0.1)
            assert len(handle.pushpulls) == 1  # its own seeding, once the wait ran out
        nursery.cancel_scope.cancel()
