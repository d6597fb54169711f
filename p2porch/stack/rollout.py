"""The order a stack is deployed in: waves given by ``depends_on`` and when a dependency is ready (pure).

Owns Compose's start order for a stack: a service is created after the services it depends on, and, when
the condition is ``service_healthy``, only once they are healthy (``service_started``: running or run to
completion; ``service_completed_successfully``: exited 0). The CLI
sends one deploy request per wave (each carrying every service of the earlier waves, so nothing is
pruned half-way) and waits between waves with :func:`dependency_ready`, failing at once when
:func:`dependency_failed` says a dependency never will be. No I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..model import NOT_RESTARTED
from .compose import StackDefinition, StackService


@dataclass(frozen=True)
class Wave:
    """Services to send (every service up to this wave) and the ``(service name, condition)`` pairs that
    must hold before sending it."""

    services: tuple[StackService, ...]
    wait_for: tuple[tuple[str, str], ...]


def deploy_waves(definition: StackDefinition) -> list[Wave]:
    """One wave per dependency level; a stack without ``depends_on`` is one wave."""
    by_short = {s.short_name: s for s in definition.services}
    level: dict[str, int] = {}
    for service in definition.services:  # dependencies first (load_stack's order)
        deps = [d for d in service.depends_on if d.service in by_short]
        level[service.short_name] = 1 + max((level[d.service] for d in deps), default=-1)
    waves: list[Wave] = []
    for current in range(max(level.values(), default=0) + 1):
        services = tuple(s for s in definition.services if level[s.short_name] <= current)
        waits: dict[str, str] = {}
        for service in definition.services:
            if level[service.short_name] != current:
                continue
            for dep in service.depends_on:
                if dep.service in by_short:
                    name = by_short[dep.service].name
                    if waits.get(name) != "service_healthy":
                        waits[name] = dep.condition
        waves.append(Wave(services, tuple(sorted(waits.items()))))
    return waves


def dependency_ready(
    service: str, condition: str, tasks: Sequence[Mapping[str, Any]], replicas: int, iteration: int = 0
) -> bool:
    """Whether ``service``'s tasks (``stack ps`` rows, history included) satisfy ``condition``.

    Only tasks of the dependency's current spec count (``up_to_date``; a job's, of its current execution
    ``iteration``): on a redeploy that updated it, what its previous spec ran (a migration of the old image
    that completed, a replaced task still running) satisfies nothing, as ``docker compose up`` waits for the
    recreated container. An unchanged dependency is not rewritten, so its tasks stay current and its
    earlier run holds (a redeploy never reruns a one-shot job whose spec did not change).

    ``service_started``: at least one task runs or has run to completion (a one-shot init job with
    ``restart: "no"`` that is already done: Compose waits for nothing once it started the container), or the
    service has no replicas; ``service_healthy``: ``replicas`` tasks run and none is unhealthy or still
    starting its health check; ``service_completed_successfully``: ``replicas`` tasks exited with code 0
    (state ``complete``)."""
    if replicas == 0:
        return True
    own = [
        t
        for t in tasks
        if t.get("service") == service
        and t.get("up_to_date", True)
        and (not iteration or t.get("job_iteration", 0) == iteration)
    ]
    completed = sum(1 for t in own if t.get("state") == "complete")
    if condition == "service_completed_successfully":
        return completed >= replicas
    running = [t for t in own if t.get("desired_state") == "running" and t.get("state") == "running"]
    if condition == "service_healthy":
        return len(running) >= replicas and all(t.get("health") in ("", "healthy", None) for t in running)
    return bool(running) or completed > 0


def dependency_failed(
    service: str, condition: str, tasks: Sequence[Mapping[str, Any]], job: Mapping[str, Any] | None = None
) -> str:
    """Why ``condition`` on ``service`` can no longer hold, or "" while it still may.

    ``service_completed_successfully`` can never hold once a slot of the dependency failed and its
    restart policy retries it no more: a task of its current spec (for a job, ``job`` the ``job`` object
    of its service view: of its current execution) that failed and was shut down ``not restarted: ...``
    (condition ``none``, or ``max_attempts`` used without a window), the scheduler's own final decision.
    Compose fails ``up`` at once when such a dependency exits non-zero; before, the deploy waited out
    ``--wait-timeout``. A policy that still retries (``on-failure`` without ``max_attempts``, or with a
    ``window`` it restarts after) is waited for. The reason names the latest such task of ``tasks``
    (``stack ps`` rows): its exit code, error and why it is not restarted."""
    if condition != "service_completed_successfully":
        return ""
    iteration = int(job.get("iteration") or 0) if job else 0
    failed = [
        t
        for t in tasks
        if t.get("service") == service
        and t.get("state") in ("failed", "rejected")
        and t.get("up_to_date", True)
        and (not iteration or t.get("job_iteration", 0) == iteration)
    ]
    final = [t for t in failed if str(t.get("message") or "").startswith(NOT_RESTARTED)]
    slots = len({t.get("slot") for t in final})
    if not slots:
        return ""
    latest = max(final, key=lambda t: float(t.get("state_at") or 0))
    code = latest.get("exit_code")
    parts = [
        f"exit code {code}" if code is not None else "",
        str(latest.get("error") or ""),
        latest["message"],
    ]
    detail = f" ({latest.get('name') or service}: {'; '.join(p for p in parts if p)})"
    return f"{service} did not complete successfully: {slots} of its tasks failed for good{detail}"
