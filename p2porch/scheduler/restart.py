"""When a service's slot is over for good under its restart policy (pure).

Swarm sets a task's desired state to ``shutdown`` once it will not be restarted (``service ps`` shows
``Shutdown  Failed``), and never starts its slot again until the spec changes. The orchestrator does the
same: :func:`final_reason` says why the latest task of a slot will not be restarted (the reason its
shutdown records), and :func:`given_up` finds the slots (replicated) or nodes (global) whose newest task
was shut down for that reason, so that they are not created again as missing ones.

Only a task that ended by itself (complete, failed, rejected) or that the orchestrator stopped for
failing its health check (its shutdown reason says so: :func:`stopped_unhealthy`; Swarm counts it as
failed) can end its slot, and a ``window`` that can still move on cannot: such a slot waits, desired
``running``, for its window (docs/scheduler.md). Owns no state and never reads a clock.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from ..model import NOT_RESTARTED, DesiredState, RestartPolicy, ServiceSpec, Task, TaskState

#: how a task ends by itself; SHUTDOWN and ORPHANED are the cluster's doing (scale down, a lost node)
_ENDED_BY_ITSELF = frozenset({TaskState.COMPLETE, TaskState.FAILED, TaskState.REJECTED})


#: the shutdown reason of a task stopped for failing its health check and replaced
UNHEALTHY = "unhealthy"
#: how the shutdown reason of a task stopped for failing its health check and not replaced begins
_UNHEALTHY_FINAL = f"{NOT_RESTARTED}{UNHEALTHY}; "


def stopped_unhealthy(task: Task) -> bool:
    """The orchestrator stopped ``task`` for failing its health check (its shutdown reason says so); the
    agent reports it ``shutdown`` once stopped, and the restart policy takes it as failed."""
    return task.desired_state == DesiredState.SHUTDOWN and (
        task.message == UNHEALTHY or task.message.startswith(_UNHEALTHY_FINAL)
    )


def final_reason(policy: RestartPolicy, task: Task, *, unhealthy: bool = False) -> str:
    """Why ``task``, the latest of its slot, will never be restarted; "" when it may be. ``unhealthy``:
    ``task`` is to be stopped for failing its health check (as :func:`stopped_unhealthy` says after)."""
    unhealthy = unhealthy or stopped_unhealthy(task)
    if task.state not in _ENDED_BY_ITSELF and not unhealthy:
        return ""
    prefix = _UNHEALTHY_FINAL if unhealthy else NOT_RESTARTED
    if policy.condition == "none":
        return prefix + "restart condition none"
    if policy.condition == "on-failure" and task.state == TaskState.COMPLETE and not unhealthy:
        return prefix + "completed (restart condition on-failure)"
    if policy.max_attempts and policy.window_s <= 0 and len(task.restart_history) >= policy.max_attempts:
        return f"{prefix}{policy.max_attempts} restart attempts used (restart max attempts)"
    return ""


def given_up(spec: ServiceSpec, history: Iterable[Task], by: str, wanted: Collection[Any]) -> dict[Any, Task]:
    """Of the keys in ``wanted`` (slots, or node ids: ``by`` names the task's field) that have no task
    desired running, those whose newest task is of the current template and was shut down as
    :func:`final_reason` says: key -> that task."""
    if not wanted:
        return {}
    newest: dict[Any, Task] = {}
    for t in history:
        key = getattr(t, by)
        if key in wanted and (key not in newest or _order(t) > _order(newest[key])):
            newest[key] = t
    current = spec.template_hash()
    return {
        key: t
        for key, t in newest.items()
        if t.desired_state == DesiredState.SHUTDOWN
        and t.template_hash == current
        and final_reason(spec.restart, t)
    }


def _order(t: Task) -> tuple[float, str]:
    return (t.created_at, t.task_id)
