"""What one reconcile decides (pure records): the actions to commit and the events for the caller.

:class:`Reconciliation` is the orchestrator's output: the tasks to create (:class:`CreateTask`) or shut
down (:class:`ShutdownTask`), the rollout events (:class:`UpdateFailed`, :class:`RolloutDone`) and when
to call again. Only records: never decides, never performs I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class CreateTask:
    """Create a task in ``slot``; ``node_id`` is set only when pinned (global mode), else schedule it."""

    task_id: str
    service_id: str
    slot: int
    node_id: str | None
    spec_version: int
    template_hash: str
    created_at: float
    restart_history: tuple[float, ...] = ()
    reason: str = ""
    job_iteration: int = 0


@dataclass(frozen=True, slots=True)
class ShutdownTask:
    """Set a task's desired state to shutdown (its node's agent stops the container)."""

    task_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class UpdateFailed:
    """Tasks of the new template failed during a rollout beyond ``max_failure_ratio``; ``action`` is
    pause or rollback, ``reason`` says which tasks and why.

    The caller persists it (``Service.update_paused=True``, or writes the previous spec for rollback).
    """

    service_id: str
    task_id: str
    action: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RolloutDone:
    """Every slot of a recorded rollout runs the current template past ``monitor``: the caller marks the
    rollout completed (from then on, failures are the restart policy's business, not the update's)."""

    service_id: str
    rollback: bool


Action = CreateTask | ShutdownTask
Event = UpdateFailed | RolloutDone


@dataclass(slots=True)
class Reconciliation:
    """Output of one reconcile: actions to commit, events for the caller, next time to call again
    (``wake_at``, and per service in ``wakes``: the leader's incremental round re-plans a service when
    its own time comes)."""

    actions: list[Action] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    wake_at: float | None = None
    wakes: dict[str, float] = field(default_factory=dict)  # service id -> earliest time it asked for
    service_id: str = ""  # the service being reconciled (its wakes are recorded under it)

    def wake(self, at: float) -> None:
        if self.wake_at is None or at < self.wake_at:
            self.wake_at = at
        mine = self.wakes.get(self.service_id)
        if mine is None or at < mine:
            self.wakes[self.service_id] = at

    @property
    def creates(self) -> list[CreateTask]:
        return [a for a in self.actions if isinstance(a, CreateTask)]

    @property
    def shutdowns(self) -> list[ShutdownTask]:
        return [a for a in self.actions if isinstance(a, ShutdownTask)]
