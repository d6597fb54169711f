"""When a stop-first replacement may start: once the task it replaces has stopped (pure).

Swarm creates a stop-first replacement in a state its agent does not start and starts it once the old
task is past running, or the old task's node is down or gone, or a timeout passed (swarmkit's
``restart.Supervisor.DelayStart`` with ``waitStop``, 1 minute); it does the same for the replacement of
a task that was stopped while still running (a restart). Here the replacement is simply not created
until then: the old task's committed record (desired ``shutdown``, observed state not terminal, on a
node that is up) is what holds its slot, so a new leader finishes the wait from the committed state.
The leader's stop write sets the task's ``state_at`` (leader/scheduling.py), from which the bound
counts. Nothing here reads a clock or decides an action.
"""

from __future__ import annotations

from ..model import TERMINAL_STATES, DesiredState, Task

__all__ = ["STOP_REPORT_MARGIN_S", "is_stopping", "may_run", "stop_bound"]

#: past the old task's stop grace period (after which its agent kills it), how long its agent's report
#: of the stop may take before the replacement starts anyway: the kill, the container's removal and the
#: report on a loaded node take seconds; 30 s more keeps a hung agent (its node still alive in gossip)
#: from blocking the slot forever. With the default 10 s grace that is 40 s (Swarm: a flat 60 s, which
#: starts the replacement before the kill of an old task whose grace period is longer).
STOP_REPORT_MARGIN_S = 30.0


def stop_bound(task: Task, since: float) -> float:
    """When the replacement of ``task``, told to stop at ``since``, starts without a report of its stop."""
    return since + task.stop_grace_s + STOP_REPORT_MARGIN_S


def may_run(task: Task, node_fate: str) -> bool:
    """``task``'s container may be running: not reported stopped, on a node that is up (``node_fate``
    ``ok`` or ``drain``: a down, lost or gone node's task no longer holds anything)."""
    return task.state not in TERMINAL_STATES and task.node_id is not None and node_fate in ("ok", "drain")


def is_stopping(task: Task, node_fate: str) -> bool:
    """``task`` was told to stop and may still run (:func:`may_run`)."""
    return task.desired_state == DesiredState.SHUTDOWN and may_run(task, node_fate)
