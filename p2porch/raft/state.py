"""Immutable replicated cluster state (pure).

``ClusterState`` and its records are frozen; the FSM builds a new state for every applied write and
never mutates one in place, so a reader holding a snapshot can never see it change. Every record
converts to and from plain dicts (``to_dict``/``from_dict``) for msgpack. This module never does I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

NODE_ROLES = ("voter", "replica")
NODE_AVAILABILITIES = ("active", "drain", "pause")
NODE_STATUSES = ("joining", "ready", "down", "left")  # joining: until gossip first sees it alive

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _frozen_map(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if not value:
        return _EMPTY
    if isinstance(value, MappingProxyType):
        return value
    return MappingProxyType(dict(value))


def _plain(value: Any) -> Any:
    """Deep-convert read-only mappings back to dicts for msgpack."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class _Record:
    """to_dict/from_dict shared by every record dataclass."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Any:
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True, slots=True)
class NodeRecord(_Record):
    """One cluster member as committed in Raft; ``version`` is the state version of its last change."""

    node_id: str
    name: str
    addr: str
    raft_port: int
    gossip_port: int
    role: str = "replica"
    availability: str = "active"
    labels: Mapping[str, str] = field(default_factory=dict)
    cpu_nanos: int = 0
    memory_bytes: int = 0
    status: str = "ready"
    joined_at: float = 0.0
    version: int = 0
    status_at: float = 0.0  # when ``status`` last changed (down since ...)
    key_pub: str = ""  # the node's X25519 public key (base64): key rotations seal the new key to it

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", _frozen_map(self.labels))

    @property
    def raft_addr(self) -> str:
        return f"{self.addr}:{self.raft_port}"


@dataclass(frozen=True, slots=True)
class ServiceRecord(_Record):
    """A service; ``spec`` is opaque here (the scheduler package validates it)."""

    service_id: str
    name: str
    spec: Mapping[str, Any] = field(default_factory=dict)
    version: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    vip: str = ""  # endpoint_mode vip: the service's virtual address, allocated by the FSM (raft/vips.py)

    def __post_init__(self) -> None:
        object.__setattr__(self, "spec", _frozen_map(self.spec))


@dataclass(frozen=True, slots=True)
class TaskRecord(_Record):
    """One replica slot of a service, possibly assigned to a node."""

    task_id: str
    service_id: str
    slot: int
    node_id: str | None = None
    desired_state: str = "running"
    state: str = "new"
    state_at: float = 0.0
    error: str = ""
    container_id: str = ""
    address: str = ""
    message: str = ""
    version: int = 0
    # Orchestration bookkeeping (written by the leader's scheduling loop and the agents).
    spec_version: int = 0  # service version the task was created for
    template_hash: str = ""  # hash of the container-shaping spec fields; differs -> outdated task
    created_at: float = 0.0
    started_at: float = 0.0  # first observed running (0 = never)
    health: str = ""  # "" (no check) | starting | healthy | unhealthy
    exit_code: int | None = None
    restart_history: tuple[float, ...] = ()  # times this slot was restarted after a task ended
    stop_grace_s: float = 10.0  # SIGTERM-to-SIGKILL time, kept here so it outlives its service
    move_to: str | None = None  # rebalance target node: a replacement starts there, then this task stops
    move_at: float = 0.0  # when the rebalance asked for that move

    def __post_init__(self) -> None:
        object.__setattr__(self, "restart_history", tuple(self.restart_history))


@dataclass(frozen=True, slots=True)
class SubnetLease(_Record):
    """The overlay subnet (CIDR text) leased to one node."""

    node_id: str
    subnet: str
    version: int = 0


@dataclass(frozen=True, slots=True)
class SecretRecord(_Record):
    """A secret or config and its sealed versions (ciphertext only: ``vault`` seals, nodes open).

    ``versions`` holds maps ``{version, sealed, digest, size, created_at}``, oldest first; the last one
    is current. ``key`` in the state map is ``"<kind>:<name>"``."""

    kind: str
    name: str
    object_id: str
    versions: tuple[Mapping[str, Any], ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0
    version: int = 0  # state version of its last change

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", _frozen_map(self.labels))
        object.__setattr__(self, "versions", tuple(_frozen_map(v) for v in self.versions))

    @property
    def key(self) -> str:
        return secret_key(self.kind, self.name)

    @property
    def current(self) -> int:
        return int(self.versions[-1]["version"]) if self.versions else 0

    def sealed_version(self, version: int) -> Mapping[str, Any] | None:
        return next((v for v in self.versions if v["version"] == version), None)


def secret_key(kind: str, name: str) -> str:
    return f"{kind}:{name}"


def _index(records: Mapping[str, Any], attr: str) -> Mapping[str, str]:
    return MappingProxyType({getattr(r, attr): key for key, r in records.items()})


@dataclass(frozen=True)
class ClusterState:
    """The whole replicated state at one ``version`` (0 = empty, before init_cluster).

    Maps are read-only (keyed by id); ``node_by_name``/``service_by_name`` are O(1) through name
    indexes kept beside the maps. Build new states with :meth:`evolve`, never by mutation.
    """

    cluster_id: str = ""
    domain: str = ""
    cluster_cidr: str = ""
    subnet_prefix_len: int = 24
    created_at: float = 0.0
    version: int = 0
    join_token: str = ""  # the current join token after a rotation ("" = the cluster token)
    generation: int = 0  # bumped by each forced recovery (a new Raft log restored from one node's state)
    founded_at_version: int = 0  # state version the recovering node had when it founded this generation
    key_epoch: int = 0  # the cluster key epoch (bumped by each key rotation)
    key_envelopes: Mapping[str, str] = field(default_factory=dict)  # node id -> this epoch's key sealed to it
    nodes: Mapping[str, NodeRecord] = field(default_factory=dict)
    services: Mapping[str, ServiceRecord] = field(default_factory=dict)
    tasks: Mapping[str, TaskRecord] = field(default_factory=dict)
    leases: Mapping[str, SubnetLease] = field(default_factory=dict)
    secrets: Mapping[str, SecretRecord] = field(default_factory=dict)  # secrets and configs by kind:name
    _node_names: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    _service_names: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("nodes", "services", "tasks", "leases", "key_envelopes", "secrets"):
            object.__setattr__(self, name, _frozen_map(getattr(self, name)))
        if len(self._node_names) != len(self.nodes):
            object.__setattr__(self, "_node_names", _index(self.nodes, "name"))
        if len(self._service_names) != len(self.services):
            object.__setattr__(self, "_service_names", _index(self.services, "name"))

    __hash__ = None  # type: ignore[assignment]

    @property
    def initialized(self) -> bool:
        return bool(self.cluster_id)

    def node_by_name(self, name: str) -> NodeRecord | None:
        node_id = self._node_names.get(name)
        return None if node_id is None else self.nodes[node_id]

    def service_by_name(self, name: str) -> ServiceRecord | None:
        service_id = self._service_names.get(name)
        return None if service_id is None else self.services[service_id]

    def tasks_of_service(self, service_id: str) -> Iterator[TaskRecord]:
        return (t for t in self.tasks.values() if t.service_id == service_id)

    def tasks_on_node(self, node_id: str) -> Iterator[TaskRecord]:
        return (t for t in self.tasks.values() if t.node_id == node_id)

    def lease_of(self, node_id: str) -> SubnetLease | None:
        return self.leases.get(node_id)

    def evolve(
        self,
        *,
        nodes: dict[str, NodeRecord] | None = None,
        services: dict[str, ServiceRecord] | None = None,
        tasks: dict[str, TaskRecord] | None = None,
        leases: dict[str, SubnetLease] | None = None,
        secrets: dict[str, SecretRecord] | None = None,
        **scalars: Any,
    ) -> ClusterState:
        """A new state with the given maps replaced (maps passed in are taken over, not copied)."""
        changes: dict[str, Any] = dict(scalars)
        if nodes is not None:
            changes["nodes"] = MappingProxyType(nodes)
            changes["_node_names"] = _index(nodes, "name")
        if services is not None:
            changes["services"] = MappingProxyType(services)
            changes["_service_names"] = _index(services, "name")
        if tasks is not None:
            changes["tasks"] = MappingProxyType(tasks)
        if leases is not None:
            changes["leases"] = MappingProxyType(leases)
        if secrets is not None:
            changes["secrets"] = MappingProxyType(secrets)
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster_id": self.cluster_id,
            "domain": self.domain,
            "cluster_cidr": self.cluster_cidr,
            "subnet_prefix_len": self.subnet_prefix_len,
            "created_at": self.created_at,
            "version": self.version,
            "join_token": self.join_token,
            "generation": self.generation,
            "founded_at_version": self.founded_at_version,
            "key_epoch": self.key_epoch,
            "key_envelopes": dict(self.key_envelopes),
            "nodes": [r.to_dict() for r in self.nodes.values()],
            "services": [r.to_dict() for r in self.services.values()],
            "tasks": [r.to_dict() for r in self.tasks.values()],
            "leases": [r.to_dict() for r in self.leases.values()],
            "secrets": [r.to_dict() for r in self.secrets.values()],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClusterState:
        nodes = [NodeRecord.from_dict(d) for d in data.get("nodes", [])]
        services = [ServiceRecord.from_dict(d) for d in data.get("services", [])]
        tasks = [TaskRecord.from_dict(d) for d in data.get("tasks", [])]
        leases = [SubnetLease.from_dict(d) for d in data.get("leases", [])]
        secrets = [SecretRecord.from_dict(d) for d in data.get("secrets", [])]
        return cls(
            cluster_id=data.get("cluster_id", ""),
            domain=data.get("domain", ""),
            cluster_cidr=data.get("cluster_cidr", ""),
            subnet_prefix_len=data.get("subnet_prefix_len", 24),
            created_at=data.get("created_at", 0.0),
            join_token=data.get("join_token", ""),
            generation=data.get("generation", 0),
            founded_at_version=data.get("founded_at_version", 0),
            key_epoch=data.get("key_epoch", 0),
            key_envelopes=dict(data.get("key_envelopes") or {}),
            version=data.get("version", 0),
            nodes={n.node_id: n for n in nodes},
            services={s.service_id: s for s in services},
            tasks={t.task_id: t for t in tasks},
            leases={lease.node_id: lease for lease in leases},
            secrets={r.key: r for r in secrets},
        )


EMPTY_STATE = ClusterState()
