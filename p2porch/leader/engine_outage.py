"""The engine-outage timer on the leader's monotonic clock (pure).

A node's record says since when its engine is unreachable (``Node.engine_down_at``: the agent's wall time,
shown by ``node inspect``), and the scheduler replaces the node's tasks ``engine_down_grace_s`` after that
(``scheduler/round_context.py``). Compared with the leader's wall clock, a step of either host's clock (or a
skew between them) made the leader replace them early or late. :class:`EngineOutages` owns when this leader
first saw each recorded outage, on its monotonic clock, and gives the scheduler a view of the state whose
``engine_down_at`` is that moment on the round's wall ``now`` (``now`` minus the monotonic time seen since):
the grace runs on the monotonic clock, whatever the wall clocks do. An outage a leader finds already recorded
(its takeover, its daemon's restart) counts from then: a new leader replaces the tasks at most one grace late,
never early. Every outage is credited the agent's ``CONFIRM_S``: its record is written only after that long of
failed calls (on the agent's monotonic clock), so the grace still counts from about the first failure, as the
record's time says. Keeps the last view's node copies and mapping (the incremental planner compares records by
identity). Never reads a clock, never writes: the committed record is unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType

from ..agent.engine_watch import CONFIRM_S
from ..model import Node
from ..raft.state import ClusterState

__all__ = ["STEP_S", "EngineOutages"]

#: a view's outage start moves only when the wall clock moved this much against the monotonic one (a step;
#: not the slewing of a clock being disciplined, which would otherwise copy the record every round)
STEP_S = 0.5


class EngineOutages:
    """See the module docstring."""

    def __init__(self, credit_s: float = CONFIRM_S) -> None:
        self.credit_s = credit_s  # how old an outage is at least when its record is first seen
        self._seen: dict[str, tuple[float, float]] = {}  # node id -> (recorded engine_down_at, monotonic)
        self._copies: dict[str, tuple[Node, Node]] = {}  # node id -> (its record, its view)
        self._last: tuple[Mapping[str, Node], Mapping[str, Node]] | None = None  # (input nodes, view)

    def view(self, state: ClusterState, now: float, monotonic: float) -> ClusterState:
        """``state`` with each recorded outage's start moved to when this leader first saw it (on the
        monotonic clock ``monotonic``, expressed at the wall time ``now``); ``state`` itself when there
        is none."""
        down = {n.node_id: n for n in state.nodes.values() if n.engine_down_at}
        self._seen = {k: v for k, v in self._seen.items() if k in down and down[k].engine_down_at == v[0]}
        if not down:
            self._copies, self._last = {}, None
            return state
        copies: dict[str, tuple[Node, Node]] = {}
        for node_id, record in down.items():
            first = self._seen.setdefault(node_id, (record.engine_down_at, monotonic - self.credit_s))[1]
            since = max(now - (monotonic - first), 1e-9)  # > 0: zero means reachable
            last = self._copies.get(node_id)
            if last is not None and last[0] is record and abs(last[1].engine_down_at - since) < STEP_S:
                copies[node_id] = last
            else:
                copies[node_id] = (record, replace(record, engine_down_at=since))
        same = self._last is not None and self._last[0] is state.nodes
        if not (same and all(self._copies.get(k) is c for k, c in copies.items())):
            nodes = dict(state.nodes)
            nodes.update((node_id, copy) for node_id, (_, copy) in copies.items())
            self._last = (state.nodes, MappingProxyType(nodes))
        self._copies = copies
        assert self._last is not None
        return replace(state, nodes=self._last[1])
