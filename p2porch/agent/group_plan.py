"""How a task group's extra containers shape its task's state (pure).

A task group is one task: its state is the main container's, except that a running task whose sidecar
exited, died or vanished has failed (the cluster replaces the whole group, as Kubernetes restarts a pod and
Nomad a task group), and its health is the worst of its long-running containers' health. Init containers
are the executor's business while the task starts (``DockerExecutor.start``); afterwards they only matter as
containers to remove with the task. This module never does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..model import TaskHealth
from .model import ObservedContainer, TaskAssignment

LIVE_STATUSES = frozenset({"running", "paused", "restarting"})
_HEALTH_ORDER = (TaskHealth.UNHEALTHY, TaskHealth.STARTING, TaskHealth.HEALTHY)


def group_failure(assignment: TaskAssignment, members: Sequence[ObservedContainer]) -> str:
    """Why a task whose main container runs has failed because of a sidecar; "" when every sidecar runs."""
    by_name = {c.member: c for c in members}
    for sidecar in assignment.sidecars:
        container = by_name.get(sidecar.name)
        if container is None:
            return f"sidecar {sidecar.name} no longer exists"
        if container.status in LIVE_STATUSES:
            continue
        if container.status == "created":
            return f"sidecar {sidecar.name} was created but never started"
        code = container.exit_code if container.exit_code is not None else -1
        why = " (killed: out of memory)" if container.oom_killed else ""
        error = f": {container.error}" if container.error else ""
        return f"sidecar {sidecar.name} exited with code {code}{why}{error}"
    return ""


def group_health(
    main: TaskHealth, members: Iterable[ObservedContainer], assignment: TaskAssignment
) -> TaskHealth:
    """The worst health among the main container and the running sidecars (no check = no opinion)."""
    sidecars = {s.name for s in assignment.sidecars}
    values = {main, *(c.health for c in members if c.member in sidecars and c.status in LIVE_STATUSES)}
    for health in _HEALTH_ORDER:
        if health in values:
            return health
    return TaskHealth.NONE
