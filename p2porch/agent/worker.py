"""The node agent's event loop (shell, trio).

``NodeAgent`` owns the agent's memory of what it last reported per task, the set of tasks and
containers with an action in flight, and the queue of reports not yet delivered. It reconciles (see
``plan.plan_node``) on every state-change notification, on every Docker event about a managed
container and every ``resync_interval_s``; runs the planned actions concurrently; and delivers
reports in batches (newest report per task wins; a batch closes ``flush_interval_s`` after its first
report, or up to ``starting_hold_s`` while it holds only STARTING reports, or at ``max_batch`` reports:
``report_window.ReportWindow``). It never restarts a task (restart policy is the orchestrator's),
never blocks the trio loop, and never dies because of the engine or of the report callback: failures
are logged and retried. When a subscription to the engine's events succeeds after one ended or failed (a
dockerd restarted under it), or its first one when ``engine_was_away`` (the agent before it failed: its
caller runs a new one once the engine answers), it calls ``engine_back`` (the member service's resyncs).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import trio

from ..errors import ExecutorError
from ..model import DesiredState, TaskState
from .executor import Executor
from .model import TaskAssignment, TaskReport
from .plan import Action, RemoveContainer, StartOutcome, StartTask, outcome_report, plan_node, ready_pid
from .report_window import HOLD_S, ReportWindow, settled

log = logging.getLogger(__name__)

ReportFn = Callable[[list[TaskReport]], Awaitable[None]]
#: ``gate(task_id, commit_index)`` returns once every live node's ingress/VIP rules reflect the commit that
#: made a load-balanced task shutdown (or its bound passed): member/drain_acks.py
DrainGate = Callable[[str, int], Awaitable[None]]
#: ``wait(task_id, pid, ports, listeners, started)`` returns once the container's open TCP connections on
#: the ports it serves have ended, or its bound passed: agent/connection_drain.py
ConnectionWait = Callable[[str, int, tuple[int, ...], bool, float], Awaitable[None]]
#: ``wait(task_id, pid, ports)`` returns once a started container listens on the TCP ports it serves, or
#: its bound passed: agent/listen_wait.py
ListenerWait = Callable[[str, int, tuple[int, ...]], Awaitable[None]]

MAX_REPORT_BACKOFF_S = 5.0
EVENTS_RECONNECT_S = 1.0
EVENT_RECHECK_S = 0.3  # a second look after each engine event


class NodeAgent:
    """Runs the tasks assigned to ``node_name`` through ``executor`` (see the module docstring)."""

    def __init__(
        self,
        executor: Executor,
        node_name: str,
        get_assignments: Callable[[], Iterable[TaskAssignment]],
        report: ReportFn,
        *,
        resync_interval_s: float = 10.0,
        flush_interval_s: float = 0.1,
        max_batch: int = 64,
        starting_hold_s: float = HOLD_S,
        orphan_grace_s: float = 10.0,
        drain_s: float = 0.0,
        drain_gate: DrainGate | None = None,
        connection_wait: ConnectionWait | None = None,
        listen_wait: ListenerWait | None = None,
        engine_back: Callable[[], None] | None = None,
        engine_was_away: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.executor = executor
        self.node_name = node_name
        self.get_assignments = get_assignments
        self.report = report
        self.resync_interval_s = resync_interval_s
        self.flush_interval_s = flush_interval_s
        self.max_batch = max_batch
        self.window = ReportWindow(flush_interval_s, starting_hold_s, max_batch)
        self.orphan_grace_s = orphan_grace_s
        self.drain_s = drain_s
        self.drain_gate = drain_gate
        self.connection_wait = connection_wait
        self.listen_wait = listen_wait
        self.engine_back = engine_back
        self.engine_was_away = engine_was_away
        self.clock = clock
        self.known: dict[str, TaskReport] = {}
        self.busy_tasks: set[str] = set()
        self.busy_containers: set[str] = set()
        self._starts: dict[str, trio.CancelScope] = {}  # starts in flight (a group's init may run long)
        self._pending: dict[str, TaskReport] = {}
        self._pending_settled = False  # a queued report is settled (report_window): its batch closes soon
        self._wake = trio.Event()
        self._reports_added = trio.Event()
        self.reconcile_count = 0
        self.reports_sent = 0
        self.report_failures = 0
        self.engine_streams_lost = 0  # event streams the engine ended (a dockerd restart ends its stream)

    # ----- public
    def poke(self) -> None:
        """Ask for a reconcile pass as soon as possible (safe to call from any trio task)."""
        self._wake.set()

    def last_reports(self) -> dict[str, TaskReport]:
        """A copy of the last report produced per task (delivered or not)."""
        return dict(self.known)

    async def run(
        self,
        changed: trio.abc.ReceiveChannel[Any] | None = None,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run until cancelled; ``task_status.started()`` after the first reconcile pass."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._flush_loop)
            nursery.start_soon(self._events_loop)
            if changed is not None:
                nursery.start_soon(self._changes_loop, changed)
            self._wake = trio.Event()
            await self._reconcile(nursery)
            task_status.started()
            while True:
                with trio.move_on_after(self.resync_interval_s):
                    await self._wake.wait()
                self._wake = trio.Event()
                await self._reconcile(nursery)

    # ----- reconcile
    async def _reconcile(self, nursery: trio.Nursery) -> None:
        busy_tasks = set(self.busy_tasks)
        busy_containers = set(self.busy_containers)
        try:
            observed = await self.executor.list_containers()
        except ExecutorError as exc:
            log.warning("agent %s: cannot observe containers: %s", self.node_name, exc.message)
            return
        try:
            assignments = list(self.get_assignments())
        except Exception:
            log.exception("agent %s: reading assignments failed", self.node_name)
            return
        for assignment in assignments:  # a task stopped while it starts (its init containers run): give up
            scope = self._starts.get(assignment.task_id)
            if scope is not None and assignment.desired_state == DesiredState.SHUTDOWN:
                scope.cancel()
        # Actions that finished while we listed are skipped this pass (their result is newer than the list).
        plan = plan_node(
            self.node_name,
            assignments,
            observed,
            self.known,
            self.clock(),
            busy_tasks=busy_tasks | self.busy_tasks,
            busy_containers=busy_containers | self.busy_containers,
            orphan_grace_s=self.orphan_grace_s,
            drain_s=self.drain_s,
        )
        self.reconcile_count += 1
        for report in plan.reports:
            self._record(report)
        for task_id in plan.forget:
            self.known.pop(task_id, None)
        for action in plan.actions:
            self.busy_tasks.add(action.task_id)
            if isinstance(action, RemoveContainer):
                self.busy_containers.add(action.container_id)
            nursery.start_soon(self._run_action, action)

    async def _run_action(self, action: Action) -> None:
        try:
            if isinstance(action, StartTask):
                log.info(
                    "agent %s: starting task %s (%s)", self.node_name, action.task_id, action.assignment.image
                )
                with trio.CancelScope() as scope:
                    self._starts[action.task_id] = scope
                    # dated by the wall clock before the start plus the monotonic time it took, or by the
                    # wall clock after it if later: a clock stepped back meanwhile never dates the first
                    # running report (the task's recorded start) before its containers' starts, nor one
                    # stepped forward before its sidecars' starts (plan.restarted_error)
                    wall, began = self.clock(), trio.current_time()
                    outcome = await self.executor.start(action.assignment, action.container_id)
                    await self._until_listening(action.assignment, outcome)
                    at = max(wall + (trio.current_time() - began), self.clock())
                    self._record(outcome_report(action.assignment, outcome, at))
                if scope.cancelled_caught:
                    log.info(
                        "agent %s: start of task %s given up (shut down)", self.node_name, action.task_id
                    )
            else:
                log.info(
                    "agent %s: removing container %s of task %s (%s)",
                    self.node_name,
                    action.container_id[:12],
                    action.task_id,
                    action.reason,
                )
                await self._drain(action)
                await self.executor.remove(action.container_id, action.stop_grace_s)
                if action.report_shutdown:
                    self._record(
                        TaskReport(
                            action.task_id, TaskState.SHUTDOWN, self.clock(), container_id=action.container_id
                        )
                    )
        except ExecutorError as exc:
            log.warning(
                "agent %s: %s of task %s failed: %s",
                self.node_name,
                type(action).__name__,
                action.task_id,
                exc.message,
            )
        except Exception:
            log.exception(
                "agent %s: %s of task %s crashed", self.node_name, type(action).__name__, action.task_id
            )
        finally:
            if isinstance(action, StartTask):
                self._starts.pop(action.task_id, None)
            self.busy_tasks.discard(action.task_id)
            if isinstance(action, RemoveContainer):
                self.busy_containers.discard(action.container_id)
            self.poke()

    async def _until_listening(self, assignment: TaskAssignment, outcome: StartOutcome) -> None:
        """A started task with TCP ingress ports is reported running (and so enters every node's ingress
        and VIP backends) once its namespace listens on their target ports (``listen_wait``, bounded);
        the task stays busy meanwhile, so no reconcile pass reports it running first."""
        pid = ready_pid(assignment, outcome)
        if pid and self.listen_wait is not None:
            await self.listen_wait(assignment.task_id, pid, assignment.ready_ports)

    async def _drain(self, action: RemoveContainer) -> None:
        """Before SIGTERM: a load-balanced task waits until every live node's rules dropped it (the
        gate), every serving task waits out the fixed ``drain_s`` (clients that resolved it in DNS), then
        a load-balanced one waits until its open TCP connections have ended (``connection_wait``)."""
        started = trio.current_time()
        if action.drain_index and self.drain_gate is not None:
            await self.drain_gate(action.task_id, action.drain_index)
        rest = action.drain_s - (trio.current_time() - started)
        if rest > 0:
            await trio.sleep(rest)
        if action.drain_index and action.drain_pid and self.connection_wait is not None:
            await self.connection_wait(
                action.task_id, action.drain_pid, action.drain_ports, action.drain_listeners, started
            )
        if action.drain_index or action.drain_s:
            log.info(
                "agent %s: task %s drained %.3f s; stopping it",
                self.node_name,
                action.task_id,
                trio.current_time() - started,
            )

    # ----- inputs
    async def _changes_loop(self, changed: trio.abc.ReceiveChannel[Any]) -> None:
        async for _ in changed:
            self.poke()

    async def _events_loop(self) -> None:
        again = self.engine_was_away  # a subscription before this one ended or failed: the engine was away
        while True:
            try:
                async with self.executor.open_events() as events:
                    # Anything missed while not subscribed (a dockerd restart kills or restores containers,
                    # someone removed or restarted one) is found by this pass, against fresh inspects.
                    self.poke()
                    if again and self.engine_back is not None:
                        log.info("agent %s: the docker engine answers again", self.node_name)
                        self.engine_back()  # the overlay checks what a restarted dockerd rewrote, now
                    again = True
                    async with trio.open_nursery() as later:
                        async for event in events:
                            log.debug(
                                "agent %s: docker event %s for task %s",
                                self.node_name,
                                event.action,
                                event.task_id,
                            )
                            self.poke()
                            # Docker emits "die" before a listing shows the container stopped: look again.
                            later.start_soon(self._poke_after, EVENT_RECHECK_S)
                self.engine_streams_lost += 1
                log.warning(
                    "agent %s: the docker event stream ended (engine restarting?); reconciling with the "
                    "engine's containers once it answers",
                    self.node_name,
                )
            except ExecutorError as exc:
                again = True
                log.warning("agent %s: docker events unavailable: %s", self.node_name, exc.message)
            await trio.sleep(EVENTS_RECONNECT_S)

    async def _poke_after(self, delay_s: float) -> None:
        await trio.sleep(delay_s)
        self.poke()

    # ----- reports
    def _batch_due(self, opened_at: float) -> float:
        return self.window.due_at(opened_at, len(self._pending), self._pending_settled)

    def _record(self, report: TaskReport) -> None:
        self.known[report.task_id] = report
        self._pending.pop(report.task_id, None)  # newest last, so batches keep the order of change
        self._pending[report.task_id] = report
        self._pending_settled = self._pending_settled or settled(report.state)
        self._reports_added.set()

    async def _wait_reports(self) -> None:
        await self._reports_added.wait()
        self._reports_added = trio.Event()

    async def _flush_loop(self) -> None:
        backoff_s = self.flush_interval_s
        while True:
            while not self._pending:
                await self._wait_reports()
            opened_at = trio.current_time()
            while (due := self._batch_due(opened_at)) > trio.current_time():
                with trio.move_on_at(due):
                    await self._wait_reports()
            batch = list(self._pending.values())[: self.max_batch]
            for report in batch:
                del self._pending[report.task_id]
            self._pending_settled = any(settled(r.state) for r in self._pending.values())
            try:
                await self.report(batch)
                self.reports_sent += len(batch)
                backoff_s = self.flush_interval_s
            except Exception as exc:
                self.report_failures += 1
                log.warning(
                    "agent %s: delivering %d reports failed (retry in %.1f s): %r",
                    self.node_name,
                    len(batch),
                    backoff_s,
                    exc,
                )
                requeue = {r.task_id: r for r in batch if r.task_id not in self._pending}
                self._pending = {**requeue, **self._pending}
                self._pending_settled = any(settled(r.state) for r in self._pending.values())
                await trio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, MAX_REPORT_BACKOFF_S)


async def run_agent(
    executor: Executor,
    node_name: str,
    get_assignments: Callable[[], Iterable[TaskAssignment]],
    changed: trio.abc.ReceiveChannel[Any] | None,
    report: ReportFn,
    *,
    resync_interval_s: float = 10.0,
    flush_interval_s: float = 0.1,
    max_batch: int = 64,
    starting_hold_s: float = HOLD_S,
    orphan_grace_s: float = 10.0,
    drain_s: float = 0.0,
    drain_gate: DrainGate | None = None,
    connection_wait: ConnectionWait | None = None,
    listen_wait: ListenerWait | None = None,
    engine_back: Callable[[], None] | None = None,
    engine_was_away: bool = False,
    task_status: trio.TaskStatus[NodeAgent] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a ``NodeAgent`` until cancelled; ``nursery.start(run_agent, ...)`` returns the agent."""
    agent = NodeAgent(
        executor,
        node_name,
        get_assignments,
        report,
        resync_interval_s=resync_interval_s,
        flush_interval_s=flush_interval_s,
        max_batch=max_batch,
        starting_hold_s=starting_hold_s,
        orphan_grace_s=orphan_grace_s,
        drain_s=drain_s,
        drain_gate=drain_gate,
        connection_wait=connection_wait,
        listen_wait=listen_wait,
        engine_back=engine_back,
        engine_was_away=engine_was_away,
    )

    async with trio.open_nursery() as nursery:
        await nursery.start(agent.run, changed)
        task_status.started(agent)
