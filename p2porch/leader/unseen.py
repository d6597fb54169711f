"""Ready nodes that the leader's gossip has never seen: marked down after a grace (pure).

A replica joining from its own address is recorded ``ready`` by its admission
(``membership/admission_plan.admitted_status``), so a join is one Raft entry, not an admission and a
ready mark. Gossip marks a ready node down only once it has seen it and then declares it dead
(``scheduling.node_status_updates``); a node whose daemon never started its member services (a join
that failed midway and was not run again), or that died before this leader's gossip ever reached it,
is never seen and would stay ready with its tasks. :class:`UnseenNodes` notes since when each ready
node has been unknown to this leader's gossip, and :meth:`UnseenNodes.downs` names those unknown for
``grace_s``: the leader marks them down (``leader/loop.py``), and gossip makes them ready again once
it sees them alive. The clock starts when this leader first looks (a new leader waits a whole grace);
while the leader's own gossip knows nobody (not running), nothing is counted. Never writes.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..model import NodeStatus
from ..raft.state import ClusterState

__all__ = ["UNSEEN_DOWN_S", "UnseenNodes"]

#: a ready node unknown to the leader's gossip this long is marked down (a joiner's services start
#: within ~1 s of its admission; 8 joins at once on 2 cores within ~5 s; the leader's first sighting
#: under the WAN preset at 1,000 nodes: p99 0.43 s, 4.5 s with a lost greeting, docs/gossip.md)
UNSEEN_DOWN_S = 30.0


class UnseenNodes:
    """Since when (the leader's ``now``) each ready node has been unknown to its gossip; one per leader
    loop, started again for every leader epoch."""

    def __init__(self, grace_s: float = UNSEEN_DOWN_S) -> None:
        self.grace_s = grace_s
        self.since: dict[str, float] = {}
        self.epoch: int | None = None

    def downs(
        self, state: ClusterState, gossip_states: Mapping[str, str], self_id: str, now: float, epoch: int
    ) -> list[str]:
        """Update the record from ``state`` and this leader's ``gossip_states`` at ``now`` in leader
        ``epoch``; the ids of ready nodes unknown to gossip for at least the grace, sorted."""
        if epoch != self.epoch:  # a new term of leadership: what an earlier one noted is stale
            self.since, self.epoch = {}, epoch
        if not gossip_states:  # the leader's gossip is not running: it cannot tell who is unknown
            self.since.clear()
            return []
        unknown = {
            node_id
            for node_id, node in state.nodes.items()
            if node.status == NodeStatus.READY and node_id != self_id and node_id not in gossip_states
        }
        self.since = {node_id: self.since.get(node_id, now) for node_id in unknown}
        return sorted(node_id for node_id, since in self.since.items() if now - since >= self.grace_s)
