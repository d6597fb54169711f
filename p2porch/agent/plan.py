"""What the node agent must do next, decided from desired and observed state (pure).

``plan_node`` compares the tasks assigned to this node with the containers the engine holds and with
what the agent last reported, and returns the actions to perform (start, stop+remove, remove) and the
task reports to send. Rules it enforces:

- A task's container is created and started at most once: a task whose state is already terminal, or
  whose container vanished after it started, is never started again (the orchestrator replaces
  failed tasks; restart policy is not the agent's).
- A running container of a still-assigned task is adopted (reported, never restarted), e.g. after a
  daemon restart.
- Containers of tasks that are no longer assigned to this node are stopped and removed.
- A container that exited by itself (a job task that completed, a task that crashed) is kept, with its
  logs, while its task is assigned here (the cluster keeps the task's record as history); it goes with
  the record. A container the agent stops itself is removed at once, and so is one that a stop signal
  ended while its task was to shut down (an agent restarted in the middle of that stop: the task is
  shutdown, not failed).
- A task is never reported out of a terminal state.
- A live container that the engine started again after its task was recorded running (restarted
  outside p2porch: by hand, or started again after a dockerd restart) is not adopted: its task failed
  (its process was replaced), it is reported so and its container removed; the orchestrator replaces
  the task per its restart policy.
- A task group's containers go with its main container: a running task whose sidecar stopped, or was
  started again outside p2porch, has failed, its health is the worst of its containers', and a stopped or
  terminal task's sidecars are removed.
- A live container's report is never dated before the engine's start of it: the first ``running`` report
  dates the task's recorded start, so the agent's clock stepped back between the start and that report
  (NTP, by hand) cannot make a healthy container look started after its record.

It never performs I/O, reads clocks or logs.
"""

from __future__ import annotations

import datetime
import re
import signal
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..model import STARTED_STATES, TERMINAL_STATES, DesiredState, TaskHealth, TaskState
from .group_plan import group_failure, group_health
from .model import ObservedContainer, TaskAssignment, TaskReport

_LIVE_STATUSES = frozenset({"running", "paused", "restarting"})
_STATUS_RANK = {
    "running": 0,
    "paused": 0,
    "restarting": 0,
    "created": 1,
    "exited": 2,
    "dead": 2,
    "removing": 3,
}

VANISHED_ERROR = "container no longer exists (removed outside p2porch or lost by the engine)"
#: a live container the engine started this long after the cluster recorded its task running was started
#: again behind p2porch's back (``docker restart``, ``docker start`` after a dockerd restart, a restart
#: policy set by hand): the agent reads its task's first report after the start, so an honest container
#: always started before it
RESTARTED_AFTER_S = 1.0


@dataclass(frozen=True, slots=True)
class StartTask:
    """Create (unless ``container_id`` names an existing, never-started container) and start the task."""

    assignment: TaskAssignment
    container_id: str = ""

    @property
    def task_id(self) -> str:
        return self.assignment.task_id


@dataclass(frozen=True, slots=True)
class RemoveContainer:
    """Stop (SIGTERM, then SIGKILL after ``stop_grace_s``) and remove a container.

    ``report_shutdown``: report the task "shutdown" once the container is gone. ``drain_s``: wait this
    long before SIGTERM (a task that was serving left DNS, and the cluster's ingress/VIP rules, when its
    stop was committed; clients that resolved it just before and requests in flight get that long to
    finish): the node's ``dns.drain_s``, for a task that was running.
    ``drain_index``: a load-balanced task's stop commit; the agent also waits until every live node's
    ingress/VIP rules reflect it (``drain_gate``), however long the fixed wait; then until the
    container (``drain_pid``, its init process) has no open TCP connection on ``drain_ports`` (and, with
    ``drain_listeners``, on any port it listens on: a VIP balances every port), ``agent/tcp_table.py``.
    """

    task_id: str
    container_id: str
    stop_grace_s: float
    reason: str
    report_shutdown: bool = False
    drain_s: float = 0.0
    drain_index: int = 0
    drain_pid: int = 0
    drain_ports: tuple[int, ...] = ()
    drain_listeners: bool = False


Action = StartTask | RemoveContainer
_Emit = Callable[[TaskReport | None, TaskReport | None], None]


@dataclass(frozen=True, slots=True)
class StartOutcome:
    """What happened when the executor tried to start a task.

    ``container`` is the container as inspected after the attempt (None if none was created);
    ``error`` is Docker's error text when pulling, creating or starting failed.
    """

    container: ObservedContainer | None
    error: str = ""


@dataclass(frozen=True, slots=True)
class NodePlan:
    """Actions to run, reports to send, and task ids the agent may forget (no longer assigned)."""

    actions: tuple[Action, ...]
    reports: tuple[TaskReport, ...]
    forget: tuple[str, ...]


def report_from_container(container: ObservedContainer, now: float) -> TaskReport | None:
    """The task state a container shows; None for a created container that never tried to start."""
    if container.status in _LIVE_STATUSES:  # never dated before its start (a clock stepped back)
        now = max(now, container.started_at)
    base = TaskReport(container.task_id, TaskState.RUNNING, now, container_id=container.container_id)

    def make(state: TaskState, **changes: Any) -> TaskReport:
        return replace(base, state=state, **changes)

    status = container.status
    if status in _LIVE_STATUSES:
        return make(TaskState.RUNNING, address=container.address, health=container.health)
    if status == "created":
        if not container.error:
            return None
        return make(TaskState.FAILED, error=container.error, exit_code=container.exit_code)
    if status == "exited":
        code = container.exit_code if container.exit_code is not None else -1
        if code == 0 and not container.error and not container.oom_killed:
            return make(TaskState.COMPLETE, exit_code=0)
        return make(TaskState.FAILED, error=exit_error(container), exit_code=code)
    if status == "dead":
        return make(
            TaskState.FAILED, error=container.error or "container is dead", exit_code=container.exit_code
        )
    return None  # removing: about to disappear, nothing to say


def exit_error(container: ObservedContainer) -> str:
    """Error text for a container that exited: the exit code, OOM kill and Docker's own error."""
    text = f"task exited with code {container.exit_code}"
    if container.oom_killed:
        text += " (killed: out of memory)"
    if container.error:
        text += f": {container.error}"
    return text


def outcome_report(assignment: TaskAssignment, outcome: StartOutcome, now: float) -> TaskReport:
    """The report after a start attempt: failed with Docker's error, or what the container shows."""
    container = outcome.container
    container_id = container.container_id if container else ""
    if outcome.error:
        code = container.exit_code if container and container.exit_code not in (None, 0) else None
        return TaskReport(
            task_id=assignment.task_id,
            state=TaskState.FAILED,
            at=now,
            error=outcome.error,
            container_id=container_id,
            exit_code=code,
        )
    if container is not None:
        report = report_from_container(container, now)
        if report is not None:
            return report
    return TaskReport(
        task_id=assignment.task_id,
        state=TaskState.FAILED,
        at=now,
        container_id=container_id,
        error="container was not started",
    )


def ready_pid(assignment: TaskAssignment, outcome: StartOutcome) -> int:
    """The process whose namespace must listen on ``assignment.ready_ports`` before the started task is
    reported running; 0 when nothing is to wait for (no TCP ingress port, the start failed, the
    container is not live or its pid unknown)."""
    container = outcome.container
    if not assignment.ready_ports or outcome.error or container is None:
        return 0
    return container.pid if container.status in _LIVE_STATUSES else 0


def plan_node(
    node_name: str,
    assignments: Iterable[TaskAssignment],
    observed: Iterable[ObservedContainer],
    known: Mapping[str, TaskReport],
    now: float,
    *,
    busy_tasks: Collection[str] = (),
    busy_containers: Collection[str] = (),
    orphan_grace_s: float = 10.0,
    drain_s: float = 0.0,
) -> NodePlan:
    """Decide actions and reports for one reconcile pass (see the module docstring for the rules).

    ``known`` holds the last report the agent produced per task; ``busy_*`` name tasks and containers
    with an action still in flight, which this pass leaves alone.
    """
    wanted: dict[str, TaskAssignment] = {}
    for assignment in sorted(assignments, key=lambda a: a.task_id):
        if assignment.node_name == node_name:
            wanted[assignment.task_id] = assignment

    by_task: dict[str, list[ObservedContainer]] = {}
    for container in sorted(observed, key=lambda c: c.container_id):
        if container.node_name != node_name or container.container_id in busy_containers:
            continue
        by_task.setdefault(container.task_id, []).append(container)

    actions: list[Action] = []
    reports: list[TaskReport] = []

    def emit(report: TaskReport | None, last: TaskReport | None) -> None:
        if report is not None and not report.same_as(last):
            reports.append(report)

    # Containers of tasks that are not (or no longer) assigned here.
    for task_id, containers in by_task.items():
        if task_id in wanted or task_id in busy_tasks:
            continue
        for container in containers:
            actions.append(
                RemoveContainer(task_id, container.container_id, orphan_grace_s, "task not assigned")
            )

    for task_id, assignment in wanted.items():
        if task_id in busy_tasks:
            continue
        last = known.get(task_id)
        state = _effective_state(assignment, last)
        members = [c for c in by_task.get(task_id, ()) if c.member]
        containers = sorted(
            (c for c in by_task.get(task_id, ()) if not c.member),
            key=lambda c: (_STATUS_RANK.get(c.status, 3), c.container_id),
        )
        primary = containers[0] if containers else None
        for extra in containers[1:]:
            actions.append(
                RemoveContainer(task_id, extra.container_id, assignment.stop_grace_s, "duplicate container")
            )

        if assignment.desired_state == DesiredState.SHUTDOWN:
            _plan_shutdown(assignment, primary, state, last, now, actions, emit, drain_s)
            drain = drain_s if state == TaskState.RUNNING else 0.0
            kept = _exited if _ended_by_itself(primary, state, assignment) else _nothing
            _remove_members(
                assignment,
                members,
                actions,
                "desired shutdown",
                keep=kept,
                drain_s=drain,
                drain_index=assignment.drain_index,
            )
            continue
        at = now  # a running group's report is dated no earlier than its last container's start
        if assignment.sidecars and primary is not None and state not in TERMINAL_STATES:
            seen = report_from_container(primary, now)
            if seen is not None and seen.state == TaskState.RUNNING:
                failure = group_failure(assignment, members) or _member_restarted(assignment, members)
                if failure:  # the group fails as one: the next pass removes what still runs
                    emit(replace(seen, state=TaskState.FAILED, error=failure, health=TaskHealth.NONE), last)
                    continue
                primary = replace(primary, health=group_health(primary.health, members, assignment))
                at = max([at, *(m.started_at for m in members if m.status in _LIVE_STATUSES)])
        _plan_running(assignment, primary, state, last, at, actions, emit)
        if state in TERMINAL_STATES or (primary is None and state in STARTED_STATES):
            _remove_members(assignment, members, actions, "task already terminal", keep=_not_live)

    forget = tuple(sorted(t for t in known if t not in wanted and t not in busy_tasks))
    return NodePlan(actions=tuple(actions), reports=tuple(reports), forget=forget)


def _not_live(container: ObservedContainer) -> bool:
    return container.status not in _LIVE_STATUSES


def _exited(container: ObservedContainer) -> bool:
    return container.status == "exited"


def _nothing(container: ObservedContainer) -> bool:
    return False


def _ended_by_itself(primary: ObservedContainer | None, state: str, assignment: TaskAssignment) -> bool:
    """The task ended on its own (completed, crashed, or its group failed), not by the agent stopping it:
    its exited containers stay for their logs while its record exists."""
    if primary is not None and primary.status == "exited":
        if state in TERMINAL_STATES:
            return state != TaskState.SHUTDOWN  # shutdown: we stopped it and its removal did not finish
        return not _stopped(primary, assignment)
    return state in (TaskState.COMPLETE, TaskState.FAILED)


def _stopped(container: ObservedContainer, assignment: TaskAssignment) -> bool:
    """A task to shut down whose container a stop signal ended (SIGTERM, SIGKILL after the grace, the
    service's ``--stop-signal`` or the image's ``STOPSIGNAL``), not out of memory: the agent's stop, even
    one its restart interrupted before the shutdown was reported (a key or role switch restarts the
    agent), or an operator's."""
    if assignment.desired_state != DesiredState.SHUTDOWN or container.oom_killed:
        return False
    signals = (str(assignment.options.get("stop_signal") or ""), container.stop_signal)
    return container.exit_code in _stop_codes(*signals)


def _stop_codes(*stop_signals: str) -> frozenset[int]:
    """The exit codes of a container ended by a stop: 128 + SIGTERM, SIGKILL or one of ``stop_signals``
    (Docker's forms: ``SIGQUIT``, ``QUIT``, ``3``, ``SIGRTMIN+3``)."""
    codes = {128 + signal.SIGTERM, 128 + signal.SIGKILL}
    for stop_signal in stop_signals:
        number = _signal_number(stop_signal)
        if number is not None:
            codes.add(128 + number)
    return frozenset(codes)


def _signal_number(stop_signal: str) -> int | None:
    """``stop_signal``'s number; None for "" or a name this host does not know."""
    name = stop_signal.strip().upper()
    if name.isdigit():
        return int(name)
    name = name.removeprefix("SIG")
    if match := re.fullmatch(r"RT(MIN|MAX)([+-]\d+)?", name):
        base = signal.SIGRTMIN if match[1] == "MIN" else signal.SIGRTMAX
        return int(base) + int(match[2] or 0)
    signum = signal.Signals.__members__.get("SIG" + name)
    return None if signum is None else int(signum.value)


def _connections(assignment: TaskAssignment, container: ObservedContainer) -> dict[str, Any]:
    """What a load-balanced container's drain watches: its namespace (its pid) and the ports served."""
    return {
        "drain_pid": container.pid,
        "drain_ports": assignment.drain_ports,
        "drain_listeners": assignment.drain_listeners,
    }


def _remove_members(
    assignment: TaskAssignment,
    members: Iterable[ObservedContainer],
    actions: list[Action],
    reason: str,
    *,
    keep: Callable[[ObservedContainer], bool],
    drain_s: float = 0.0,
    drain_index: int = 0,
) -> None:
    """Stop a task group's other containers with the task, except those ``keep`` holds on to (ones that
    are not live, or exited ones, for their logs until the task's record goes)."""
    for member in members:
        if keep(member):
            continue
        live = member.status in _LIVE_STATUSES
        actions.append(
            RemoveContainer(
                assignment.task_id,
                member.container_id,
                assignment.stop_grace_s,
                reason,
                drain_s=drain_s if live else 0.0,  # a sidecar serves the task's address as long as the main
                **(_connections(assignment, member) if live and drain_index else {}),
                drain_index=drain_index if live else 0,
            )
        )


def _effective_state(assignment: TaskAssignment, last: TaskReport | None) -> str:
    """Our own last report wins, except that a terminal committed state (set by the leader) is final."""
    if assignment.state in TERMINAL_STATES or last is None:
        return assignment.state
    return last.state


def _plan_running(
    assignment: TaskAssignment,
    primary: ObservedContainer | None,
    state: str,
    last: TaskReport | None,
    now: float,
    actions: list[Action],
    emit: _Emit,
) -> None:
    task_id = assignment.task_id
    if primary is None:
        if state in TERMINAL_STATES:
            return
        if state in STARTED_STATES:
            container_id = last.container_id if last else ""
            emit(
                TaskReport(
                    task_id=task_id,
                    state=TaskState.FAILED,
                    at=now,
                    error=VANISHED_ERROR,
                    container_id=container_id,
                ),
                last,
            )
            return
        actions.append(StartTask(assignment))
        emit(TaskReport(task_id=task_id, state=TaskState.STARTING, at=now), last)
        return
    observed = report_from_container(primary, now)
    if state in TERMINAL_STATES:
        if primary.status in _LIVE_STATUSES:
            # The task is over for the cluster (e.g. the leader gave up on it): do not let it run on.
            actions.append(
                RemoveContainer(
                    task_id, primary.container_id, assignment.stop_grace_s, "task already terminal"
                )
            )
        return
    if observed is None:
        if primary.status == "created":
            # Created but never started (the agent stopped between create and start): start it now.
            actions.append(StartTask(assignment, primary.container_id))
            emit(
                TaskReport(
                    task_id=task_id, state=TaskState.STARTING, at=now, container_id=primary.container_id
                ),
                last,
            )
        return
    if observed.state == TaskState.RUNNING and (error := restarted_error(assignment, primary)):
        emit(replace(observed, state=TaskState.FAILED, error=error, health=TaskHealth.NONE), last)
        reason = "restarted outside p2porch"
        actions.append(RemoveContainer(task_id, primary.container_id, assignment.stop_grace_s, reason))
        return
    emit(observed, last)


def restarted_error(assignment: TaskAssignment, container: ObservedContainer) -> str:
    """Why a live ``container`` is not its task's process any more ("" when it is): the engine started it
    after the cluster recorded the task running (see ``RESTARTED_AFTER_S``)."""
    if not assignment.started_at or container.started_at <= assignment.started_at + RESTARTED_AFTER_S:
        return ""
    return (
        f"container was started again outside p2porch at {_utc(container.started_at)} (the task ran since "
        f"{_utc(assignment.started_at)}): restarted by hand or by the engine"
    )


def _member_restarted(assignment: TaskAssignment, members: Iterable[ObservedContainer]) -> str:
    """Why a running task group failed because the engine started one of its live sidecars again after
    the cluster recorded the task running (``docker restart`` of a sidecar); "" when none was."""
    sidecars = {s.name for s in assignment.sidecars}
    for member in sorted(members, key=lambda c: c.member):
        live = member.member in sidecars and member.status in _LIVE_STATUSES
        if live and (error := restarted_error(assignment, member)):
            return f"sidecar {member.member} {error.removeprefix('container ')}"
    return ""


def _utc(at: float) -> str:
    return datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _plan_shutdown(
    assignment: TaskAssignment,
    primary: ObservedContainer | None,
    state: str,
    last: TaskReport | None,
    now: float,
    actions: list[Action],
    emit: _Emit,
    drain_s: float = 0.0,
) -> None:
    task_id = assignment.task_id
    if primary is None:
        if state not in TERMINAL_STATES:
            emit(TaskReport(task_id=task_id, state=TaskState.SHUTDOWN, at=now), last)
        return
    if primary.status in _LIVE_STATUSES or primary.status == "created":
        actions.append(
            RemoveContainer(
                task_id,
                primary.container_id,
                assignment.stop_grace_s,
                "desired shutdown",
                report_shutdown=state not in TERMINAL_STATES,
                drain_s=drain_s if state == TaskState.RUNNING and primary.status in _LIVE_STATUSES else 0.0,
                **(
                    _connections(assignment, primary)
                    if primary.status in _LIVE_STATUSES and assignment.drain_index
                    else {}
                ),
                drain_index=assignment.drain_index if primary.status in _LIVE_STATUSES else 0,
            )
        )
        return
    if state not in TERMINAL_STATES and primary.status == "exited" and _stopped(primary, assignment):
        # A stop ended it (ours, interrupted before its report, or an operator's): shutdown, and it goes.
        code = primary.exit_code
        emit(
            TaskReport(task_id, TaskState.SHUTDOWN, now, container_id=primary.container_id, exit_code=code),
            last,
        )
    elif state not in TERMINAL_STATES:
        # It exited by itself before we stopped it: report how it ended.
        emit(report_from_container(primary, now), last)
    if primary.status == "exited" and _ended_by_itself(primary, state, assignment):
        # Kept with its logs (a job's output, a crash's last lines: `service logs`) while the cluster keeps
        # the task's record (a bounded history per slot); it goes with the record ("task not assigned").
        return
    actions.append(
        RemoveContainer(task_id, primary.container_id, assignment.stop_grace_s, "desired shutdown")
    )
