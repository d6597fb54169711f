"""A job's bookkeeping (:class:`~p2porch.model.records.JobStatus`) when its service is updated (pure).

A created job has none (``Service.job_iteration``: a plain job runs execution 1, a cron job waits for
its first tick after its creation). A plain job starts a new execution on every `service update` (as
Swarm does) and on ``--force``; a cron job only on ``--force`` (its ticks start the others), keeping its
last tick. A service that is not a job carries none. This module never writes anything.
"""

from __future__ import annotations

from dataclasses import replace

from ..model import Service, ServiceSpec
from ..model.records import JobStatus


def updated_job(service: Service, new: ServiceSpec, now: float, *, force: bool) -> JobStatus:
    """Bookkeeping of ``service`` once its spec becomes ``new`` at ``now``."""
    if not new.is_job:
        return JobStatus()
    job = service.job
    if force or new.schedule is None:
        job = replace(job, iteration=service.job_iteration + 1, started_at=now)
    if new.schedule is not None and not job.cron_last_tick:
        job = replace(job, cron_last_tick=now, iteration=service.job_iteration)
    return job
