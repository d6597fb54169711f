"""A service's progress as users read it: running against desired tasks, why tasks fail, a job's execution.

Owns the counts ``service ls``/``inspect`` print (pure reads of the cluster state at ``now``); never
writes anything and never decides placement (the scheduler's).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..model import DesiredState, Service, Task, TaskState
from ..raft.state import ClusterState
from ..scheduler.jobs import job_progress
from ..scheduler.restart import stopped_unhealthy
from .task_liveness import counts_as_running


def task_counts(state: ClusterState, service: Service, tasks: Sequence[Task], now: float) -> tuple[int, int]:
    """(running tasks that should run, desired tasks) of a service whose tasks are ``tasks``; a job: its
    tasks running and wanted at once (``job.tasks_running``/``tasks_desired``, Swarm's RunningTasks/
    DesiredTasks: what ``service ls`` prints before the completions). A task counts as running only where
    its node reports it (task_liveness.py: not on a down node, nor on one whose engine is unreachable),
    as Swarm's ``service ls`` counts."""
    progress = job_view(state, service, now)
    if progress is not None:
        return progress["tasks_running"], progress["tasks_desired"]
    should_run = [t for t in tasks if t.desired_state == DesiredState.RUNNING]
    nodes = state.nodes
    running = sum(1 for t in should_run if counts_as_running(t, nodes.get(t.node_id) if t.node_id else None))
    desired = len(should_run) if service.spec.mode == "global" else service.spec.replicas
    return running, desired


def failing_view(
    service: Service, tasks: Sequence[Task], running: int, desired: int
) -> dict[str, Any] | None:
    """Why a service runs fewer tasks than desired when its tasks fail (an image the engine cannot pull,
    a command that exits, a health check: stopped ``unhealthy``, failed as in Swarm): ``{"count": failed
    tasks of the current spec, "error": the latest one's}``; None when nothing is missing, nothing of the
    current spec failed, or for a job (its own counts)."""
    if service.spec.is_job or running >= desired:
        return None
    current = service.spec.template_hash()
    ended = (TaskState.FAILED, TaskState.REJECTED)
    failed = [
        t for t in tasks if (t.state in ended or stopped_unhealthy(t)) and t.template_hash in ("", current)
    ]
    if not failed:
        return None
    latest = max(failed, key=lambda t: t.state_at)
    return {"count": len(failed), "error": latest.error or latest.message or f"task {latest.state}"}


def job_view(state: ClusterState, service: Service, now: float) -> dict[str, Any] | None:
    """Progress of a job's current execution at ``now`` (None for a service). ``now`` is the clock's time,
    as the scheduler's: a slot whose restarts a ``window`` still counts at some past time may be
    restarted at ``now``, and ``failed`` counts only the slots the scheduler gives up on."""
    spec = service.spec
    if not spec.is_job:
        return None
    iteration = service.job_iteration
    tasks = list(state.tasks_of_service(service.service_id))
    progress = job_progress(spec, iteration, tasks, now)
    view: dict[str, Any] = {
        "iteration": iteration,
        "completed": progress.completed,
        "running": progress.running,
        "failed": progress.failed,
        "total": progress.total,
        "tasks_running": progress.tasks_running,  # Swarm's RunningTasks/DesiredTasks of a job
        "tasks_desired": progress.tasks_desired,
        "finished": progress.finished,
        "started_at": service.job.started_at or (service.created_at if iteration else None),
    }
    if spec.schedule is not None:
        view["schedule"] = spec.schedule.cron
        view["last_tick"] = service.job.cron_last_tick or None
        view["next_tick"] = spec.schedule.next_tick(service.cron_last_tick)
        view["missed_ticks"] = service.job.cron_missed
        view["skipped_ticks"] = service.job.cron_skipped
    return view
