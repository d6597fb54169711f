"""When a stop-first replacement may start: once the task it replaces has stopped (pure).

Swarm creates a stop-first replacement in a state its agent does not start and starts it once the old
task is past running, or the old task's node is down or gone, or a timeout passed (swarmkit's
``restart.Supervisor.DelayStart`` with ``waitStop``, 1 minute); it does the same for the replacement of
a task that was stopped while still running (a restart). Here the replacement is simply not created
until then: the old task's committed record (desired ``shutdown``, observed state not terminal, on a
node that is up) is what holds its slot, so a new leader finishes the wait from the committed state.

:class:`StopWait` owns the one thing the committed state does not hold: when this leader first saw each
stopping task. The bound is that time plus the task's stop grace period plus :data:`STOP_REPORT_MARGIN_S`
(a new leader counts it again from its first round: it may wait longer, never shorter). It never reads
a clock and never decides an action.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..model import TERMINAL_STATES, DesiredState, Task

__all__ = ["STOP_REPORT_MARGIN_S", "StopWait", "is_stopping", "may_run", "stop_bound"]

#: past the old task's stop grace period (after which its agent kills it), how long its agent's report
#: of the stop may take before the replacement starts anyway: the kill, the container's removal and the
#: report on a loaded node take seconds; 30 s more keeps a hung agent (its node still alive in gossip)
#: from blocking the slot forever. With the default 10 s grace that is 40 s (Swarm: a flat 60 s, which
#: starts the replacement before the kill of an old task whose grace period is longer).
STOP_REPORT_MARGIN_S = 30.0


def stop_bound(task: Task, since: float) -> float:
    """When the replacement of ``task``, stopping since ``since``, starts without a report of its stop."""
    return since + task.stop_grace_s + STOP_REPORT_MARGIN_S


def may_run(task: Task, node_fate: str) -> bool:
    """``task``'s container may be running: not reported stopped, on a node that is up (``node_fate``
    ``ok`` or ``drain``: a down, lost or gone node's task no longer holds anything)."""
    return task.state not in TERMINAL_STATES and task.node_id is not None and node_fate in ("ok", "drain")


def is_stopping(task: Task, node_fate: str) -> bool:
    """``task`` was told to stop and may still run (:func:`may_run`)."""
    return task.desired_state == DesiredState.SHUTDOWN and may_run(task, node_fate)


class StopWait:
    """When this leader first saw each stopping task, per service; entries of tasks no longer stopping
    are dropped each time their service is reconciled."""

    def __init__(self) -> None:
        self._seen: dict[str, dict[str, float]] = {}  # service id -> task id -> first seen

    def holds(self, service_id: str, stopping: Sequence[Task], now: float) -> dict[str, float]:
        """Task id -> the time the replacement of each of ``stopping`` (the service's stopping tasks)
        starts even without a report of its stop; forgets the service's other tasks."""
        before = self._seen.pop(service_id, {})
        seen = {t.task_id: before.get(t.task_id, now) for t in stopping}
        if seen:
            self._seen[service_id] = seen
        return {t.task_id: stop_bound(t, seen[t.task_id]) for t in stopping}
