"""When a task leaving the load balancers may be stopped: once every live node's rules dropped it (pure).

A task whose desired state becomes shutdown leaves every node's ingress/VIP backend set with that commit
(``commit_index``, the state version of the commit). Each node makes known the state version its traffic
rules reflect (its *applied traffic index*, carried in its gossip metadata: ``member/traffic.py``). The
task may be stopped once every live node has applied an index at or past the commit, plus ``grace_s``
for connections DNATed to it just before (their SYN still in flight); never later than ``max_s`` after
the drain started (a node that is hung but not yet declared dead must not hold a stop forever). A node
that is not live (gossip dead or left, or unknown) does not block. Once acknowledged, a drain stays
acknowledged (a node that comes alive later applies the current state before it serves).

Never reads a clock, does I/O or logs: ``now`` and the indices are given.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

ACKNOWLEDGED = "acknowledged"
BOUND = "bound"
GRACE_S = 0.25  # defaults of the daemon's overlay.drain_grace_s and overlay.drain_max_s
MAX_S = 10.0


@dataclass(frozen=True, slots=True)
class DrainBounds:
    """How long after every node acknowledged, and how long at most, a drain waits."""

    grace_s: float = GRACE_S
    max_s: float = MAX_S


@dataclass(frozen=True, slots=True)
class DrainVerdict:
    """``done``: stop the task now, ``reason`` says why (acknowledged | bound). Otherwise look again at
    ``wake_at`` at the latest (earlier when an index may have moved). ``acked_at``: when every live node
    was first seen at or past the commit (None: not yet); ``laggards``: the live nodes still behind."""

    done: bool
    reason: str
    acked_at: float | None
    wake_at: float
    laggards: tuple[str, ...]


def drain_verdict(
    now: float,
    started_at: float,
    acked_at: float | None,
    commit_index: int,
    applied: Mapping[str, int],
    live: Collection[str],
    bounds: DrainBounds,
) -> DrainVerdict:
    """The verdict at ``now`` for a drain started at ``started_at`` (``acked_at``: the previous verdict's);
    ``applied``: node id -> applied traffic index (a node missing from it has applied nothing);
    ``live``: the nodes that block (gossip alive or suspect: they may still carry traffic)."""
    laggards = tuple(sorted(node for node in live if applied.get(node, 0) < commit_index))
    if acked_at is None and not laggards:
        acked_at = now
    deadline = started_at + max(0.0, bounds.max_s)
    if acked_at is not None:
        stop_at = min(acked_at + max(0.0, bounds.grace_s), deadline)
        return DrainVerdict(now >= stop_at, ACKNOWLEDGED, acked_at, stop_at, ())
    if now >= deadline:
        return DrainVerdict(True, BOUND, None, deadline, laggards)
    return DrainVerdict(False, "", None, deadline, laggards)
