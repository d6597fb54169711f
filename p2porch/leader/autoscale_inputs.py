"""What the autoscaler loop feeds the recommender and writes back, derived from committed state (pure).

- :func:`policy_of`: a service's ``autoscale`` section as an :class:`AutoscalePolicy` (None: not autoscaled);
- :func:`service_usage`: the members' ``usage`` reports folded into one :class:`ServiceUsage` per service,
  as percent of each task's CPU/memory **limit**, or of its reservation when it has no limit (as the
  Kubernetes HPA uses requests); a task group's usage (all its containers) counts at most the sum of its
  main container's and sidecars' limits (:func:`usage_caps`);
- :func:`is_rolling`: whether a rolling update owns the service's task set;
- :func:`last_scale_at` and :func:`scale_command`: the committed record of the last autoscale step
  (``Service.autoscale_last``, written in the same ``update_service`` as ``replicas``).
No I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..model import AutoscaleStep, Service, ServiceSpec
from ..raft.commands import UpdateService
from ..raft.state import ClusterState
from .autoscale import AutoscalePolicy, Decision, ServiceUsage

__all__ = [
    "is_rolling",
    "last_scale_at",
    "limits_of",
    "policy_of",
    "scale_command",
    "service_usage",
    "usage_caps",
]

NANOS_PER_CPU = 1_000_000_000


def policy_of(spec: ServiceSpec) -> AutoscalePolicy | None:
    auto = spec.autoscale
    if auto is None or spec.mode != "replicated":
        return None
    return AutoscalePolicy(
        min_replicas=auto.min_replicas,
        max_replicas=auto.max_replicas,
        cpu_percent=auto.cpu_percent,
        memory_percent=auto.memory_percent,
        scale_up_delay_s=auto.scale_up_delay_s,
        scale_down_delay_s=auto.scale_down_delay_s,
    )


def limits_of(spec: ServiceSpec) -> tuple[float | None, int | None]:
    """(CPU cores, memory bytes) a task's usage is a percent of: its limit, else its reservation."""
    cpu_nanos = spec.limit_cpu_nanos or spec.reserve_cpu_nanos
    memory = spec.limit_memory_bytes or spec.reserve_memory_bytes
    return (cpu_nanos / NANOS_PER_CPU if cpu_nanos else None), (memory or None)


def _base(limit: int, reservation: int) -> str:
    """What a percent is of, for the autoscale text (as :func:`limits_of` picks it)."""
    return "reservation" if reservation and not limit else "limit"


def usage_caps(spec: ServiceSpec) -> tuple[float | None, int | None]:
    """(CPU cores, memory bytes) a task's measured usage counts at most: the sum of the main container's and
    every sidecar's limit (the usage a member reports sums all of a task's containers); None (no cap) when
    the main container or any sidecar has no limit for that metric. Init containers have finished by
    the time a task runs and are not counted."""
    members = (
        (spec.limit_cpu_nanos, spec.limit_memory_bytes),
        *((s.limit_cpu_nanos, s.limit_memory_bytes) for s in spec.sidecars),
    )
    cpus = [c for c, _ in members]
    memories = [m for _, m in members]
    cpu = sum(cpus) / NANOS_PER_CPU if all(cpus) else None
    memory = sum(memories) if all(memories) else None
    return cpu, memory


def is_rolling(state: ClusterState, service_id: str, spec: ServiceSpec) -> bool:
    """True while some task that should run still has an older template (a rolling update is under way)."""
    current = spec.template_hash()
    return any(
        t.desired_state == "running" and t.template_hash and t.template_hash != current
        for t in state.tasks_of_service(service_id)
    )


def service_usage(
    state: ClusterState,
    service_id: str,
    spec: ServiceSpec,
    reports: Mapping[str, Mapping[str, Any] | None],
) -> ServiceUsage | None:
    """One service's usage from the nodes' reports (``node id -> report``, None: the node did not answer).

    Counts the tasks Raft says run; a task reports when its node's report has it with a full window.
    The percent is the mean over reporting tasks; a metric without a limit or reservation is None."""
    running = [
        t
        for t in state.tasks_of_service(service_id)
        if t.desired_state == "running" and t.state == "running" and t.node_id
    ]
    if not running:
        return None
    rows: dict[str, Mapping[str, Any]] = {}
    window_s = 0.0
    for task in running:
        report = reports.get(task.node_id or "")
        if not report:
            continue
        window_s = max(window_s, float(report.get("window_s") or 0.0))
        for row in report.get("tasks") or ():
            if isinstance(row, Mapping) and row.get("task_id") == task.task_id and row.get("full"):
                rows[task.task_id] = row
    cpu_limit, memory_limit = limits_of(spec)
    cpu_cap, memory_cap = usage_caps(spec)

    def mean_percent(key: str, limit: float | None, cap: float | None) -> float | None:
        """The mean percent of ``limit``; with a ``cap`` (every container of the task has a limit) each
        task's usage counts at most the cap: a task cannot use more, and a window read a hair over it (CPU
        time accounted at the window's edges: 100.02 %) made 1 replica at "100 %" of a 50 % target 3,
        not 2. The cap is the group's limits' sum: a main container limited to 0.2 CPU beside a busy
        sidecar reads above 100 % of the main limit, as its load needs more replicas (review r52g)."""
        values = [r.get(key) for r in rows.values()]
        if not limit or not values or any(not isinstance(v, int | float) for v in values):
            return None
        used = [min(float(v), cap) if cap else float(v) for v in values if v is not None]
        return 100.0 * sum(used) / len(values) / limit

    return ServiceUsage(
        tasks_running=len(running),
        tasks_reporting=len(rows),
        window_s=window_s,
        cpu_percent=mean_percent("cpu_cores", cpu_limit, cpu_cap),
        memory_percent=mean_percent("memory_bytes", memory_limit, memory_cap),
        cpu_base=_base(spec.limit_cpu_nanos, spec.reserve_cpu_nanos),
        memory_base=_base(spec.limit_memory_bytes, spec.reserve_memory_bytes),
    )


def last_scale_at(service: Service) -> float:
    """When the autoscaler last changed this service's replicas (0: never), from committed state."""
    return service.autoscale_last.at if service.autoscale_last is not None else 0.0


def scale_command(service: Service, decision: Decision) -> UpdateService:
    """``update_service`` with ``replicas`` set to the decision and the step recorded with its inputs,
    conditional on the version read (as `service scale` writes a scale)."""
    step = AutoscaleStep(
        at=decision.at,
        from_replicas=decision.current,
        to_replicas=decision.desired,
        reason=decision.reason,
        inputs=tuple(sorted(decision.inputs.items())),
    )
    return UpdateService.of(
        service, at=decision.at, spec=replace(service.spec, replicas=decision.desired), autoscale_last=step
    )
