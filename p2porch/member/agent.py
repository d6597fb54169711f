"""Member service: the node agent, running the tasks committed to this node through Docker (shell)."""

from __future__ import annotations

import logging
from functools import partial

import trio

from ..agent.docker_executor import open_docker_executor
from ..agent.model import NodeCapacity, TaskAssignment, TaskReport
from ..agent.worker import run_agent
from ..context import MemberContext
from ..model import TaskHealth, TaskState
from ..netoverlay.plan import OverlaySettings
from ..raft import commands as C
from ..supervisor import supervise
from .views import (
    gateway_of,
    shutdown_assignment,
    task_assignment,
)

log = logging.getLogger(__name__)

__all__ = ["serve_agent", "status_report"]


async def serve_agent(
    ctx: MemberContext, *, docker_host: str, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run the tasks committed to this node through its Docker engine and report their states."""
    task_status.started()
    await supervise(ctx.board.health, "agent", partial(_run_agent, ctx, docker_host or None))


async def _run_agent(ctx: MemberContext, docker_host: str | None) -> None:
    node_id, node_name = ctx.local.node_id, ctx.local.node_name
    store = ctx.store
    executor = await open_docker_executor(docker_host)
    ctx.board.executor = executor
    try:
        await _record_capacity(ctx, await executor.capacity())
        await ctx.board.overlay_ready.wait()  # tasks attach to the node's overlay network

        def assignments() -> list[TaskAssignment]:
            state = store.snapshot()
            lease = state.leases.get(node_id)
            dns = gateway_of(lease.subnet) if lease else ""
            out = []
            for task in state.tasks.values():
                if task.node_id != node_id:
                    continue
                service = state.services.get(task.service_id)
                if service is None:  # its service is gone: the task can only be stopped
                    out.append(shutdown_assignment(task, node_name))
                    continue
                network = OverlaySettings().network_name
                out.append(task_assignment(task, service.spec, node_name, network, dns, state.domain))
            return out

        async def report(reports: list[TaskReport]) -> None:
            command = C.ReportTaskStates(
                at=ctx.clock.now(), node_id=node_id, reports=tuple(status_report(r) for r in reports)
            )
            await ctx.write(command.encode())

        async with ctx.state_changes() as changes, trio.open_nursery() as nursery:
            await nursery.start(partial(run_agent, executor, node_name, assignments, changes, report))
            await trio.sleep_forever()
    finally:
        ctx.board.executor = None
        with trio.CancelScope(shield=True):
            await executor.aclose()


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


def status_report(report: TaskReport) -> C.TaskStatusReport:
    """An agent report as the ``ReportTaskStates`` command carries it (every field reported)."""
    return C.TaskStatusReport(
        task_id=report.task_id,
        state=TaskState(report.state),
        state_at=report.at,
        error=report.error,
        container_id=report.container_id,
        address=report.address,
        health=TaskHealth(report.health),
        exit_code=report.exit_code,
        reports_exit_code=True,
    )
