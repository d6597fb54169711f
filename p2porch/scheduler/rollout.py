"""The update/rollback policy of a rollout in progress (pure).

A **rollout** (``model.Rollout``) is one template change of a service being rolled out: a ``service
update`` (or a secret rotation, a stack deploy) or a rollback, manual or automatic: since when, whether
it is a rollback (then ``policy`` is the ``rollback_config`` to use) and whether it already completed.
:func:`effective_policy` picks the policy that rolls it out; :func:`failure_verdict` decides whether
the tasks that failed within ``monitor`` of their start exceed ``max_failure_ratio``, as Swarm's updater
does. This module never
reads a clock or a store; the leader persists what it returns.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

from ..model import Rollout, Task, TaskState, UpdateConfig

__all__ = [
    "ROLLOUT_FAILURE_STATES",
    "FailureVerdict",
    "Rollout",
    "effective_policy",
    "failed_within_monitor",
    "failure_verdict",
    "settled",
    "started_at",
]

#: observed states of a task that failed (``shutdown`` is a stop p2porch asked for, not a failure)
ROLLOUT_FAILURE_STATES = frozenset({"failed", "rejected"})


@dataclass(frozen=True, slots=True)
class FailureVerdict:
    """Failed keys (slots, or nodes for global services) of this rollout, and whether they trigger the
    failure action; ``reason`` says why in words a user reads in events and ``service inspect``."""

    failed_keys: frozenset[Hashable]
    triggered: bool
    reason: str
    task_id: str = ""  # a failed task named in ``reason``


def effective_policy(update: UpdateConfig, rollback: UpdateConfig, rollout: Rollout | None) -> UpdateConfig:
    """The policy that rolls out the current template: ``update``, or for a rollback the rollout's own
    policy (else the spec's ``rollback``). A rollback never rolls back again: its ``rollback`` failure
    action is a pause."""
    if rollout is None or not rollout.rollback:
        return update
    policy = rollout.policy or rollback
    if policy.failure_action == "rollback":
        policy = UpdateConfig(
            parallelism=policy.parallelism,
            delay_s=policy.delay_s,
            order=policy.order,
            failure_action="pause",
            monitor_s=policy.monitor_s,
            max_failure_ratio=policy.max_failure_ratio,
        )
    return policy


def failed_within_monitor(
    state: str, state_at: float, started_at: float | None, healthy: bool | None, now: float, monitor_s: float
) -> bool:
    """A task of the new template failed (or never started), or turned unhealthy, within ``monitor_s`` of
    starting."""
    if state in ROLLOUT_FAILURE_STATES:
        return started_at is None or state_at - started_at < monitor_s
    if healthy is False and started_at is not None:
        return (now if state == "running" else state_at) - started_at < monitor_s
    return False


def failure_verdict(
    failures: Mapping[Hashable, Sequence[tuple[str, str]]], total_keys: int, policy: UpdateConfig
) -> FailureVerdict:
    """``failures`` maps each key (slot or node) with a failed task of this rollout to its failed tasks
    as ``(task id, error)``.
    The failure action fires when the failed share of the ``total_keys`` exceeds ``max_failure_ratio``
    (0 = any failure), unless the action is ``continue``."""
    keys = frozenset(failures)
    total = max(total_keys, 1)
    triggered = (
        bool(keys) and policy.failure_action != "continue" and len(keys) / total > policy.max_failure_ratio
    )
    if not keys:
        return FailureVerdict(keys, False, "")
    first = sorted(failures, key=str)[0]
    task_id, detail = failures[first][-1]
    reason = (
        f"{len(keys)} of {total} tasks failed within the {policy.monitor_s:g}s monitor "
        f"(max failure ratio {policy.max_failure_ratio:g}): task {task_id[:12]} {detail or 'failed'}"
    )
    return FailureVerdict(keys, triggered, reason, task_id)


def started_at(task: Task) -> float | None:
    """When the task was first seen running (falls back to ``state_at`` while it is running)."""
    if task.started_at:
        return task.started_at
    return task.state_at if task.state == TaskState.RUNNING else None


def settled(task: Task, cfg: UpdateConfig, now: float) -> bool:
    """Running, not unhealthy or starting its check, and for ``cfg.monitor_s`` since it started."""
    started = started_at(task)
    return (
        task.state == TaskState.RUNNING
        and task.healthy is not False
        and not task.health_starting
        and started is not None
        and now >= started + cfg.monitor_s
    )
