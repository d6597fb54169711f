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
from p2porch.model import Node
from p2porch.raft import commands as C
from p2porch.testing.memstore import MemoryRaft, MemoryStore


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


def record(node_id: str, last_octet: int) -> Node:
    return Node(
        node_id=node_id,
        name=node_id,
        addr=f"10.0.0.{last_octet}",
        raft_port=7947,
        gossip_port=7946,
        role="replica",
        cpu_nanos=1_000_000_000,
        memory_bytes=1 << 30,
    )


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


@pytest.mark.parametrize("greeting_done_at", [0.05, None])
async def test_a_joiner_pushes_pulls_once_its_greeting_when_the_catch_up_comes_first(
    autojump_clock: Any, monkeypatch: pytest.MonkeyPatch, greeting_done_at: float | None
) -> None:
    """The members are committed (the catch-up) while the greeting is under way; it then teaches gossip
    every member: no push/pull of the joiner's own (main: one, to n1, beside the greeting). A greeting
    that never ends (``None``) holds the loop ``GREETING_WAIT_S`` at most: it then seeds on its own."""
    raft = MemoryRaft(["10.0.0.1:7947"], leader="10.0.0.1:7947")
    store = MemoryStore(raft, "10.0.0.3:7947")
    everyone = {"n1", "n2", "n3"}
    handle = RecordingGossip("n3", everyone)

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
        local=LocalNode("n3", "n3", "10.0.0.3", "10.0.0.3:7947", "replica", 0, b"k" * 32),
        board=board,
        clock=clock,
        commit_timeout_s=5.0,
        ask_member=lambda host: None,  # type: ignore[arg-type,return-value]
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(gossip_module._run_gossip, ctx, GossipSection())
        await trio.sleep(0.01)  # gossip up, the store still empty
        await store.write(C.InitCluster(at=clock.now(), cluster_id="c0ffee").encode())
        for node_id, octet in (("n1", 1), ("n2", 2), ("n3", 3)):  # the catch-up names the members
            await store.write(C.AddNode(at=clock.now(), node=record(node_id, octet)).encode())
        if greeting_done_at is not None:
            await trio.sleep(greeting_done_at)
            await handle.join(["10.0.0.1:7946"])  # the greeting (manager._greet)
            board.greeting.set()
            await trio.sleep(gossip_module.GOSSIP_SEED_CHECK_S * 2)
            assert handle.pushpulls == ["10.0.0.1:7946"]  # the greeting's, none of its own
        else:
            await trio.sleep(gossip_module.GREETING_WAIT_S + 0.1)
            assert len(handle.pushpulls) == 1  # its own seeding, once the wait ran out
        nursery.cancel_scope.cancel()
