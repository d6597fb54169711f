"""The cron controller: which cron jobs start an execution now, on the leader's clock (pure).

For every job with a schedule, ``plan_cron`` compares the committed ``job.cron_last_tick`` with ``now``:

- no tick in ``(last, now]``: nothing; the caller wakes at the next tick;
- otherwise only the latest due tick is handled (earlier ones are counted in ``cron_missed``): past the
  starting deadline it is missed too; under ``forbid`` while the current execution still runs it is
  skipped (``cron_skipped``); else it runs (``job.iteration`` + 1).

Each decision is one :class:`~p2porch.raft.commands.UpdateService`, conditional on the service version
read, that moves ``cron_last_tick`` to the tick; it commits before the execution's tasks exist (the
next scheduling round creates them). A leader that dies after the commit leaves a successor that sees
the tick done; one that dies before it leaves a successor that finds the tick due: a tick is neither
doubled nor skipped by a leader change. Never writes, never reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..model import Service
from ..model.jobspec import CronSchedule
from ..raft.commands import UpdateService
from ..raft.state import ClusterState
from ..scheduler.jobs import job_progress

RUN, SKIP, MISSED = "run", "skip", "missed"


@dataclass(frozen=True, slots=True)
class CronDecision:
    """What to write for one cron job (the tick handled), and what happened."""

    service: Service
    command: UpdateService
    tick: float
    action: str  # run | skip | missed
    missed: int  # ticks before ``tick`` that were never handled (a long leaderless gap)


@dataclass(slots=True)
class CronPlan:
    decisions: list[CronDecision]
    wake_at: float | None = None


def plan_cron(state: ClusterState, now: float) -> CronPlan:
    """The tick decisions due at ``now`` and the time of the next tick after them."""
    plan = CronPlan(decisions=[])
    for service in sorted(state.services.values(), key=lambda s: s.service_id):
        schedule = service.spec.schedule
        if schedule is None or not service.spec.is_job:
            continue
        decision = decide_tick(service, schedule, state, now)
        next_at = schedule.next_tick(decision.tick if decision is not None else service.cron_last_tick)
        plan.wake_at = next_at if plan.wake_at is None else min(plan.wake_at, next_at)
        if decision is not None:
            plan.decisions.append(decision)
    return plan


def decide_tick(
    service: Service, schedule: CronSchedule, state: ClusterState, now: float
) -> CronDecision | None:
    """The decision for one cron job at ``now``, or None when no tick is due."""
    tick, hidden = schedule.due_ticks(service.cron_last_tick, now)
    if tick is None:
        return None
    iteration = service.job_iteration
    job = replace(
        service.job, iteration=iteration, cron_last_tick=tick, cron_missed=service.job.cron_missed + hidden
    )
    if schedule.starting_deadline_s and now - tick > schedule.starting_deadline_s:
        action = MISSED
        job = replace(job, cron_missed=job.cron_missed + 1)
    elif schedule.concurrency == "forbid" and iteration > 0 and _running(service, state, now):
        action = SKIP
        job = replace(job, cron_skipped=job.cron_skipped + 1)
    else:
        action = RUN
        job = replace(job, iteration=iteration + 1, started_at=now)
    command = UpdateService.of(service, at=now, job=job)
    return CronDecision(service=service, command=command, tick=tick, action=action, missed=hidden)


def _running(service: Service, state: ClusterState, now: float) -> bool:
    """The current execution still runs (not every slot complete or failed for good)."""
    tasks = list(state.tasks_of_service(service.service_id))
    return not job_progress(service.spec, service.job_iteration, tasks, now).finished
