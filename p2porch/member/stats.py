"""Member service: sample the CPU and memory of this node's running tasks from their cgroups (shell).

Every ``sample_s`` it lists the engine's managed containers, reads each running one's cgroup counters
(``agent/cgroups.py``; the path is looked up once per container from its init pid) and feeds the
:class:`~p2porch.agent.usage.UsageBook` it publishes on the board. Peers read the book through the
``usage`` join-port request (``control/usage_ops.py``); nothing here writes to Raft: per-sample usage
never becomes a log entry. A container whose cgroup cannot be read here is counted, not sampled. A listing
the engine does not answer (dockerd restarting) skips that sample: the book and its window stay, and the
next sample is ``sample_s`` later (the service failing instead dropped the book and backed off up to
30 s, so the autoscaler saw no usage from the node well after its engine was back).
"""

from __future__ import annotations

import logging
from functools import partial

import trio

from ..agent.cgroups import CgroupFiles, Sample, UsageMeter, add_samples, cgroup_files, read_sample
from ..agent.usage import UsageBook
from ..config import AutoscaleConfig
from ..context import MemberContext
from ..errors import ExecutorError
from ..supervisor import supervise

log = logging.getLogger(__name__)

__all__ = ["serve_usage_sampler"]


async def serve_usage_sampler(
    ctx: MemberContext,
    section: AutoscaleConfig,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Sample this node's tasks every ``section.sample_s`` into ``ctx.board.usage``."""
    task_status.started()
    await supervise(ctx.board.health, "stats", partial(_run_sampler, ctx, section))


async def _run_sampler(ctx: MemberContext, section: AutoscaleConfig) -> None:
    book = UsageBook(section.window_s, section.sample_s)
    meter = UsageMeter()
    files: dict[tuple[str, int], CgroupFiles | None] = {}
    ctx.board.usage = book
    unreadable_logged = False
    engine_away = False  # logged once per outage
    try:
        while True:
            await trio.sleep(section.sample_s)
            executor = ctx.board.executor
            if executor is None:
                continue
            state = ctx.store.snapshot()
            if not files and next(state.tasks_on_node(ctx.local.node_id), None) is None:
                continue  # no task here: nothing to sample, do not ask the engine
            try:
                listed = await executor.list_containers()
            except ExecutorError as exc:  # the engine away: keep the book, try at the next sample
                if not engine_away:
                    log.warning("usage not sampled while the engine does not answer: %s", exc.message)
                engine_away = True
                continue
            engine_away = False
            running = [c for c in listed if c.status == "running" and c.pid > 0]
            live: set[str] = set()
            sums: dict[str, tuple[str, Sample]] = {}  # a task group's containers add up to its task's usage
            for container in running:
                task = state.tasks.get(container.task_id)
                if task is None:
                    continue
                key = (container.container_id, container.pid)
                if key not in files:
                    files[key] = cgroup_files(container.pid)
                where = files[key]
                if where is None:
                    if not unreadable_logged:
                        log.warning(
                            "cannot read the cgroup of container %s here", container.container_id[:12]
                        )
                        unreadable_logged = True
                    continue
                now = ctx.clock.monotonic()
                try:
                    sample = read_sample(where, now)
                except (OSError, ValueError):
                    files.pop(key, None)
                    book.restart(task.task_id)
                    continue
                live.add(task.task_id)
                earlier = sums.get(task.task_id)
                if earlier is not None:
                    sample = add_samples(earlier[1], sample)
                sums[task.task_id] = (task.service_id, sample)
            for task_id, (service_id, sample) in sums.items():
                book.seen(task_id, service_id, sample.at)
                usage = meter.update(task_id, sample, cpu_limit=None, memory_limit=None)
                if usage is not None:
                    book.record(task_id, sample.at, usage)
            book.forget_except(live)
            meter.forget_except(live)
            current = {(c.container_id, c.pid) for c in running}
            for stale in set(files) - current:
                del files[stale]
    finally:
        ctx.board.usage = None
