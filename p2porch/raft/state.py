"""Immutable replicated cluster state (pure).

``ClusterState`` holds the model's frozen records (``p2porch.model``: Node, Service, Task, SubnetLease,
SecretRecord);
the FSM builds a new state for every applied write and never mutates one in place, so a reader holding a
snapshot can never see it change. ``to_dict``/``from_dict`` give the plain snapshot form (``from_dict``
also reads snapshots written before the typed model). This module never does I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, TypeVar

from ..model import (
    AccessTokenRecord,
    NetworkRecord,
    Node,
    SecretRecord,
    Service,
    SubnetLease,
    Task,
    secret_key,
)
from ..model.records import frozen_map as _frozen_map
from .subnet_pool import SubnetPool
from .vips import allocate_vip

__all__ = [
    "EMPTY_STATE", "AccessTokenRecord", "ClusterState", "NetworkRecord", "Node", "SecretRecord", "Service",
    "SubnetLease", "Task", "secret_key",
]  # fmt: skip


K = TypeVar("K")
V = TypeVar("V")


def _index(records: Mapping[str, Any], attr: str) -> Mapping[str, str]:
    return MappingProxyType({getattr(r, attr): key for key, r in records.items()})


def copy_map(mapping: Mapping[K, V]) -> dict[K, V]:
    """A mutable copy of one of the state's maps. ``dict(proxy)`` walks a read-only proxy key by key
    (~12x slower at 4,000 entries); the proxy's own ``copy()`` copies the dict underneath in C."""
    if isinstance(mapping, MappingProxyType | dict):
        return mapping.copy()
    return dict(mapping)


def _names_after(
    index: Mapping[str, str], records: Mapping[str, Any], change: tuple[Any, Any] | None
) -> Mapping[str, str]:
    """The name index of ``records`` after ``change`` (old, new record) of one of them (None: rebuild)."""
    if change is None:
        return _index(records, "name")
    old, new = change
    if old is not None and new is not None and old.name == new.name:
        return index
    names = copy_map(index)
    if old is not None:
        names.pop(old.name, None)
    if new is not None:
        names[new.name] = new.service_id if isinstance(new, Service) else new.node_id
    return MappingProxyType(names)


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
    leader_epoch: int = 0  # the latest claimed leader epoch (a Raft term): older leader commands are refused
    nodes: Mapping[str, Node] = field(default_factory=dict)
    services: Mapping[str, Service] = field(default_factory=dict)
    tasks: Mapping[str, Task] = field(default_factory=dict)
    leases: Mapping[str, SubnetLease] = field(default_factory=dict)
    secrets: Mapping[str, SecretRecord] = field(default_factory=dict)  # secrets and configs by kind:name
    access_tokens: Mapping[str, AccessTokenRecord] = field(default_factory=dict)  # remote API tokens by name
    networks: Mapping[str, NetworkRecord] = field(default_factory=dict)  # user-defined networks by id
    _node_names: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    _service_names: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    _subnet_pool: SubnetPool | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in (
            "nodes", "services", "tasks", "leases", "key_envelopes", "secrets", "networks", "access_tokens"
        ):  # fmt: skip
            object.__setattr__(self, name, _frozen_map(getattr(self, name)))
        if len(self._node_names) != len(self.nodes):
            object.__setattr__(self, "_node_names", _index(self.nodes, "name"))
        if len(self._service_names) != len(self.services):
            object.__setattr__(self, "_service_names", _index(self.services, "name"))

    __hash__ = None  # type: ignore[assignment]

    @property
    def initialized(self) -> bool:
        return bool(self.cluster_id)

    def node_by_name(self, name: str) -> Node | None:
        node_id = self._node_names.get(name)
        return None if node_id is None else self.nodes[node_id]

    def service_by_name(self, name: str) -> Service | None:
        service_id = self._service_names.get(name)
        return None if service_id is None else self.services[service_id]

    def tasks_of_service(self, service_id: str) -> Iterator[Task]:
        return (t for t in self.tasks.values() if t.service_id == service_id)

    def tasks_on_node(self, node_id: str) -> Iterator[Task]:
        return (t for t in self.tasks.values() if t.node_id == node_id)

    def network_by_name(self, name: str) -> NetworkRecord | None:
        return next((n for n in self.networks.values() if n.name == name), None)

    def lease_of(self, node_id: str) -> SubnetLease | None:
        return self.leases.get(node_id)

    def subnet_pool(self) -> SubnetPool:
        """The lowest-free-subnet index of these leases (``raft/subnet_pool.py``): the one the FSM carried
        here, or built from the leases (and kept) when it describes other leases or another CIDR."""
        pool = self._subnet_pool
        if (
            pool is None
            or pool.of is not self.leases
            or pool.cidr != self.cluster_cidr
            or pool.prefix_len != self.subnet_prefix_len
        ):
            subnets = (lease.subnet for lease in self.leases.values())
            pool = SubnetPool.build(self.cluster_cidr, self.subnet_prefix_len, subnets, self.leases)
            object.__setattr__(self, "_subnet_pool", pool)  # a cache: same answer for every reader
        return pool

    def evolve(
        self,
        *,
        nodes: dict[str, Node] | None = None,
        services: dict[str, Service] | None = None,
        tasks: dict[str, Task] | None = None,
        leases: dict[str, SubnetLease] | None = None,
        secrets: dict[str, SecretRecord] | None = None,
        access_tokens: dict[str, AccessTokenRecord] | None = None,
        networks: dict[str, NetworkRecord] | None = None,
        node_change: tuple[Node | None, Node | None] | None = None,
        service_change: tuple[Service | None, Service | None] | None = None,
        lease_change: tuple[SubnetLease | None, SubnetLease | None] | None = None,
        **scalars: Any,
    ) -> ClusterState:
        """A new state with the given maps replaced (maps passed in are taken over, not copied).

        The name indexes are rebuilt from a replaced ``nodes``/``services`` map (O(n) Python calls) unless
        ``node_change``/``service_change`` says what changed: ``(old record, new record)`` of the one node
        or service put or deleted (None for no record on that side). The FSM passes it so a write
        costs one C-level copy of the index, not a rebuild. ``lease_change`` does the same for the subnet
        pool of a replaced ``leases`` map (without it the pool is built again when next asked for)."""
        changes: dict[str, Any] = dict(scalars)
        if nodes is not None:
            changes["nodes"] = MappingProxyType(nodes)
            changes["_node_names"] = _names_after(self._node_names, nodes, node_change)
        if services is not None:
            changes["services"] = MappingProxyType(services)
            changes["_service_names"] = _names_after(self._service_names, services, service_change)
        if tasks is not None:
            changes["tasks"] = MappingProxyType(tasks)
        if leases is not None:
            changes["leases"] = MappingProxyType(leases)
            changes["_subnet_pool"] = self._pool_after(changes["leases"], lease_change)
        if secrets is not None:
            changes["secrets"] = MappingProxyType(secrets)
        if access_tokens is not None:
            changes["access_tokens"] = MappingProxyType(access_tokens)
        if networks is not None:
            changes["networks"] = MappingProxyType(networks)
        return replace(self, **changes)

    def _pool_after(
        self, leases: Mapping[str, SubnetLease], change: tuple[SubnetLease | None, SubnetLease | None] | None
    ) -> SubnetPool | None:
        """The subnet pool of ``leases``, one ``change`` (old, new lease) away from this state's; None
        (built when asked for) without a change or a pool of this state's leases to start from."""
        pool = self._subnet_pool
        if change is None or pool is None or pool.of is not self.leases:
            return None
        old, new = change
        return pool.after(old.subnet if old else None, new.subnet if new else None, leases)

    def to_dict(self) -> dict[str, Any]:
        """The plain snapshot form; ``access_tokens`` and ``leader_epoch`` only when there are any, so a
        state without them encodes exactly as before they existed (version-1 ``restore_state`` bytes are
        unchanged)."""
        plain = {
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
        } | ({"networks": [r.to_dict() for r in self.networks.values()]} if self.networks else {})
        if self.access_tokens:
            plain["access_tokens"] = [r.to_dict() for r in self.access_tokens.values()]
        if self.leader_epoch:
            plain["leader_epoch"] = self.leader_epoch
        return plain

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClusterState:
        nodes = [Node.from_dict(d) for d in data.get("nodes", [])]
        services = fill_missing_vips([Service.from_dict(d) for d in data.get("services", [])])
        tasks = [Task.from_dict(d) for d in data.get("tasks", [])]
        leases = [SubnetLease.from_dict(d) for d in data.get("leases", [])]
        secrets = [SecretRecord.from_dict(d) for d in data.get("secrets", [])]
        tokens = [AccessTokenRecord.from_dict(d) for d in data.get("access_tokens", [])]
        networks = [NetworkRecord.from_dict(d) for d in data.get("networks", [])]
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
            leader_epoch=data.get("leader_epoch", 0),
            version=data.get("version", 0),
            nodes={n.node_id: n for n in nodes},
            services={s.service_id: s for s in services},
            tasks={t.task_id: t for t in tasks},
            leases={lease.node_id: lease for lease in leases},
            secrets={r.key: r for r in secrets},
            access_tokens={r.name: r for r in tokens},
            networks={r.network_id: r for r in networks},
        )


EMPTY_STATE = ClusterState()


def fill_missing_vips(services: list[Service]) -> list[Service]:
    """Services of a snapshot taken before VIPs existed get theirs as a replay of the log would: in creation
    order, each from its id's hash slot (identical unless two old services' slots collided)."""
    taken = [s.vip for s in services if s.vip]
    out = {s.service_id: s for s in services}
    for svc in sorted(services, key=lambda s: (s.created_at, s.service_id)):
        if not svc.vip and svc.spec.endpoint_mode == "vip":
            vip = allocate_vip(svc.service_id, taken)
            taken.append(vip)
            out[svc.service_id] = replace(svc, vip=vip)
    return [out[s.service_id] for s in services]
