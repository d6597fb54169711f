"""Job bookkeeping kept in a stored service spec beside the user's fields (pure).

A job service's stored spec carries ``job_iteration`` (the current execution; tasks carry the one they
belong to), ``job_started_at`` (when it started), and for a cron job ``cron_last_tick`` (the last tick
handled: run, skipped or missed; committed before its execution starts), ``cron_missed`` and
``cron_skipped`` (counters shown by ``service inspect``). This module names those keys and reads them;
it never writes anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..scheduler import ServiceSpec

JOB_BOOKKEEPING_KEYS = ("job_iteration", "job_started_at", "cron_last_tick", "cron_missed", "cron_skipped")


def job_iteration_of(stored: Mapping[str, Any], spec: ServiceSpec) -> int:
    """The current execution of a job (0: none yet, a cron job before its first tick; 0 for a service)."""
    if not spec.is_job:
        return 0
    value = stored.get("job_iteration")
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return 0 if spec.schedule is not None else 1


def initial_job_fields(spec: ServiceSpec, now: float) -> dict[str, Any]:
    """Bookkeeping of a job created at ``now``: a plain job starts execution 1 at once; a cron job waits
    for its first tick after ``now``."""
    if not spec.is_job:
        return {}
    if spec.schedule is not None:
        return {"job_iteration": 0, "cron_last_tick": now}
    return {"job_iteration": 1, "job_started_at": now}


def carried_job_fields(
    current: Mapping[str, Any], old: ServiceSpec, new: ServiceSpec, now: float, *, force: bool
) -> dict[str, Any]:
    """Bookkeeping of a job after `service update`: a plain job starts a new execution on every update
    (as Swarm does) and on ``--force``; a cron job only on ``--force`` (its ticks start the others) and
    keeps its last tick. A service that is not a job carries none."""
    if not new.is_job:
        return {}
    kept = {k: current[k] for k in JOB_BOOKKEEPING_KEYS if k in current}
    iteration = job_iteration_of(current, old)
    if force or new.schedule is None:
        kept["job_iteration"] = iteration + 1
        kept["job_started_at"] = now
    if new.schedule is not None and "cron_last_tick" not in kept:
        kept["cron_last_tick"] = now
    return kept
