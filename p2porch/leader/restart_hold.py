"""A daemon that announced a graceful restart is held ready for a bounded grace (pure).

A daemon stopping on SIGTERM/SIGINT (the systemd unit's stop and restart, an upgrade) publishes in its
gossip meta until when it asks to be held (``NodeMeta.restart_until``, its wall clock: now +
``[scheduler] restart_grace_s``) before its gossip stops (``member/gossip.announce_restart``). Its
containers keep running under dockerd and its restarted agent adopts them, so its node should neither
go down nor lose its tasks meanwhile. :class:`RestartHolds` decides, from the committed nodes and the
leader's gossip view, what the leader records (``Node.restart_until``/``restart_incarnation``):

- a ready node whose gossip meta announces a hold not yet past, at an incarnation newer than the one
  recorded, is held until ``min(announced, now + MAX_RESTART_GRACE_S)``;
- a held node seen alive again at a newer incarnation without the announcement is released (its
  daemon is back), as is one seen alive once the hold ran out;
- a held node whose hold ran out and is not alive goes down (its tasks move as for any lost node),
  and so does one that left (``p2porch leave``).

While held the node takes no new task (``Node.schedulable``), gossip's dead verdict and the leader's
never-seen grace do not mark it down, and its tasks are neither replaced nor counted out. A crash, a
host death or a partition announce nothing: nothing changes for them. The hold is bounded by the
announced deadline (a replayed or stale announcement names a past one), by the cap (a skewed clock)
and by incarnation (one announcement holds once). The hold fields are ``update_node`` version 2: while
some member does not read it (raft/command_gate.py) the plan holds nobody and writes each status change
without them (:meth:`HoldPlan.without_holds`), so a hold already recorded cannot be cleared then; once
past it is inert wherever a clock reads it (:class:`PastHolds` for the scheduler, ``member/held.py``).
Never writes, never reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, NamedTuple

from ..config import MAX_RESTART_GRACE_S
from ..gossip.messages import restart_hint
from ..member.held import hold_in_force
from ..model import GossipState, Node, NodeStatus
from ..raft.commands import HOLD_FIELDS
from ..raft.state import ClusterState

__all__ = [
    "MAX_RESTART_GRACE_S",
    "HoldPlan",
    "PastHolds",
    "RestartHolds",
    "Sighting",
    "sightings",
    "without_hold_fields",
]

RELEASE: dict[str, Any] = {"restart_until": 0.0, "restart_incarnation": 0}


class Sighting(NamedTuple):
    """A member as the leader's gossip sees it: ``alive | suspect | dead | left``, its incarnation and
    the restart hold its meta announces (unix seconds, 0: none)."""

    state: str
    incarnation: int
    restart_until: int = 0


@dataclass
class HoldPlan:
    """What one look decided: ``updates`` (node id -> ``UpdateNode`` fields), the nodes ``held`` now
    (gossip's dead verdict and the never-seen grace leave them alone), when the next hold runs out, and
    the holds and clears the gate ``blocked`` (node id -> ``("hold" | "clear", the hold's incarnation)``)."""

    updates: dict[str, dict[str, Any]] = field(default_factory=dict)
    held: frozenset[str] = frozenset()
    wake_at: float | None = None
    blocked: dict[str, tuple[str, int]] = field(default_factory=dict)

    def without_holds(self, state: ClusterState, now: float) -> HoldPlan:
        """This plan while some member does not read ``update_node`` version 2: nobody held (gossip's
        verdicts apply, as with ``restart_grace_s = 0``), each update without its hold fields (a status
        change still goes, as version 1) and every hold or clear left out in ``blocked``. A hold already
        recorded stays until the gate opens, inert once past (:class:`PastHolds`, ``member/held.py``): the
        plan wakes the leader when the next one runs out."""
        updates: dict[str, dict[str, Any]] = {}
        blocked: dict[str, tuple[str, int]] = {}
        for node_id, change in self.updates.items():
            kept = without_hold_fields(change)
            if change.get("restart_until"):
                blocked[node_id] = ("hold", int(change["restart_incarnation"]))
            else:
                blocked[node_id] = ("clear", state.nodes[node_id].restart_incarnation)
            if kept:
                updates[node_id] = kept
        ends = [n.restart_until for n in state.nodes.values() if hold_in_force(n, now)]
        return HoldPlan(updates, frozenset(), min(ends, default=None), blocked)

    def why(self, node_id: str) -> str:
        """The log line's reason for ``node_id``'s update."""
        change = self.updates[node_id]
        if change.get("status") == NodeStatus.DOWN:
            return "its announced restart did not end in time"
        return "announced a restart" if change.get("restart_until") else "back from its restart"

    def node_updates(
        self, gossip_marks: Mapping[str, str], never_seen: Iterable[str]
    ) -> dict[str, dict[str, Any]]:
        """Every ``UpdateNode`` of one leader round (node id -> fields): gossip's status marks
        (``scheduling.node_status_updates``) and the never-seen downs (``leader/unseen.py``) of the nodes
        not held, with this plan's own updates."""
        marks = {**gossip_marks, **dict.fromkeys(never_seen, NodeStatus.DOWN)}
        updates: dict[str, dict[str, Any]] = {
            node: {"status": status} for node, status in marks.items() if node not in self.held
        }
        for node_id, change in self.updates.items():
            updates.setdefault(node_id, {}).update(change)
        return updates


class RestartHolds:
    """The leader's restart-hold rule; ``cap_s`` bounds every hold from the leader's ``now``."""

    def __init__(self, cap_s: float = MAX_RESTART_GRACE_S) -> None:  # a node's clock may be ahead
        self.cap_s = cap_s
        self.wake_at: float | None = None  # the shell keeps the last plan's here (leader/loop.py)
        self.reported: set[tuple[str, str, int]] = set()  # and the blocked holds it logged (still blocked)

    def plan(
        self, state: ClusterState, seen: Mapping[str, Sighting], now: float, *, allowed: bool = True
    ) -> HoldPlan:
        """Decide at ``now`` (the leader's wall clock) from ``state`` and the leader's gossip ``seen``;
        ``allowed`` False (a member does not read ``update_node`` version 2, raft/command_gate.py): the
        same decisions without the hold fields (:meth:`without_holds`)."""
        plan = self._plan(state, seen, now)
        return plan if allowed else plan.without_holds(state, now)

    def _plan(self, state: ClusterState, seen: Mapping[str, Sighting], now: float) -> HoldPlan:
        updates: dict[str, dict[str, Any]] = {}
        held: set[str] = set()
        wake = math.inf
        for node_id, node in state.nodes.items():
            sighting = seen.get(node_id)
            if node.status != NodeStatus.READY:
                if node.restart_until:  # went down or left another way: the hold is moot
                    updates[node_id] = dict(RELEASE)
                continue
            announced = sighting.restart_until if sighting is not None else 0
            state_seen = sighting.state if sighting is not None else None
            if state_seen == GossipState.LEFT:
                if node.restart_until:
                    updates[node_id] = {"status": NodeStatus.DOWN, **RELEASE}
                continue
            if (
                sighting is not None
                and announced > now
                and (not node.restart_until or sighting.incarnation > node.restart_incarnation)
            ):
                until = min(float(announced), now + self.cap_s)
                if until != node.restart_until or sighting.incarnation != node.restart_incarnation:
                    updates[node_id] = {"restart_until": until, "restart_incarnation": sighting.incarnation}
                held.add(node_id)
                wake = min(wake, until)
                continue
            if not node.restart_until:
                continue
            alive = state_seen == GossipState.ALIVE
            back = alive and sighting is not None and sighting.incarnation > node.restart_incarnation
            if (back and not announced) or (alive and now >= node.restart_until):
                updates[node_id] = dict(RELEASE)
            elif now >= node.restart_until:
                updates[node_id] = {"status": NodeStatus.DOWN, **RELEASE}
            else:
                held.add(node_id)
                wake = min(wake, node.restart_until)
        return HoldPlan(updates, frozenset(held), None if wake == math.inf else wake)


class PastHolds:
    """The state the leader's scheduler plans on: a ready node whose recorded hold is past at ``now`` is
    as one never held (schedulable), although the record keeps it while the gate blocks its clear. Owns
    the last view, so an unchanged state and set of past holds gives the same node records (the
    incremental planner compares them by identity). Never writes."""

    def __init__(self) -> None:
        self._seen: tuple[Mapping[str, Node], frozenset[str]] | None = None  # the last input
        self._nodes: Mapping[str, Node] = MappingProxyType({})  # its view
        self._copies: dict[str, tuple[Node, Node]] = {}  # node id -> (its record, that without the hold)

    def view(self, state: ClusterState, now: float) -> ClusterState:
        """``state`` with the past holds of ready nodes left out (``state`` itself when there is none)."""
        past = frozenset(
            n.node_id
            for n in state.nodes.values()
            if n.status == NodeStatus.READY and n.restart_until and now >= n.restart_until
        )
        if not past:
            self._seen, self._copies = None, {}
            return state
        if self._seen is None or self._seen[0] is not state.nodes or self._seen[1] != past:
            nodes, copies = dict(state.nodes), {}
            for node_id in past:
                record = nodes[node_id]
                last = self._copies.get(node_id)
                copies[node_id] = (
                    last if last is not None and last[0] is record else (record, replace(record, **RELEASE))
                )
                nodes[node_id] = copies[node_id][1]
            self._seen, self._nodes, self._copies = (state.nodes, past), MappingProxyType(nodes), copies
        return replace(state, nodes=self._nodes)


def without_hold_fields(change: Mapping[str, Any]) -> dict[str, Any]:
    """``UpdateNode`` fields ``change`` without the restart hold's (``update_node`` version 1's body)."""
    return {k: v for k, v in change.items() if k not in HOLD_FIELDS}


def sightings(members: Mapping[str, Any]) -> dict[str, Sighting]:
    """The leader's gossip member views (``MemberView``: state, incarnation, meta) as sightings."""
    return {
        name: Sighting(member.state, member.incarnation, restart_hint(member.meta))
        for name, member in members.items()
    }
