"""A fake container engine and a synchronous node agent for the cluster simulator (pure; tests only).

``FakeEngine`` owns one node's containers and how they behave: a start takes ``start_delay_s``; what
happens after that is scripted per image with :class:`Behaviour` (exit with a code after some time,
become unhealthy, pass a health check after a delay) or per task with ``crash``/``set_health``.
``SimAgent`` is the real agent's decision core (``agent.plan.plan_node`` and ``outcome_report``) driven
step by step: it keeps the agent's memory (last report per task, actions in flight), completes actions
when their simulated time has come, and hands the reports to the simulator to commit through the store
(``report_task_states``), as ``agent.worker.NodeAgent`` does. Nothing here sleeps or reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..agent.model import ObservedContainer, TaskAssignment, TaskReport
from ..agent.plan import RemoveContainer, StartOutcome, StartTask, outcome_report, plan_node
from ..model import TaskHealth, TaskState


@dataclass(frozen=True)
class Behaviour:
    """How the containers of one image behave once started.

    ``exit_code`` with ``exit_after_s``: the process exits that long after it started (None: runs until
    stopped). ``health_after_s``: with a health check, "starting" until then, then ``health``.
    ``start_error``: the engine refuses to start it (a missing image).
    """

    exit_code: int | None = None
    exit_after_s: float = 0.0
    health: TaskHealth = TaskHealth.HEALTHY
    health_after_s: float = 0.5
    start_error: str = ""


@dataclass
class _Container:
    container_id: str
    task_id: str
    name: str
    image: str
    status: str  # created | running | exited
    started_at: float
    has_health: bool
    exit_code: int | None = None
    exit_at: float | None = None
    health: TaskHealth = TaskHealth.NONE
    health_at: float | None = None
    next_health: TaskHealth = TaskHealth.NONE
    address: str = ""


class FakeEngine:
    """One node's containers; advanced with :meth:`advance` to simulated time ``now``."""

    def __init__(self, node_name: str, subnet_prefix: str = "10.240.0") -> None:
        self.node_name = node_name
        self.containers: dict[str, _Container] = {}
        self.behaviours: dict[str, Behaviour] = {}
        self.start_delay_s = 0.2
        self.stop_delay_s = 0.1
        self.subnet_prefix = subnet_prefix
        self._serial = 0
        self.started = 0  # containers started, ever (a test can count restarts)

    def start(self, assignment: TaskAssignment, now: float, container_id: str = "") -> StartOutcome:
        """Create (unless ``container_id`` exists) and start a container; its outcome at ``now``."""
        behaviour = self.behaviours.get(assignment.image, Behaviour())
        container = self.containers.get(container_id)
        if container is None:
            self._serial += 1
            container = _Container(
                container_id=f"{self.node_name}-c{self._serial:04d}",
                task_id=assignment.task_id,
                name=f"{assignment.service_name}.{assignment.slot}.{assignment.task_id[:8]}",
                image=assignment.image,
                status="created",
                started_at=now,
                has_health=assignment.healthcheck is not None,
                address=f"{self.subnet_prefix}.{self._serial % 250 + 2}",
            )
            self.containers[container.container_id] = container
        if behaviour.start_error:
            return StartOutcome(self._observe(container), behaviour.start_error)
        self.started += 1
        container.status, container.started_at = "running", now
        if behaviour.exit_code is not None:
            container.exit_at = now + behaviour.exit_after_s
            container.exit_code = behaviour.exit_code
        if container.has_health:
            container.health, container.health_at = TaskHealth.STARTING, now + behaviour.health_after_s
            container.next_health = behaviour.health
        self.advance(now)
        return StartOutcome(self._observe(container))

    def remove(self, container_id: str) -> None:
        self.containers.pop(container_id, None)

    def crash(self, task_id: str, exit_code: int, now: float) -> None:
        """The running container of ``task_id`` exits with ``exit_code`` now."""
        for c in self.containers.values():
            if c.task_id == task_id and c.status == "running":
                c.exit_at, c.exit_code = now, exit_code
        self.advance(now)

    def set_health(self, task_id: str, health: TaskHealth, now: float) -> None:
        """The health check of ``task_id``'s container reports ``health`` from now on."""
        for c in self.containers.values():
            if c.task_id == task_id and c.status == "running":
                c.health, c.health_at, c.next_health = health, None, TaskHealth.NONE

    def kill_all(self) -> None:
        """The engine died with its node: every container is gone (no live-restore)."""
        for c in self.containers.values():
            if c.status == "running":
                c.status, c.exit_code, c.exit_at = "exited", 137, None

    def advance(self, now: float) -> None:
        for c in self.containers.values():
            if c.status != "running":
                continue
            if c.exit_at is not None and c.exit_at <= now:
                c.status, c.exit_at = "exited", None
            elif c.health_at is not None and c.health_at <= now:
                c.health, c.health_at = c.next_health, None

    def list_containers(self) -> list[ObservedContainer]:
        return [self._observe(c) for c in sorted(self.containers.values(), key=lambda c: c.container_id)]

    def running_tasks(self) -> list[str]:
        return sorted(c.task_id for c in self.containers.values() if c.status == "running")

    def _observe(self, c: _Container) -> ObservedContainer:
        return ObservedContainer(
            container_id=c.container_id,
            name=c.name,
            task_id=c.task_id,
            node_name=self.node_name,
            status=c.status,
            exit_code=c.exit_code if c.status == "exited" else None,
            health=c.health if c.has_health and c.status == "running" else TaskHealth.NONE,
            address=c.address if c.status == "running" else "",
        )


@dataclass(frozen=True)
class _InFlight:
    done_at: float
    action: StartTask | RemoveContainer


class SimAgent:
    """The agent of one node: real ``plan_node`` decisions, actions that take simulated time."""

    def __init__(self, node_name: str, engine: FakeEngine) -> None:
        self.node_name = node_name
        self.engine = engine
        self.known: dict[str, TaskReport] = {}
        self.pending: dict[str, TaskReport] = {}  # reports not committed yet (newest per task)
        self.in_flight: list[_InFlight] = []

    def restart(self) -> None:
        """A restarted daemon: the agent forgets everything but the engine's containers."""
        self.known, self.pending, self.in_flight = {}, {}, []

    def step(self, assignments: list[TaskAssignment], now: float) -> None:
        """Finish due actions, then one reconcile pass (``plan_node``) at ``now``."""
        self.engine.advance(now)
        due = [f for f in self.in_flight if f.done_at <= now]
        self.in_flight = [f for f in self.in_flight if f.done_at > now]
        for item in due:
            action = item.action
            if isinstance(action, StartTask):
                outcome = self.engine.start(action.assignment, item.done_at, action.container_id)
                self._record(outcome_report(action.assignment, outcome, item.done_at))
            else:
                self.engine.remove(action.container_id)
                if action.report_shutdown:
                    self._record(
                        TaskReport(
                            action.task_id, TaskState.SHUTDOWN, item.done_at, container_id=action.container_id
                        )
                    )
        busy_tasks = {f.action.task_id for f in self.in_flight}
        busy_containers = {
            f.action.container_id for f in self.in_flight if isinstance(f.action, RemoveContainer)
        }
        plan = plan_node(
            self.node_name,
            assignments,
            self.engine.list_containers(),
            self.known,
            now,
            busy_tasks=busy_tasks,
            busy_containers=busy_containers,
        )
        for report in plan.reports:
            self._record(report)
        for task_id in plan.forget:
            self.known.pop(task_id, None)
        for action in plan.actions:
            delay = self.engine.start_delay_s if isinstance(action, StartTask) else self.engine.stop_delay_s
            self.in_flight.append(_InFlight(now + delay, action))

    def take_reports(self) -> list[TaskReport]:
        """The reports to deliver now (the caller puts them back with :meth:`requeue` on failure)."""
        reports, self.pending = list(self.pending.values()), {}
        return reports

    def requeue(self, reports: list[TaskReport]) -> None:
        self.pending = {**{r.task_id: r for r in reports if r.task_id not in self.pending}, **self.pending}

    def _record(self, report: TaskReport) -> None:
        self.known[report.task_id] = report
        self.pending.pop(report.task_id, None)
        self.pending[report.task_id] = report


__all__ = ["Behaviour", "FakeEngine", "SimAgent"]
