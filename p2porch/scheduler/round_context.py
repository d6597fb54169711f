"""Per-reconcile lookups the orchestrator's decisions share: node views and where a task's node stands.

:class:`RoundContext` is built once per ``Orchestrator.reconcile`` from the nodes and ``now``; it caches
each node's fate for the round, records the wakes its answers imply in the round's
:class:`~.actions.Reconciliation`, and remembers the slots given a new task. It never reads a clock and
never decides an action.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..model import Availability, Node, NodeStatus, ServiceSpec, Task
from .actions import Reconciliation
from .filters import SUBPATH_ENGINE, constraint_matches, engine_rejection, uses_subpath
from .nodeinfo import NodeInfo
from .sites import SiteVerdict, site_verdict


class RoundContext:
    """Per-reconcile lookups: node views and where a task's node stands."""

    def __init__(
        self,
        nodes: Sequence[Node],
        now: float,
        down_grace_s: float,
        out: Reconciliation,
        site_grace_s: float,
        engine_grace_s: float = 10.0,
    ) -> None:
        self.nodes = {n.node_id: n for n in nodes}
        self.infos = {n.node_id: NodeInfo.from_node(n) for n in nodes}
        self.now = now
        self.grace = down_grace_s
        self.engine_grace = engine_grace_s
        self.site_grace = site_grace_s
        self.out = out
        self.sites: dict[str, SiteVerdict] = {}  # down node id -> its site verdict
        self.created: set[tuple[str, int]] = set()  # (service id, slot) given a new task this round
        self.history: dict[str, list[Task]] = {}  # every task of a service, shut down ones included
        # of the service being reconciled, per key (slot, or node id when global): keys replaced
        # stop-first (the task told to stop has not stopped yet, stop_wait.py, or its replacement was
        # created this round), and the newest task told to stop
        self.held: set[Any] = set()
        self.stopped: dict[Any, Task] = {}
        # of the replicated service being reconciled: ids of its tasks beyond max_replicas_per_node on
        # their node (the newest there), which are moved start-first as off-constraint ones are
        self.crowded: set[str] = set()
        # of the replicated service being reconciled: slots whose task is off its constraints, which the
        # rolling update replaces by the update config (Swarm's dirty task), never moved start-first here
        self.off_constraints: set[int] = set()
        # node_fate per node id: fixed for the round (nodes and now are), except "grace", never kept
        # here since it wakes the service asking (issue 19: ~3 calls per task of a full round)
        self._fates: dict[str | None, str] = {}

    def node_name(self, node_id: str | None) -> str:
        """The node's name for a message `service ps` shows (its id when the round does not know it)."""
        node = self.nodes.get(node_id or "")
        return node.name if node is not None else str(node_id)

    def node_fate(self, node_id: str | None) -> str:
        """ok | unassigned | lost | grace | drain (availability drain) for a task's node."""
        fate = self._fates.get(node_id)
        if fate is None:
            fate = self._node_fate(node_id)
            if fate != "grace":
                self._fates[node_id] = fate
        return fate

    def _node_fate(self, node_id: str | None) -> str:
        if node_id is None:
            return "unassigned"
        node = self.nodes.get(node_id)
        if node is None or node.status == NodeStatus.LEFT:
            return "lost"
        if node.status != NodeStatus.READY:
            if node.down_since is None or node.down_since + self.grace <= self.now:
                return "lost"
            self.out.wake(node.down_since + self.grace)
            return "grace"
        if node.engine_down_at:  # its containers may still serve, but their health is no longer known
            if node.engine_down_at + self.engine_grace <= self.now:
                return "lost"
            self.out.wake(node.engine_down_at + self.engine_grace)
            return "grace"
        if node.availability == Availability.DRAIN:
            return "drain"
        return "ok"

    def lost_reason(self, node_id: str | None) -> str:
        """Why a ``lost`` task's node lost it: its engine stayed unreachable, or the node is down."""
        node = self.nodes.get(node_id or "")
        engine_down = node is not None and node.status == NodeStatus.READY and bool(node.engine_down_at)
        return "node engine unreachable" if engine_down else "node down"

    def fate(self, node_id: str | None, spec: ServiceSpec) -> str:
        """:meth:`node_fate` for a task of ``spec``: a down node of a lost site is ``cut`` (its tasks are
        left alone) when the service keeps them (``on_site_loss``), ``grace`` while its site may follow."""
        fate = self.node_fate(node_id)
        if fate != "lost" and fate != "grace":
            return fate
        node = self.nodes.get(node_id or "")
        if spec.on_site_loss != "keep" or node is None:
            return fate
        verdict = self.sites.get(node.node_id)
        if verdict is None:
            verdict = self.sites[node.node_id] = site_verdict(
                node, self.nodes.values(), self.now, self.site_grace
            )
        if verdict.wake_at is not None:
            self.out.wake(verdict.wake_at)  # every service that asks wakes with it, not only the first
        return {"cut": "cut", "wait": "grace"}.get(verdict.kind, fate)

    def satisfies(self, node_id: str | None, spec: ServiceSpec) -> bool:
        """Whether the node meets the spec's constraints and runs its engine features (a global
        service's volume ``subpath`` gets no task on an engine older than Docker 26.0)."""
        info = self.infos.get(node_id or "")
        if info is None:
            return True
        if info.engine_version and uses_subpath(spec) and engine_rejection(info, SUBPATH_ENGINE):
            return False
        return all(constraint_matches(info, c) for c in spec.constraints)
