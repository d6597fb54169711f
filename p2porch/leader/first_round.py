"""Which services a new leader's first round must plan: those a full reconcile may decide anything for (pure).

A new leader knows nothing of what the last one planned, so its first round planned every service: 1.1-1.4
CPU-s at 100,000 tasks, most of it the orchestrator confirming slot by slot that settled services need
nothing, and a service created meanwhile was placed only by the round after it (issue 19: new work placed
3.8-4.8 s after a failover). :class:`SteadyCheck` tells from a service's record and tasks, in one cheap pass,
that a full reconcile decides nothing for it: a replicated service, no job, no rebalance, no rollout under
way, every slot from 1 to ``replicas`` held by exactly one task that should run and runs, healthy or
unchecked, of the current template, not moving, on a node that is ready, not drained and meets the
constraints; and no finished task the round would forget (on a node gone, or beyond the history kept
per slot). It also gives the time such a service asks to run again (its tasks' update monitor, as
``Orchestrator._rolling_update`` asks it), so the round's wake times equal a full round's. Everything else
is planned. The check may call a service unsteady that is not (it then costs a plan, nothing else), never
the reverse: ``tests/unit/leader/test_leader_first_round.py`` compares first rounds with full rounds on
random states. It never reads a clock and never writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..model import TERMINAL_STATES, Availability, DesiredState, Node, NodeStatus, Service, Task, TaskState
from ..model.states import TaskHealth
from ..scheduler import NodeInfo
from ..scheduler.filters import constraint_matches
from ..scheduler.rollout import effective_policy, failed_within_monitor
from .scheduling import HISTORY_PER_SLOT

__all__ = ["SteadyCheck"]

_SETTLED_HEALTH = (TaskHealth.NONE, TaskHealth.HEALTHY)


class SteadyCheck:
    """Answers :meth:`steady` for the services of one state at ``now``; owns the node lookups of that
    state (built once per round)."""

    def __init__(self, nodes: Mapping[str, Node], now: float) -> None:
        self.nodes = nodes
        self.now = now
        self.ok = {
            n.node_id
            for n in nodes.values()
            if n.status == NodeStatus.READY and n.availability != Availability.DRAIN and not n.engine_down_at
        }
        self._infos: dict[str, NodeInfo] = {}

    def steady(self, service: Service | None, tasks: Iterable[Task]) -> tuple[bool, float | None]:
        """Whether a full reconcile of ``service`` with ``tasks`` (all of its tasks) decides nothing, and
        when it asks to run again (None: never) if so. A removed or invalid service is never steady (a
        round forgets their finished tasks)."""
        if service is None or service.invalid:
            return False, None
        spec = service.spec
        if spec.mode != "replicated" or spec.rebalance or service.rebalance_requested:
            return False, None  # a job, a global service (every node's business), a rebalance
        if service.rollout is not None and not service.rollout.completed:
            return False, None
        current = spec.template_hash()
        monitor_s = effective_policy(spec.update, spec.rollback, service.rollout).monitor_s
        ok, nodes, now = self.ok, self.nodes, self.now
        constraints = spec.constraints
        slots: set[int] = set()
        finished: dict[int, int] = {}  # slot -> finished tasks the round may forget
        wake: float | None = None
        for t in tasks:
            if t.desired_state == DesiredState.RUNNING:
                if (
                    t.state != TaskState.RUNNING
                    or t.template_hash != current
                    or t.move_to is not None
                    or t.health not in _SETTLED_HEALTH
                    or t.node_id not in ok
                    or t.slot in slots
                    or (constraints and not self._satisfies(t.node_id, spec.constraints))
                ):
                    return False, None
                slots.add(t.slot)
                started = t.started_at or t.state_at
                if started + monitor_s > now:  # not settled yet: the rolling update's wake
                    wake = started + monitor_s if wake is None else min(wake, started + monitor_s)
                continue
            if t.template_hash == current and failed_within_monitor(
                t.state,
                t.state_at,
                t.started_at or (t.state_at if t.state == TaskState.RUNNING else None),
                t.healthy,
                now,
                monitor_s,
            ):
                return False, None  # a failure of this template counts for the rollout's verdict
            if t.node_id is not None and (
                t.node_id not in nodes or nodes[t.node_id].status == NodeStatus.LEFT
            ):
                return False, None  # forgotten with its node
            if t.state in TERMINAL_STATES or t.node_id is None:
                count = finished[t.slot] = finished.get(t.slot, 0) + 1
                if count > HISTORY_PER_SLOT:
                    return False, None  # history beyond what is kept per slot: forgotten
        if len(slots) != spec.replicas or (slots and (min(slots) < 1 or max(slots) > spec.replicas)):
            return False, None
        return True, wake

    def _satisfies(self, node_id: str | None, constraints: Iterable[object]) -> bool:
        info = self._infos.get(node_id or "")
        if info is None:
            node = self.nodes.get(node_id or "")
            if node is None:
                return True
            info = self._infos[node.node_id] = NodeInfo.from_node(node)
        return all(constraint_matches(info, c) for c in constraints)  # type: ignore[arg-type]
