"""The cron controller: which cron jobs start an execution now, on the leader's clock (pure).

For every job with a schedule, ``plan_cron`` compares the committed ``cron_last_tick`` with ``now``:

- no tick in ``(last, now]``: nothing; the caller wakes at the next tick;
- otherwise only the latest due tick is handled (earlier ones are counted in ``cron_missed``): past the
  starting deadline it is missed too; under ``forbid`` while the current execution still runs it is
  skipped (``cron_skipped``); else it runs (``job_iteration`` + 1).

Each decision is one conditional spec write that moves ``cron_last_tick`` to the tick, committed
before the execution's tasks exist (the next scheduling round creates them). A leader that dies after
the commit leaves a successor that sees the tick done; one that dies before it leaves a successor that
finds the tick due: a tick is neither doubled nor skipped by a leader change. Never writes, never reads
a clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..raft.state import ClusterState, ServiceRecord
from ..scheduler.jobs import job_progress
from ..scheduler.jobspec import CronSchedule, is_job_mode
from .scheduling import service_spec

RUN, SKIP, MISSED = "run", "skip", "missed"


@dataclass(frozen=True, slots=True)
class CronDecision:
    """What to write for one cron job: its stored spec with the tick handled, and what happened."""

    service: ServiceRecord
    spec: dict[str, Any]
    tick: float
    action: str  # run | skip | missed
    missed: int  # ticks before ``tick`` that were never handled (a long leaderless gap)


@dataclass(slots=True)
class CronPlan:
    decisions: list[CronDecision]
    wake_at: float | None = None


def _count(stored: Any, key: str) -> int:
    value = stored.get(key, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def plan_cron(state: ClusterState, now: float) -> CronPlan:
    """The tick decisions due at ``now`` and the time of the next tick after them.

    Reads only the stored schedule (canonical, as ``ServiceSpec.to_dict`` wrote it) of each job; the
    whole spec is validated only when the ``forbid`` policy must look at the running execution (the
    scheduling round reports invalid specs)."""
    plan = CronPlan(decisions=[])
    for service in sorted(state.services.values(), key=lambda s: s.service_id):
        schedule = stored_schedule(service)
        if schedule is None:
            continue
        decision = decide_tick(service, schedule, state, now)
        next_at = schedule.next_tick(decision.tick if decision is not None else _last_tick(service))
        plan.wake_at = next_at if plan.wake_at is None else min(plan.wake_at, next_at)
        if decision is not None:
            plan.decisions.append(decision)
    return plan


def stored_schedule(service: ServiceRecord) -> CronSchedule | None:
    """The schedule of a stored job spec, None for anything else (or a schedule that does not validate)."""
    raw = service.spec.get("schedule")
    if not isinstance(raw, Mapping) or not is_job_mode(str(service.spec.get("mode"))):
        return None
    try:
        return CronSchedule(**dict(raw))
    except (ConfigError, TypeError, ValueError):
        return None


def _last_tick(service: ServiceRecord) -> float:
    value = service.spec.get("cron_last_tick")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return service.created_at


def _running(service: ServiceRecord, state: ClusterState, iteration: int, now: float) -> bool:
    """The current execution still runs (or its spec does not validate: then nothing is started)."""
    try:
        spec = service_spec(service.spec)
    except (ConfigError, TypeError, ValueError, KeyError, AttributeError):
        return True
    tasks = list(state.tasks_of_service(service.service_id))
    return not job_progress(spec, iteration, tasks, now).finished


def decide_tick(
    service: ServiceRecord, schedule: CronSchedule, state: ClusterState, now: float
) -> CronDecision | None:
    """The decision for one cron job at ``now``, or None when no tick is due."""
    tick, hidden = schedule.due_ticks(_last_tick(service), now)
    if tick is None:
        return None
    stored = dict(service.spec)
    stored["cron_last_tick"] = tick
    missed = _count(stored, "cron_missed") + hidden
    iteration = _count(stored, "job_iteration")
    if schedule.starting_deadline_s and now - tick > schedule.starting_deadline_s:
        action = MISSED
        missed += 1
    elif schedule.concurrency == "forbid" and iteration > 0 and _running(service, state, iteration, now):
        action = SKIP
        stored["cron_skipped"] = _count(stored, "cron_skipped") + 1
    else:
        action = RUN
        stored["job_iteration"] = iteration + 1
        stored["job_started_at"] = now
    if missed:
        stored["cron_missed"] = missed
    return CronDecision(service=service, spec=stored, tick=tick, action=action, missed=hidden)
