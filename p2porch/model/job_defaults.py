"""What a create stores for a job spec the user left a field of unset (pure).

It owns the defaults docker/cli fills in at create and never touches a stored spec: a record keeps the
meaning it was written with (``max_concurrent`` 0 there still follows ``replicas``).
"""

from __future__ import annotations

from dataclasses import replace

from .spec import ServiceSpec

__all__ = ["with_job_defaults"]


def with_job_defaults(spec: ServiceSpec) -> ServiceSpec:
    """``spec`` as a create stores it: a replicated-job's ``max_concurrent`` not given is its ``replicas``,
    as docker/cli stores MaxConcurrent for ``service create`` and a stack's replicated-job, so a later
    ``service scale`` changes the completions, not the tasks at once (review r52g)."""
    if spec.mode == "replicated-job" and not spec.max_concurrent:
        return replace(spec, max_concurrent=spec.replicas)
    return spec
