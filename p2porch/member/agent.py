"""Member service: the node agent, running the tasks committed to this node through Docker (shell)."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import trio

from ..agent.docker_executor import open_docker_executor
from ..agent.model import NodeCapacity, TaskAssignment, TaskReport
from ..agent.worker import run_agent
from ..context import MemberContext
from ..netoverlay.plan import OverlaySettings
from ..raft import commands as C
from ..supervisor import supervise
from .views import agent_assignments

log = logging.getLogger(__name__)

__all__ = ["report_fields", "serve_agent"]


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
            return agent_assignments(store.snapshot(), node_id, node_name, OverlaySettings().network_name)

        async def report(reports: list[TaskReport]) -> None:
            await ctx.write(
                C.report_task_states(ctx.clock.now(), node_id, [report_fields(r) for r in reports])
            )

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
    await ctx.write(
        C.update_node(
            ctx.clock.now(), node.node_id, cpu_nanos=capacity.cpu_nanos, memory_bytes=capacity.memory_bytes
        )
    )


def report_fields(report: TaskReport) -> dict[str, Any]:
    """An agent report as the ``report_task_states`` command takes it."""
    return {
        "task_id": report.task_id,
        "state": report.state,
        "state_at": report.at,
        "error": report.error,
        "container_id": report.container_id,
        "address": report.address,
        "health": report.health,
        "exit_code": report.exit_code,
    }
