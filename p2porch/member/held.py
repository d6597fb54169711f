"""Whether a node's tasks take traffic (DNS answers, ingress and VIP backends) while its daemon is away
(pure).

A node held for the restart its daemon announced (``Node.restart_until``, leader/restart_hold.py) keeps
its containers running under dockerd (live through a daemon restart), reachable over the overlay (the
others keep it as a peer while held, ``views.overlay_peer``): its tasks **keep serving** while the hold
is in force, although gossip calls the daemon dead. Draining them sent every client to the other tasks
for nothing and took a 1-replica service off the air for the whole restart.

A node **going down** takes its tasks out of every answer and backend set at once:

- its daemon stopped as part of a host shutdown (``host_shutdown.py``): it broadcasts a gossip leave, so
  every member sees it ``left`` at once (``gone``) and the leader marks it down;
- its hold ran out (``now >= restart_until``) and gossip calls its daemon dead or left: a past hold is
  inert, the node is as one never held (the leader marks it down, or clears the hold of a node back in
  time; a hold whose clear the command-version gate blocks stays recorded, so it must not count);
- its engine was recorded unreachable (``Node.engine_down_at``): its containers' health is unknown;
- down, or left.

A task whose containers are reported gone is not running in state and never counted (``views.is_backend``,
``views.task_entry``). A node not held follows gossip as before: dead or left in this node's gossip, its
tasks are out. Never reads a clock, never does I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from ..model import Node, NodeStatus
from ..raft.state import ClusterState

__all__ = ["data_path_out", "hold_in_force", "hold_serves", "next_hold_end"]


def hold_serves(node: Node, now: float = -math.inf) -> bool:
    """Whether ``node`` is held and its tasks keep serving at ``now``: ready, the hold not past and its
    engine not recorded unreachable. The default ``now`` reads the committed record alone (the DNS zone,
    a function of committed state: the leader commits the node down when its hold runs out)."""
    return hold_in_force(node, now) and not node.engine_down_at


def data_path_out(state: ClusterState, gone: Iterable[str], now: float) -> frozenset[str]:
    """The node ids whose tasks are no ingress or VIP backend at ``now``: ``gone`` in this node's gossip
    (dead, or left: a host shutting down says so) unless held and serving, and every node held at
    ``now`` whose engine is unreachable. A hold past at ``now`` is inert: that node follows gossip as
    one never held. Down and left nodes are not live anyway (``views.is_live``)."""
    nodes = state.nodes
    out = {n for n in gone if (node := nodes.get(n)) is None or not hold_serves(node, now)}
    out.update(n for n, node in nodes.items() if node.engine_down_at and hold_in_force(node, now))
    return frozenset(out)


def hold_in_force(node: Node, now: float) -> bool:
    """Whether ``node`` is ready with a recorded hold not past at ``now`` (its engine aside)."""
    return node.status == NodeStatus.READY and bool(node.restart_until) and now < node.restart_until


def next_hold_end(state: ClusterState, now: float) -> float | None:
    """When the next hold in force runs out (unix seconds; None: none does): a view that applies
    ``data_path_out`` looks again then."""
    ends = [n.restart_until for n in state.nodes.values() if hold_serves(n, now)]
    return min(ends) if ends else None
