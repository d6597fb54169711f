"""member/drain_acks.py: the applied traffic index through gossip metadata, and the drain gate's waits
(shell test: a fake gossip handle, trio's MockClock)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
import trio.testing

from p2porch.agent.drain_gate import DrainBounds
from p2porch.context import LocalBoard
from p2porch.gossip.runner import GossipHandle
from p2porch.member.drain_acks import EndpointDrainGate, applied_traffic_indices, publish_traffic_index
from p2porch.metrics import Metrics


@dataclass
class View:
    state: str
    meta: dict[str, Any]


@dataclass
class FakeGossip:
    name: str = "a"
    views: dict[str, View] = field(default_factory=dict)
    updates: list[dict[str, Any]] = field(default_factory=list)
    _held: dict[str, Any] = field(default_factory=dict)  # GossipHandle's held keys (none here)

    def members(self) -> dict[str, View]:
        return dict(self.views)

    def update_meta(self, meta: dict[str, Any]) -> None:
        self.updates.append(meta)
        self.views[self.name] = View(self.views[self.name].state, meta)

    set_own_meta = GossipHandle.set_own_meta  # the real one, over this fake's members and update_meta


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


def cluster() -> tuple[LocalBoard, FakeGossip]:
    gossip = FakeGossip(
        views={
            "a": View("alive", {"a": "10.0.0.1", "t": 0}),
            "b": View("alive", {"a": "10.0.0.2", "t": 5}),
            "c": View("suspect", {"a": "10.0.0.3"}),  # an older daemon: no index
            "d": View("dead", {"t": 1}),
        }
    )
    board = LocalBoard()
    board.gossip = gossip  # type: ignore[assignment]
    return board, gossip


def counts(metrics: Metrics) -> dict[str, float]:
    text = metrics.render().decode()
    return {
        line.split('"')[1]: float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("p2porch_endpoint_drains_total{")
    }


def test_publishing_keeps_the_other_metadata_and_only_moves_forward() -> None:
    board, gossip = cluster()
    publish_traffic_index(board, 7)
    publish_traffic_index(board, 7)
    publish_traffic_index(board, 6)
    assert gossip.updates == [{"a": "10.0.0.1", "t": 7}] and board.traffic_index == 7
    applied, live = applied_traffic_indices(board.gossip, "a", board.traffic_index)
    assert applied == {"a": 7, "b": 5, "c": 0, "d": 1}
    assert live == {"a", "b", "c"}  # a suspect node may still carry traffic; a dead one does not block
    quiet = LocalBoard()
    publish_traffic_index(quiet, 3)  # before gossip runs: gossip starts with it in its metadata
    assert quiet.traffic_index == 3


async def test_the_gate_opens_a_grace_after_the_last_live_node_applied(autojump_clock: Any) -> None:
    board, gossip = cluster()
    metrics = Metrics()
    gate = EndpointDrainGate(board, "a", DrainBounds(grace_s=0.25, max_s=10.0), metrics)

    async def nodes_apply() -> None:
        await trio.sleep(0.5)
        publish_traffic_index(board, 9)
        gossip.views["b"] = View("alive", {"t": 9})
        await trio.sleep(1.0)
        gossip.views["c"] = View("suspect", {"t": 12})

    async with trio.open_nursery() as nursery:
        nursery.start_soon(nodes_apply)
        t0 = trio.current_time()
        await gate("t1", 9)
        waited = trio.current_time() - t0
    assert 1.75 <= waited <= 1.75 + 0.06, waited  # c at 1.5 s, the grace, one poll at most
    assert counts(metrics) == {"acknowledged": 1.0}


async def test_a_hung_live_node_holds_the_gate_until_the_bound_and_is_counted(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    board, gossip = cluster()
    metrics = Metrics()
    publish_traffic_index(board, 9)
    gossip.views["b"] = View("alive", {"t": 9})  # c (suspect, no index) never answers
    t0 = trio.current_time()
    await EndpointDrainGate(board, "a", DrainBounds(grace_s=0.25, max_s=4.0), metrics)("t1", 9)
    assert trio.current_time() - t0 == pytest.approx(4.0, abs=0.06)
    assert counts(metrics) == {"bound": 1.0}
    assert "c still behind version 9" in caplog.text
