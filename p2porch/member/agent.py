"""Member service: the node agent, running the tasks committed to this node through Docker (shell)."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from functools import partial
from typing import Any, TypeVar

import trio

from ..agent.connection_drain import ConnectionDrain
from ..agent.docker_executor import open_docker_executor
from ..agent.drain_gate import GRACE_S, MAX_S, DrainBounds
from ..agent.executor import Executor
from ..agent.listen_wait import ListenWait
from ..agent.model import NodeCapacity, ObservedContainer, TaskAssignment, TaskReport, template_context
from ..agent.plan import StartOutcome
from ..agent.worker import run_agent
from ..context import MemberContext
from ..errors import ExecutorError
from ..metrics import Metrics
from ..model import TERMINAL_STATES, DesiredState, Task
from ..model.netrefs import HOST_NETWORK
from ..netoverlay.plan import OverlaySettings
from ..raft import commands as C
from ..raft.fsm import Change
from ..raft.state import ClusterState
from ..supervisor import supervise
from .drain_acks import EndpointDrainGate
from .engine_report import EngineReporter
from .overlay import NodeBridge
from .task_files import TaskFacts, TaskFiles
from .views import agent_assignments, status_report

log = logging.getLogger(__name__)

__all__ = ["serve_agent", "status_report"]


T = TypeVar("T")
#: ``engine_seen(ok, error)``: one engine call answered or failed (member/engine_report.py)
EngineSeen = Callable[[bool, str], None]

LISTEN_MAX_S = 10.0  # the default of the daemon's overlay.listen_max_s
AGENT_MAX_RETRY_S = 5.0  # the agent's longest retry: an engine back (dockerd restarted) is seen within it
CAPACITY_RETRY_S = 1.0  # a failed capacity read (docker info) is tried again after this, doubling ...
CAPACITY_MAX_RETRY_S = 30.0  # ... up to this


async def serve_agent(
    ctx: MemberContext,
    *,
    docker_host: str,
    task_files_dir: str = "",
    drain_s: float = 0.0,
    drain_grace_s: float = GRACE_S,
    drain_max_s: float = MAX_S,
    listen_max_s: float = LISTEN_MAX_S,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the tasks committed to this node through its Docker engine and report their states;
    ``task_files_dir`` is where secret/config files of this node's tasks live (a tmpfs); a running task
    asked to stop is given ``drain_s`` after it left DNS before it is stopped, and a load-balanced one
    runs until every live node's rules dropped it, then ``drain_grace_s`` (member/drain_acks.py), then
    until its open TCP connections have ended (agent/connection_drain.py), at most ``drain_max_s``; a
    started task with TCP ingress ports is reported running once it listens on their target ports
    (agent/listen_wait.py), at most ``listen_max_s`` after its start (0: at once)."""
    task_status.started()
    files = TaskFiles(task_files_dir, ctx.local.secrets_keys) if task_files_dir else None
    gate = EndpointDrainGate(
        ctx.board, ctx.local.node_id, DrainBounds(drain_grace_s, drain_max_s), ctx.metrics
    )
    connections = ConnectionDrain(
        drain_max_s, lambda outcome: ctx.metrics.connection_drains.labels(outcome).inc()
    )
    engine = EngineReporter(ctx)
    listens = ListenWait(listen_max_s, lambda outcome: ctx.metrics.listen_waits.labels(outcome).inc())
    local = engine_is_local(docker_host or os.environ.get("DOCKER_HOST", ""))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(engine.run)
        await supervise(
            ctx.board.health,
            "agent",
            partial(
                _run_agent,
                ctx,
                docker_host or None,
                files,
                drain_s,
                gate,
                connections if local else None,
                listens if local and listen_max_s > 0 else None,
                engine.seen,
                lambda: engine.watch.failing_since is not None,
            ),
            max_delay_s=AGENT_MAX_RETRY_S,
        )
        nursery.cancel_scope.cancel()


def engine_is_local(docker_host: str) -> bool:
    """Whether the engine at ``docker_host`` ("" = the local default socket) runs on this host, so its
    container pids are this host's: only then may the agent read a container's TCP tables under /proc
    (a remote engine's pid names another machine's process)."""
    return not docker_host or docker_host.startswith("unix://")


def _with_files(files: TaskFiles | None, state: ClusterState, assignment: TaskAssignment) -> TaskAssignment:
    """``assignment`` with its secret/config files mounted, or a start error saying why it has none."""
    task = state.tasks.get(assignment.task_id)
    service = state.services.get(task.service_id) if task is not None else None
    if task is None or service is None or not task_should_run(task):
        return assignment
    spec = service.spec
    refs = [("secret", r) for r in spec.secrets] + [("config", r) for r in spec.configs]
    if not refs:
        return assignment
    if files is None:
        return replace(assignment, start_error="this node has no directory for secret files (task_files_dir)")
    facts = TaskFacts(template_context(assignment), spec.env_dict())
    mounts, error = files.prepare(state, task, refs, facts)
    if error:
        return replace(assignment, start_error=error)
    return replace(assignment, mounts=(*assignment.mounts, *mounts))


def moves_assignments(change: Change, node_id: str) -> bool:
    """Whether ``change`` can change what this node's agent runs (``agent_assignments`` and its files): not
    a node record (the agent reads none) nor another node's subnet lease. A formation or a node going up
    and down commits little else, and every change that passes makes the agent list its containers
    (docs/performance.md, "Joins, tenth round")."""
    return change.kind != "node" and (change.kind != "lease" or change.key == node_id)


async def _forward(
    changes: trio.MemoryReceiveChannel[Change], to: trio.MemorySendChannel[Change], node_id: str
) -> None:
    async with to:
        async for change in changes:
            if moves_assignments(change, node_id):
                await to.send(change)


def task_should_run(task: Task) -> bool:
    """Desired running and not seen ending: its secret/config files must be in place."""
    return task.state not in TERMINAL_STATES and task.desired_state == DesiredState.RUNNING


def _files_kept(task: Task) -> bool:
    """Its files stay until the task should no longer run and was seen ending."""
    return task.state not in TERMINAL_STATES or task.desired_state == DesiredState.RUNNING


async def _run_agent(
    ctx: MemberContext,
    docker_host: str | None,
    files: TaskFiles | None,
    drain_s: float,
    gate: EndpointDrainGate,
    connections: ConnectionDrain | None,
    listens: ListenWait | None,
    engine_seen: EngineSeen,
    engine_away: Callable[[], bool] = lambda: False,
) -> None:
    node_id, node_name = ctx.local.node_id, ctx.local.node_name
    # a dockerd that stops removes its socket: the agent fails (its open tells engine_seen) and is run again
    # once the engine answers, with no subscription of its own that ended; the engine was away all the same
    # (engine_back). An agent that failed for another reason is no engine back: the engine watch decides,
    # not the restart count (every ~6 s of supervise's back-off would be full resyncs every ~6 s)
    engine_was_away = engine_away()
    store = ctx.store
    try:
        executor = await open_docker_executor(docker_host)
    except ExecutorError as exc:
        engine_seen(False, exc.message)
        raise
    ctx.board.executor = executor
    network = OverlaySettings().network_name
    # the node's Docker network is made before the first container start on it (netoverlay/bridge.py)
    measured = MeasuredExecutor(executor, ctx.metrics, engine_seen, bridge=(network, NodeBridge(ctx.board)))
    try:
        await ctx.board.overlay_ready.wait()  # tasks attach to the node's overlay network

        def assignments() -> list[TaskAssignment]:
            state = store.snapshot()
            out = agent_assignments(state, node_id, node_name, network)
            if files is None:
                return [_with_files(None, state, a) for a in out]
            live = {t.task_id for t in state.tasks.values() if t.node_id == node_id and _files_kept(t)}
            out = [_with_files(files, state, a) for a in out]
            files.cleanup(live)
            return out

        async def report(reports: list[TaskReport]) -> None:
            tasks = store.snapshot().tasks
            command = C.ReportTaskStates(
                at=ctx.clock.now(),
                node_id=node_id,
                reports=tuple(status_report(r, tasks.get(r.task_id)) for r in reports),
            )
            await ctx.write(command.encode())

        def engine_back() -> None:  # dockerd restarted under us: its chains, our rules, checked now
            if ctx.board.overlay is not None:
                ctx.board.overlay.resync()
            ctx.board.engine_answers_again()  # the ingress/VIP and network policy loops: a full pass
            nursery.start_soon(keep_capacity, ctx, executor)  # maybe upgraded in place: its version again

        async with ctx.state_changes() as changes, trio.open_nursery() as nursery:
            # the raw executor: /info failing alone (containerd trouble) says nothing of whether the engine
            # answers; listings and event subscriptions tell the engine watch that
            nursery.start_soon(keep_capacity, ctx, executor)
            to_agent, relevant = trio.open_memory_channel[Change](math.inf)  # read at once: it only pokes
            nursery.start_soon(_forward, changes, to_agent, node_id)
            await nursery.start(
                partial(
                    run_agent,
                    measured,
                    node_name,
                    assignments,
                    relevant,
                    report,
                    drain_s=drain_s,
                    drain_gate=gate,
                    connection_wait=connections,
                    listen_wait=listens,
                    engine_back=engine_back,
                    engine_was_away=engine_was_away,
                )
            )
            await trio.sleep_forever()
    finally:
        ctx.board.executor = None
        with trio.CancelScope(shield=True):
            await executor.aclose()


class MeasuredExecutor:
    """An executor whose container starts count into the daemon's metrics and whose listings and event
    subscriptions tell ``engine_seen`` whether the engine answers; the rest passes through (a capacity
    read too: ``/info`` can fail while the engine runs its containers, and must never mark it
    unreachable). With ``bridge`` (the node's network name and its ``NodeBridge``) a start on that
    network makes the network first, and one that failed has it checked again at the next."""

    def __init__(
        self,
        inner: Executor,
        metrics: Metrics,
        engine_seen: EngineSeen | None = None,
        *,
        bridge: tuple[str, NodeBridge] | None = None,
    ) -> None:
        self._inner = inner
        self._metrics = metrics
        self._seen: EngineSeen = engine_seen or (lambda ok, error: None)
        self._bridge = bridge

    async def _answered(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``'s result; whether the engine answered goes to ``engine_seen``."""
        try:
            found = await call()
        except ExecutorError as exc:
            self._seen(False, exc.message)
            raise
        self._seen(True, "")
        return found

    async def list_containers(self) -> list[ObservedContainer]:
        return await self._answered(self._inner.list_containers)

    async def remove(self, container_id: str, stop_grace_s: float) -> None:
        await self._inner.remove(container_id, stop_grace_s)

    async def capacity(self) -> NodeCapacity:
        return await self._inner.capacity()

    @asynccontextmanager
    async def open_events(self) -> AsyncIterator[Any]:
        try:
            async with self._inner.open_events() as events:
                self._seen(True, "")
                yield events
        except ExecutorError as exc:
            self._seen(False, exc.message)
            raise

    def open_logs(
        self,
        task_ids: Collection[str] | None = None,
        *,
        service_name: str = "",
        follow: bool = False,
        tail: int | None = None,
        container: str = "",
        since: float | None = None,
        timestamps: bool = False,
    ) -> AbstractAsyncContextManager[Any]:
        return self._inner.open_logs(
            task_ids,
            service_name=service_name,
            follow=follow,
            tail=tail,
            container=container,
            since=since,
            timestamps=timestamps,
        )

    async def start(self, assignment: TaskAssignment, container_id: str = "") -> StartOutcome:
        started = trio.current_time()
        bridge = self._bridge[1] if self._bridge and assignment.network == self._bridge[0] else None
        # a host-network task's resolver is the node's DNS on the network's gateway, local once the network
        # is made: best effort (it starts whatever the overlay does)
        if (
            self._bridge is not None
            and assignment.network == HOST_NETWORK
            and assignment.dns_servers
            and (error := await _network_error(*self._bridge))
        ):
            log.warning("task %s: the cluster DNS on its node's gateway: %s", assignment.task_id, error)
        try:
            if bridge is not None and (error := await _network_error(assignment.network, bridge)):
                outcome = StartOutcome(None, error)  # reported as the start's error, as the engine's are
            else:
                outcome = await self._inner.start(assignment, container_id)
        except Exception:
            self._metrics.agent_task_starts.labels("error").inc()
            if bridge is not None:
                bridge.suspect()
            raise
        if bridge is not None and outcome.error:
            bridge.suspect()
        self._metrics.agent_container_start_seconds.observe(trio.current_time() - started)
        self._metrics.agent_task_starts.labels("failed" if outcome.error else "ok").inc()
        return outcome


async def _network_error(name: str, bridge: NodeBridge) -> str:
    """Empty once the node's network ``name`` exists; else why it cannot be made (the engine down, the overlay
    restarting, dockerd refusing it, the node leaving), for the task's error."""
    try:
        await bridge.ensure()
    except ExecutorError as exc:
        prefix = f"docker network {name}"
        return exc.message if exc.message.startswith(prefix) else f"{prefix}: {exc.message}"
    return ""


async def keep_capacity(ctx: MemberContext, executor: Executor) -> None:
    """Read the engine's CPUs, memory and version (``docker info``) into the node's record and gossip once;
    while ``/info`` or the write fails, the record keeps its last known capacity (the scheduler goes on
    placing by it; an engine that does not answer at all is recorded unreachable through the agent's
    failing listings and event subscriptions, never through ``/info``: ``executor`` must not report to
    ``engine_seen``) and the read is tried again, ``CAPACITY_RETRY_S`` doubling up to
    ``CAPACITY_MAX_RETRY_S``. Never raises for the engine or the write: the agent's loop does not
    restart over it."""
    delay = CAPACITY_RETRY_S
    while True:
        try:
            capacity = await executor.capacity()
            await _record_capacity(ctx, capacity)
        except Exception as exc:  # ExecutorError, a write without quorum: keep the record, try again
            text = exc.message if isinstance(exc, ExecutorError) else repr(exc)
            log.warning(
                "engine capacity not read (%s); keeping the node's last known, retry in %g s", text, delay
            )
            await trio.sleep(delay)
            delay = min(delay * 2, CAPACITY_MAX_RETRY_S)
            continue
        # node ls ENGINE VERSION and node inspect's platform, via gossip
        ctx.board.publish_engine_version(capacity.engine_version, capacity.architecture)
        return


async def _record_capacity(ctx: MemberContext, capacity: NodeCapacity) -> None:
    """Store the engine's CPU and memory as this node's capacity when they differ from the record."""
    node = ctx.store.snapshot().nodes.get(ctx.local.node_id)
    if node is None or (node.cpu_nanos, node.memory_bytes) == (capacity.cpu_nanos, capacity.memory_bytes):
        return
    update = C.UpdateNode(
        at=ctx.clock.now(),
        node_id=node.node_id,
        cpu_nanos=capacity.cpu_nanos,
        memory_bytes=capacity.memory_bytes,
    )
    await ctx.write(update.encode())
