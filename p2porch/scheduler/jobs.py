"""The job controller: which tasks a job (replicated-job, global-job) starts, retries and stops (pure).

A job runs tasks to completion. ``plan_job`` looks at every task of one job service (finished ones too)
and decides, for the current execution (``iteration``): a replicated-job completes each slot 1..replicas
exactly once, with at most ``job_concurrency`` tasks at once; a global-job completes once on each
eligible node, including nodes that join later (as Swarm does). A task that exits 0 is ``complete`` and
is never started again; a failed one is retried under the restart policy (condition none: never;
max_attempts within window; back-off delay). Tasks of earlier executions are stopped, except under the
cron concurrency policy ``allow``, where running ones finish (never retried). It never performs I/O,
never reads a clock and never creates task ids (the orchestrator turns the plan into actions).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..model import FAILURE_STATES, NOT_RESTARTED, TERMINAL_STATES, ServiceSpec

#: finished tasks of one slot of the current execution kept for ``service ps`` (plus the complete one)
JOB_HISTORY_PER_SLOT = 3


class JobTask(Protocol):
    """What the controller reads of a task (the orchestrator's ``Task`` has all of it)."""

    @property
    def task_id(self) -> str: ...
    @property
    def slot(self) -> int: ...
    @property
    def node_id(self) -> str | None: ...
    @property
    def desired_state(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def state_at(self) -> float: ...
    @property
    def created_at(self) -> float: ...
    @property
    def restart_history(self) -> tuple[float, ...]: ...
    @property
    def job_iteration(self) -> int: ...


@dataclass(frozen=True, slots=True)
class JobCreate:
    """Start a task for ``slot`` (pinned to ``node_id`` for a global-job)."""

    slot: int
    node_id: str | None
    reason: str
    restart_history: tuple[float, ...] = ()


@dataclass(slots=True)
class JobPlan:
    """What one round does for a job: tasks to start, tasks to stop (id, reason), when to look again."""

    creates: list[JobCreate] = field(default_factory=list)
    shutdowns: list[tuple[str, str]] = field(default_factory=list)
    wake_at: float | None = None

    def wake(self, at: float) -> None:
        if self.wake_at is None or at < self.wake_at:
            self.wake_at = at


@dataclass(frozen=True, slots=True)
class JobProgress:
    """Where the current execution stands: slots complete, tasks live, slots failed for good, total; and
    Swarm's counts (``docker service ls``: ``tasks_running/tasks_desired (completed/total completed)``):
    tasks in state running, and the tasks wanted at once (a replicated-job's concurrency, a global-job's
    tasks not complete yet)."""

    completed: int
    running: int
    failed: int
    total: int
    tasks_running: int = 0
    tasks_desired: int = 0

    @property
    def finished(self) -> bool:
        """Nothing of the execution runs or waits to run any more."""
        return self.running == 0 and self.completed + self.failed >= self.total


def _live(t: JobTask) -> bool:
    return t.desired_state == "running" and t.state not in TERMINAL_STATES


def shown_desired_state(t: JobTask) -> str:
    """A job task's desired state as Swarm shows it (``docker service ps``): ``complete`` (its tasks are
    meant to run to completion, and one that did stays so), ``shutdown`` for one told to stop before it
    completed (a new execution, its node drained or lost, a retry given up). The task's record keeps
    ``running``/``shutdown``: the agent and the scheduler read that, never this."""
    if t.desired_state == "running" or t.state == "complete":
        return "complete"
    return "shutdown"


def _latest(tasks: Sequence[JobTask]) -> JobTask:
    return max(tasks, key=lambda t: (t.created_at, t.state_at, t.task_id))


def _attempts(history: tuple[float, ...], window_s: float, now: float) -> int:
    return sum(1 for h in history if window_s <= 0 or h > now - window_s)


def gave_up(spec: ServiceSpec, last: JobTask, now: float) -> bool:
    """The restart policy retries ``last`` (the newest ended task of a slot) no more."""
    if last.state not in FAILURE_STATES:
        return False  # lost with its node (never reported ending): replaced, not counted
    policy = spec.restart
    if policy.condition == "none":
        return True
    return bool(
        policy.max_attempts and _attempts(last.restart_history, policy.window_s, now) >= policy.max_attempts
    )


def gave_up_reason(spec: ServiceSpec) -> str:
    """The stop message of a slot's task the restart policy gave up on: ``not restarted: ...`` when no
    later time restarts it (condition none, ``max_attempts`` without a window: what ``stack deploy``'s
    ``depends_on`` reads as final); with a window the slot restarts once the window holds fewer."""
    policy = spec.restart
    if policy.condition == "none":
        return f"{NOT_RESTARTED}restart condition none"
    if policy.window_s <= 0:
        return f"{NOT_RESTARTED}{policy.max_attempts} restart attempts used (restart max attempts)"
    return "failed: no more restart attempts"


def plan_job(
    spec: ServiceSpec,
    iteration: int,
    tasks: Sequence[JobTask],
    node_fate: Callable[[str | None], str],
    eligible_nodes: Sequence[str],
    now: float,
) -> JobPlan:
    """The decisions for one job service; ``node_fate`` is the orchestrator's (ok | unassigned | grace |
    drain | lost) and ``eligible_nodes`` the nodes a global-job task may run on, sorted."""
    plan = JobPlan()
    keep_old = spec.schedule is not None and spec.schedule.concurrency == "allow"
    current: dict[int, list[JobTask]] = {}
    for t in tasks:
        if t.job_iteration == iteration and iteration > 0:
            current.setdefault(t.slot, []).append(t)
        elif t.desired_state == "running":
            if t.state in TERMINAL_STATES:
                plan.shutdowns.append((t.task_id, "execution over"))
            elif not keep_old or node_fate(t.node_id) == "lost":
                plan.shutdowns.append((t.task_id, f"execution {iteration} replaces it"))
    if iteration <= 0:
        return plan
    if spec.mode == "global-job":
        _plan_global(spec, current, node_fate, eligible_nodes, now, plan)
    else:
        _plan_replicated(spec, current, node_fate, now, plan)
    return plan


def _settle_slot(
    slot_tasks: list[JobTask], node_fate: Callable[[str | None], str], plan: JobPlan, *, pinned: bool
) -> tuple[bool, list[JobTask], list[JobTask]]:
    """(slot complete, its live tasks, its ended tasks); stops what must stop."""
    done = any(t.state == "complete" for t in slot_tasks)
    live: list[JobTask] = []
    ended: list[JobTask] = []
    for t in slot_tasks:
        fate = node_fate(t.node_id)
        if _live(t):
            if done:
                plan.shutdowns.append((t.task_id, "slot already complete"))
            elif fate == "lost" or (fate == "drain" and not pinned):
                why = "down" if fate == "lost" else "drained"
                plan.shutdowns.append((t.task_id, f"node {why}"))  # service ps names the node
                ended.append(t)
            else:
                live.append(t)
            continue
        if t.desired_state == "running":  # ended, still desired running
            if t.state == "complete":
                plan.shutdowns.append((t.task_id, "job task done"))
            elif done:
                plan.shutdowns.append((t.task_id, "superseded"))
        ended.append(t)
    return done, live, ended


def _next_attempt(
    spec: ServiceSpec, slot: int, pin: str | None, ended: list[JobTask], now: float, plan: JobPlan
) -> bool | None:
    """Start the next task of a slot with nothing live: True if started, False if it must wait (back-off
    or no budget: the caller decides), None if the slot failed for good."""
    if not ended:
        plan.creates.append(JobCreate(slot, pin, "job task"))
        return True
    last = _latest(ended)
    if gave_up(spec, last, now):
        if last.desired_state == "running":
            plan.shutdowns.append((last.task_id, gave_up_reason(spec)))
        policy = spec.restart
        if policy.condition != "none" and policy.max_attempts and policy.window_s > 0:
            # the window holds fewer attempts once its max_attempts-th newest leaves it: look again then
            # (as restart.restart_due does for services), not at the next full round
            counted = sorted(h for h in last.restart_history if h > now - policy.window_s)
            plan.wake(counted[-policy.max_attempts] + policy.window_s)
        return None
    if last.state not in FAILURE_STATES:  # lost with its node: replace at once, not counted
        plan.creates.append(JobCreate(slot, pin, "replace lost task", last.restart_history))
        return True
    history = last.restart_history
    due = last.state_at + spec.restart.backoff_s(len(history))
    if now < due:
        plan.wake(due)
        return False
    if last.desired_state == "running":
        plan.shutdowns.append((last.task_id, f"restart after {last.state}"))
    plan.creates.append(JobCreate(slot, pin, f"restart after {last.state}", (*history, now)[-64:]))
    return True


def _plan_replicated(
    spec: ServiceSpec,
    current: dict[int, list[JobTask]],
    node_fate: Callable[[str | None], str],
    now: float,
    plan: JobPlan,
) -> None:
    for slot in sorted(current):
        if slot > spec.replicas or slot < 1:
            plan.shutdowns.extend((t.task_id, "scale down") for t in current[slot] if _live(t))
    waiting: list[tuple[int, list[JobTask]]] = []
    # tasks told to stop whose node has not stopped them yet still count: never more than M at once
    running = sum(
        1
        for slot_tasks in current.values()
        for t in slot_tasks
        if t.desired_state != "running"
        and t.state not in TERMINAL_STATES
        and node_fate(t.node_id) != "lost"
        and t.node_id is not None
    )
    for slot in range(1, spec.replicas + 1):
        done, live, ended = _settle_slot(current.get(slot, []), node_fate, plan, pinned=False)
        if done:
            continue
        if live:
            running += 1
            plan.shutdowns.extend((t.task_id, "superseded") for t in live[1:])
            continue
        waiting.append((slot, ended))
    budget = spec.job_concurrency - running
    for slot, ended in waiting:
        if budget <= 0:
            break
        if _next_attempt(spec, slot, None, ended, now, plan):
            budget -= 1


def _plan_global(
    spec: ServiceSpec,
    current: dict[int, list[JobTask]],
    node_fate: Callable[[str | None], str],
    eligible_nodes: Sequence[str],
    now: float,
    plan: JobPlan,
) -> None:
    by_node: dict[str, list[JobTask]] = {}
    for slot_tasks in current.values():
        for t in slot_tasks:
            by_node.setdefault(t.node_id or "", []).append(t)
    eligible = set(eligible_nodes)
    used_slots = set(current)
    for node_id in sorted(by_node):
        if node_id in eligible:
            continue
        for t in by_node[node_id]:  # a paused node's task runs on; a drained or lost node's stops
            fate = node_fate(t.node_id or None)
            if _live(t) and fate in ("lost", "drain"):
                plan.shutdowns.append((t.task_id, "node drained" if fate == "drain" else "node down"))
    next_slot = 1
    for node_id in eligible_nodes:
        node_tasks = by_node.get(node_id, [])
        done, live, ended = _settle_slot(node_tasks, node_fate, plan, pinned=True)
        if done or live:
            plan.shutdowns.extend((t.task_id, "superseded") for t in live[1:])
            continue
        if node_tasks:
            slot = node_tasks[0].slot
        else:
            while next_slot in used_slots:
                next_slot += 1
            slot = next_slot
            used_slots.add(slot)
        _next_attempt(spec, slot, node_id, ended, now, plan)


def job_progress(spec: ServiceSpec, iteration: int, tasks: Sequence[JobTask], now: float) -> JobProgress:
    """Progress of the current execution, for ``service ls`` and the cron policy ``forbid``."""
    slots: dict[int, list[JobTask]] = {}
    for t in tasks:
        if t.job_iteration == iteration and iteration > 0:
            slots.setdefault(t.slot, []).append(t)
    completed = failed = running = in_running_state = 0
    for slot_tasks in slots.values():
        in_running_state += sum(1 for t in slot_tasks if t.state == "running")
        if any(t.state == "complete" for t in slot_tasks):
            completed += 1
            continue
        live = [t for t in slot_tasks if _live(t)]
        if live:
            running += len(live)
        elif gave_up(spec, _latest(slot_tasks), now):
            failed += 1
    if iteration <= 0:
        total = desired = 0
    elif spec.mode == "global-job":
        total, desired = len(slots), running
    else:
        total, desired = spec.replicas, spec.job_concurrency
    return JobProgress(
        completed=completed,
        running=running,
        failed=failed,
        total=total,
        tasks_running=in_running_state,
        tasks_desired=desired,
    )


def job_history_keep(spec: ServiceSpec, iteration: int, tasks: Sequence[JobTask]) -> set[str]:
    """Ids of a job's finished tasks worth keeping: per slot of the current execution its complete task
    and the newest JOB_HISTORY_PER_SLOT others; every task of the ``history_limit`` executions before."""
    limit = spec.schedule.history_limit if spec.schedule is not None else 1
    keep: set[str] = set()
    current: dict[int, list[JobTask]] = {}
    for t in tasks:
        if t.job_iteration == iteration:
            current.setdefault(t.slot, []).append(t)
        elif iteration - limit <= t.job_iteration < iteration:
            keep.add(t.task_id)
    for slot_tasks in current.values():
        newest = sorted(slot_tasks, key=lambda t: (t.created_at, t.state_at, t.task_id), reverse=True)
        keep.update(t.task_id for t in newest[:JOB_HISTORY_PER_SLOT])
        keep.update(t.task_id for t in slot_tasks if t.state == "complete")
    return keep
