"""The restart policy's decisions for a slot whose task ended or failed its health check (pure).

When the replacement is due (:func:`restart_due`): the back-off delay after the task's end, and with
``max_attempts`` within a ``window``, once the window holds fewer restarts than that. A task that fails
its health check counts as failed, as Swarm's restart supervisor counts it (under ``any`` and
``on-failure``, with the delay and the window's attempts): the orchestrator stops it at once and its
slot waits for :func:`restart_due` (:func:`awaiting_restart` finds such slots: their newest task was
stopped unhealthy, no task of theirs is desired running).

Swarm sets a task's desired state to ``shutdown`` once it will not be restarted (``service ps`` shows
``Shutdown  Failed``), and never starts its slot again until the spec changes. The orchestrator does the
same: :func:`final_reason` says why the latest task of a slot will not be restarted (the reason its
shutdown records), and :func:`given_up` finds the slots (replicated) or nodes (global) whose newest task
was shut down for that reason, so that they are not created again as missing ones.

Whatever the task's template: an outdated task (a rollout running, paused or failed) that fails its
health check or ends for good is held the same way, so that only the rolling update, within its budget
and never while paused, or the restart policy's delay brings its slot the current template (swarmkit's
restart supervisor restarts with the current spec after the delay; its updater may start it sooner).

Only a task that ended by itself (complete, failed, rejected) or that the orchestrator stopped for
failing its health check (its shutdown reason says so: :func:`stopped_unhealthy`; Swarm counts it as
failed) can end its slot, and a ``window`` that can still move on cannot: such a slot waits for its
window (docs/scheduler.md). Owns no state and never reads a clock: every decision takes ``now``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from ..model import NOT_RESTARTED, DesiredState, RestartPolicy, ServiceSpec, Task, TaskState

#: how a task ends by itself; SHUTDOWN and ORPHANED are the cluster's doing (scale down, a lost node)
_ENDED_BY_ITSELF = frozenset({TaskState.COMPLETE, TaskState.FAILED, TaskState.REJECTED})


#: restarts of a slot within this many seconds before a failure raise the back-off exponent
BACKOFF_WINDOW_S = 600.0
#: restart times a slot's tasks carry at least (more when ``max_attempts`` is larger)
HISTORY_KEEP = 64

#: the shutdown reason of a task stopped for failing its health check and replaced
UNHEALTHY = "unhealthy"
#: how the shutdown reason of a task stopped for failing its health check and not replaced begins
_UNHEALTHY_FINAL = f"{NOT_RESTARTED}{UNHEALTHY}; "


def policy_of(task: Task, spec: ServiceSpec) -> RestartPolicy:
    """The restart policy that decides for ``task``: an outdated task's own (the policy of the spec it
    was created with, as swarmkit's restart supervisor reads the task's spec); a task of the current
    template (or one created before tasks carried a policy) the service's, since a restart-policy change
    rolls no task here (Swarm's replaces them with tasks of the new policy)."""
    own = task.restart_policy
    if own is None or task.template_hash == spec.template_hash():
        return spec.restart
    return own


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


def restart_due(policy: RestartPolicy, last: Task, now: float, *, drained: bool = False) -> float:
    """When the slot whose latest task ``last`` ended (or was stopped unhealthy) may get its replacement:
    ``delay * 2**n`` (at most ``max_delay``) after ``last.state_at``, n = the slot's restarts in the
    ``BACKOFF_WINDOW_S`` before it, no delay when ``last``'s node is ``drained`` (the replacement goes
    elsewhere: swarmkit's restart supervisor applies no delay on a drained node); with ``max_attempts``
    and a ``window``, not before the window at ``now`` holds fewer than ``max_attempts`` restarts (when
    enough of those in it have left it). Due when ``now`` is at or past it; the caller has ruled out a
    final end (:func:`final_reason`)."""
    history = last.restart_history
    recent = sum(1 for h in history if h > last.state_at - BACKOFF_WINDOW_S)
    due = last.state_at + (0.0 if drained else policy.backoff_s(recent))
    if policy.max_attempts and policy.window_s > 0:
        counted = sorted(h for h in history if h > now - policy.window_s)
        if len(counted) >= policy.max_attempts:
            due = max(due, counted[-policy.max_attempts] + policy.window_s)
    return due


def next_history(policy: RestartPolicy, last: Task, now: float) -> tuple[float, ...]:
    """The restart history the replacement of ``last`` made at ``now`` carries (the newest kept)."""
    return (*last.restart_history, now)[-max(HISTORY_KEEP, policy.max_attempts) :]


def given_up(spec: ServiceSpec, history: Iterable[Task], by: str, wanted: Collection[Any]) -> dict[Any, Task]:
    """Of the keys in ``wanted`` (slots, or node ids: ``by`` names the task's field) that have no task
    desired running, those whose newest task was shut down as :func:`final_reason` says: key -> that
    task (an outdated one is the rolling update's to replace)."""
    return {
        key: t
        for key, t in _newest_stopped(history, by, wanted).items()
        if final_reason(policy_of(t, spec), t)
    }


def awaiting_restart(
    spec: ServiceSpec, history: Iterable[Task], by: str, wanted: Collection[Any]
) -> dict[Any, Task]:
    """Of the keys in ``wanted`` that have no task desired running, those whose newest task was stopped
    for failing its health check, not for good: key -> that task, whose replacement :func:`restart_due`
    times, of whatever template (an outdated one's slot may be taken sooner by the rolling update)."""
    return {
        key: t
        for key, t in _newest_stopped(history, by, wanted).items()
        if stopped_unhealthy(t) and not final_reason(policy_of(t, spec), t)
    }


def _newest_stopped(history: Iterable[Task], by: str, wanted: Collection[Any]) -> dict[Any, Task]:
    """key -> its newest task when that one is desired ``shutdown``."""
    if not wanted:
        return {}
    newest: dict[Any, Task] = {}
    for t in history:
        key = getattr(t, by)
        if key in wanted and (key not in newest or _order(t) > _order(newest[key])):
            newest[key] = t
    return {key: t for key, t in newest.items() if t.desired_state == DesiredState.SHUTDOWN}


def _order(t: Task) -> tuple[float, str]:
    return (t.created_at, t.task_id)
