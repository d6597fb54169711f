"""Member service piece: every node's applied traffic index, published and read through gossip (shell).

This node's traffic loop (``member/traffic.py``) calls :func:`publish_traffic_index` after its rules
reflect a new state version that matters to a drain (the rules changed, a task was asked to stop, or
the periodic full rewrite): the version goes into this node's gossip metadata (``"t"``), which SWIM
spreads as it spreads any metadata update (an alive message with a new incarnation, piggybacked; a newer
one about the same node replaces the queued one, so the queue holds at most one per node). No Raft write.

:class:`EndpointDrainGate` is what the agent awaits before it stops a load-balanced task: it reads the
indices and the gossip states every ``POLL_S`` while a drain lasts (a drain lasts at most
``drain_max_s``) and hands them to ``agent.drain_gate.drain_verdict``. It logs each drain's outcome and
counts it (``p2porch_endpoint_drains``); it never decides anything itself.
"""

from __future__ import annotations

import logging

import trio

from ..agent.drain_gate import BOUND, DrainBounds, drain_verdict
from ..context import LocalBoard
from ..gossip.runner import GossipHandle
from ..metrics import Metrics

log = logging.getLogger(__name__)

__all__ = ["EndpointDrainGate", "applied_traffic_indices", "publish_traffic_index"]

META_KEY = "t"  # NodeMeta.traffic_index on the wire
POLL_S = 0.05  # while a drain lasts: gossip brings an update within a gossip interval (0.1-0.5 s)
BLOCKING_STATES = ("alive", "suspect")  # a suspect node still carries traffic (only dead ones are cut)


def publish_traffic_index(board: LocalBoard, version: int) -> None:
    """Record that this node's rules reflect state ``version`` and tell the other members (gossip)."""
    if version <= board.traffic_index:
        return
    board.traffic_index = version
    gossip = board.gossip
    if gossip is None:  # gossip not up yet: it starts with board.traffic_index in its metadata
        return
    gossip.set_own_meta(META_KEY, version)


def applied_traffic_indices(
    gossip: GossipHandle | None, node_id: str, own: int
) -> tuple[dict[str, int], set[str]]:
    """(node id -> applied traffic index, the nodes that block a drain) as gossip shows them; this node's
    own index is ``own`` (fresher than its gossip copy). A member whose metadata has no index (an older
    daemon, or a node whose rules are not up yet) has applied nothing."""
    applied, live = {node_id: own}, {node_id}
    if gossip is None:
        return applied, live
    for name, member in gossip.members().items():
        if name == node_id:
            continue
        index = member.meta.get(META_KEY, 0) if isinstance(member.meta, dict) else 0
        applied[name] = index if isinstance(index, int) else 0
        if member.state in BLOCKING_STATES:
            live.add(name)
    return applied, live


class EndpointDrainGate:
    """Waits, for one task at a time, until every live node's rules reflect the commit that stopped it."""

    def __init__(self, board: LocalBoard, node_id: str, bounds: DrainBounds, metrics: Metrics) -> None:
        self.board = board
        self.node_id = node_id
        self.bounds = bounds
        self.metrics = metrics

    async def __call__(self, task_id: str, commit_index: int) -> None:
        started = trio.current_time()
        acked_at: float | None = None
        while True:
            now = trio.current_time()
            applied, live = applied_traffic_indices(self.board.gossip, self.node_id, self.board.traffic_index)
            verdict = drain_verdict(now, started, acked_at, commit_index, applied, live, self.bounds)
            if verdict.done:
                break
            acked_at = verdict.acked_at
            await trio.sleep(max(0.0, min(POLL_S, verdict.wake_at - now)))
        waited = trio.current_time() - started
        self.metrics.endpoint_drains.labels(verdict.reason).inc()
        if verdict.reason == BOUND:
            log.warning(
                "drain of task %s: %s still behind version %d after %.1f s; stopping it anyway",
                task_id,
                ", ".join(verdict.laggards),
                commit_index,
                waited,
            )
        else:
            assert verdict.acked_at is not None
            log.info(
                "drain of task %s: %d live nodes applied version %d after %.3f s; gate open after %.3f s",
                task_id,
                len(live),
                commit_index,
                verdict.acked_at - started,
                waited,
            )
