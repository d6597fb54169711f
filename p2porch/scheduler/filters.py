"""Placement requirements and the node filters (pure).

``Requirements`` is what one task asks of a node, derived once per service from its ``ServiceSpec``.
Each ``Filter`` answers one question about one node ("is it ready?", "is there memory left?") and returns
a short reason when the node is rejected; it never changes a node and never looks at other nodes.
Static filters depend only on node attributes; dynamic ones on what is already placed on the node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..model import Affinity, Availability, Constraint, NodeStatus, ServiceSpec, format_bytes, format_cpus
from ..model.placement import NODE_OS
from .nodeinfo import NodeInfo


@dataclass(frozen=True, slots=True)
class Requirements:
    """What every task of one service asks of the node it lands on."""

    service: str
    cpu_nanos: int = 0
    memory_bytes: int = 0
    host_ports: tuple[tuple[str, int], ...] = ()
    max_per_node: int = 0  # 0 = unlimited
    constraints: tuple[Constraint, ...] = ()
    preferences: tuple[str, ...] = ()  # node attributes to spread over, outermost first
    strategy: str = "spread"
    affinities: tuple[Affinity, ...] = ()
    min_engine: tuple[int, ...] = ()  # the oldest Docker release (major, minor) that runs it; () any

    @classmethod
    def from_spec(cls, spec: ServiceSpec) -> Requirements:
        return cls(
            service=spec.name,
            cpu_nanos=spec.placement_cpu_nanos,
            memory_bytes=spec.placement_memory_bytes,
            host_ports=spec.host_ports,
            max_per_node=spec.max_replicas_per_node,
            constraints=spec.constraints,
            preferences=tuple(p.attribute for p in spec.placement_preferences),
            strategy=spec.strategy,
            affinities=spec.affinities,
            min_engine=SUBPATH_ENGINE if uses_subpath(spec) else (),
        )


#: the first Docker release that mounts a volume's sub-directory (Engine API 1.45, VolumeOptions.Subpath)
SUBPATH_ENGINE = (26, 0)


def uses_subpath(spec: ServiceSpec) -> bool:
    """Whether a container of the task (the main one or a member of its group) mounts a volume's
    sub-directory, which an older engine would ignore, mounting the whole volume."""
    members = (*spec.sidecars, *spec.init_containers)
    mounts = (*spec.mounts, *(m for member in members for m in member.mounts))
    return any(m.type == "volume" and m.subpath for m in mounts)


def engine_release(version: str) -> tuple[int, int] | None:
    """``26.1.4`` -> ``(26, 1)``; None when the version is not known or not a release number."""
    major, _, rest = version.strip().partition(".")
    minor = rest.partition(".")[0].partition("-")[0]
    if not (major.isdigit() and minor.isdigit()):
        return None
    return int(major), int(minor)


def node_attribute(node: NodeInfo, attribute: str) -> str | None:
    """Value of ``node.id|name|hostname|role|platform.os`` or ``node.labels.KEY`` (None when the label is
    missing)."""
    if attribute.startswith("node.labels."):
        return node.labels.get(attribute[12:])
    if attribute == "node.id":
        return node.node_id
    if attribute == "node.name":
        return node.name
    if attribute == "node.hostname":
        return node.hostname
    if attribute == "node.role":
        return node.role
    if attribute == "node.platform.os":
        return NODE_OS
    return None


def constraint_matches(node: NodeInfo, constraint: Constraint) -> bool:
    """``==`` needs the attribute present and equal; ``!=`` holds when it is missing or different. Equal
    ignores case, as Swarm's (swarmkit's ``constraint.Match``: ``strings.EqualFold``)."""
    value = node_attribute(node, constraint.attribute)
    same = value is not None and value.casefold() == constraint.value.casefold()
    return same if constraint.op == "==" else not same


class Filter:
    """One step of the pipeline: ``reject`` returns a reason string, or None when the node passes."""

    name = "filter"
    static = True

    def applies(self, req: Requirements) -> bool:
        return True

    def reject(self, node: NodeInfo, req: Requirements) -> str | None:
        raise NotImplementedError


class ReadyFilter(Filter):
    """Only nodes whose status is ready, and not held while their daemon restarts (its tasks stay, it
    takes no new one)."""

    name = "ready"

    def reject(self, node: NodeInfo, req: Requirements) -> str | None:
        if node.status != NodeStatus.READY:
            return f"node {node.status}"
        return "node restarting" if node.restarting else None


class EngineFilter(Filter):
    """Only nodes whose Docker engine their agent reaches: a node without one cannot start a task."""

    name = "engine"

    def reject(self, node: NodeInfo, req: Requirements) -> str | None:
        return "engine unreachable" if node.engine_down else None


class EngineVersionFilter(Filter):
    """Only nodes whose Docker release runs what the task asks (a volume ``subpath`` needs Docker 26.0);
    a node whose version is not known yet passes (its agent still refuses such a task at start)."""

    name = "engine_version"

    def applies(self, req: Requirements) -> bool:
        return bool(req.min_engine)

    def reject(self, node: NodeInfo, req: Requirements) -> str | None:
        return engine_rejection(node, req.min_engine)


def engine_rejection(node: NodeInfo, min_engine: tuple[int, ...]) -> str | None:
    """Why ``node``'s engine is older than ``min_engine`` (None: it is not, or its version is unknown)."""
    release = engine_release(node.engine_version)
    if not min_engine or release is None or release >= min_engine:
        return None
    need = ".".join(map(str, min_engine))
    return f"engine {node.engine_version} older than {need} (volume subpath needs Docker {need}, API 1.45)"


class AvailabilityFilter(Filter):
    """Only nodes with availability active (not drain, not pause)."""

    name = "availability"

    def reject(self, node: NodeInfo, req: Requirements) -> str | None:
        return None if node.availability == Availability.ACTIVE else f"availability {node.availability}"


class ConstraintFilter(Filter):
    """Every constraint must hold; the first that fails is the reason."""

    name = "constraints"

    def applies(self, req: Requirements) -> bool:
        return bool(req.constraints)

    def reject(self, node: NodeInfo, req: Requirements) -> str | None:
        for c in req.constraints:
            if not constraint_matches(node, c):
                return f"constraint {c}"
        return None


class ResourceFilter(Filter):
    """Reserved CPU and memory must fit in what is left of the node's capacity."""

    name = "resources"
    static = False

    def applies(self, req: Requirements) -> bool:
        return req.cpu_nanos > 0 or req.memory_bytes > 0

    def reject(self, node: NodeInfo, req: Requirements) -> str | None:
        if req.cpu_nanos > node.cpu_nanos - node.reserved_cpu_nanos:
            return f"insufficient cpu (need {format_cpus(req.cpu_nanos)})"
        if req.memory_bytes > node.memory_bytes - node.reserved_memory_bytes:
            return f"insufficient memory (need {format_bytes(req.memory_bytes)})"
        return None


class HostPortFilter(Filter):
    """Published host ports must be free on the node."""

    name = "host_ports"
    static = False

    def applies(self, req: Requirements) -> bool:
        return bool(req.host_ports)

    def reject(self, node: NodeInfo, req: Requirements) -> str | None:
        for proto, port in req.host_ports:
            if (proto, port) in node.used_ports:
                return f"host port {port}/{proto} in use"
        return None


class MaxPerNodeFilter(Filter):
    """At most ``max_replicas_per_node`` tasks of the service on one node."""

    name = "max_per_node"
    static = False

    def applies(self, req: Requirements) -> bool:
        return req.max_per_node > 0

    def reject(self, node: NodeInfo, req: Requirements) -> str | None:
        if node.tasks_by_service.get(req.service, 0) >= req.max_per_node:
            return f"max replicas per node ({req.max_per_node})"
        return None


class AffinityFilter(Filter):
    """``affinity`` needs a task of the named service on the node; ``anti-affinity`` forbids one."""

    name = "affinity"
    static = False

    def applies(self, req: Requirements) -> bool:
        return bool(req.affinities)

    def reject(self, node: NodeInfo, req: Requirements) -> str | None:
        for aff in req.affinities:
            present = node.tasks_by_service.get(aff.service, 0) > 0
            if present != (aff.kind == "affinity"):
                return f"{aff.kind} service=={aff.service}"
        return None


#: The pipeline, in order: static filters first (their verdict never changes during one scheduling
#: pass), then dynamic ones (re-checked whenever a node is about to receive a task).
DEFAULT_FILTERS: tuple[Filter, ...] = (
    ReadyFilter(),
    EngineFilter(),
    EngineVersionFilter(),
    AvailabilityFilter(),
    ConstraintFilter(),
    ResourceFilter(),
    HostPortFilter(),
    MaxPerNodeFilter(),
    AffinityFilter(),
)


def first_rejection(
    node: NodeInfo, req: Requirements, filters: Sequence[Filter] = DEFAULT_FILTERS
) -> str | None:
    """Reason of the first filter that rejects ``node`` for ``req``; None if every filter passes."""
    for f in filters:
        if f.applies(req):
            reason = f.reject(node, req)
            if reason is not None:
                return reason
    return None


def static_rejection(node: NodeInfo, req: Requirements) -> str | None:
    """First reason among the static filters only (ready, availability, constraints)."""
    return first_rejection(node, req, [f for f in DEFAULT_FILTERS if f.static])
