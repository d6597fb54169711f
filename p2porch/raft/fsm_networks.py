"""FSM handlers for user-defined networks (pure): create one, remove one that no service uses, and the
check that a written service spec names only networks that exist.

A handler returns ``(state, value, [(kind, op, key, record)])`` and refuses with
ConfigError/ConflictError/NotFoundError, which :mod:`p2porch.raft.fsm` turns into error results (field
shapes were validated by the command decoders in ``commands_networks.py``).
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError, ConflictError, NotFoundError
from ..model import NetworkRecord, ServiceSpec
from ..model.netrefs import DEFAULT_NETWORK, HOST_NETWORK, NETWORK_NAME_RE, RESERVED_NETWORK_NAMES
from .commands_networks import CreateNetwork, RemoveNetwork
from .state import ClusterState

MAX_NETWORKS = 1000

__all__ = [
    "DEFAULT_NETWORK",
    "check_service_networks",
    "create_network",
    "missing_network",
    "network_refusal",
    "remove_network",
    "spec_network_names",
    "users_of",
]


def spec_network_names(spec: ServiceSpec) -> list[str]:
    """The network names a service spec attaches to (empty: the default network)."""
    return [n.target for n in spec.networks]


def users_of(state: ClusterState, name: str) -> list[str]:
    """Names of the services attached to network ``name``."""
    return sorted(s.name for s in state.services.values() if name in spec_network_names(s.spec))


def missing_network(state: ClusterState, spec: ServiceSpec, already: ServiceSpec | None = None) -> str | None:
    """The first network a service spec names that does not exist (None: all do); the default and the
    host network always do. Networks the service was ``already`` on are not checked again: an update of
    other fields always applies."""
    kept = set(spec_network_names(already)) if already is not None else set()
    for name in spec_network_names(spec):
        if name not in (DEFAULT_NETWORK, HOST_NETWORK, *kept) and state.network_by_name(name) is None:
            return name
    return None


def check_service_networks(
    state: ClusterState, spec: ServiceSpec, already: ServiceSpec | None = None
) -> None:
    """Refuse a service spec that names a network that does not exist (NotFoundError naming it; see
    :func:`missing_network`)."""
    name = missing_network(state, spec, already)
    if name is not None:
        raise NotFoundError(f"network {name!r} not found: create it first", field="networks")


def network_refusal(state: ClusterState, spec: ServiceSpec, already: ServiceSpec) -> str | None:
    """Why :func:`check_service_networks` would refuse a rollback from ``already`` to ``spec`` (a network
    of the rollback point removed since), None when it would not: the leader pauses such a rollback."""
    name = missing_network(state, spec, already)
    return None if name is None else f"its previous spec's network {name!r} no longer exists"


def create_network(s: ClusterState, c: CreateNetwork, v: int) -> Any:
    if not NETWORK_NAME_RE.match(c.name):
        raise ConfigError(
            f"{c.name!r} is not a network name (1-63 letters, digits, '_', '.', '-')", field="name"
        )
    if c.name in RESERVED_NETWORK_NAMES:
        raise ConfigError(f"network name {c.name!r} is reserved", field="name")
    if s.network_by_name(c.name) is not None:
        raise ConflictError(f"a network named {c.name!r} already exists", field="name")
    if c.network_id in s.networks:
        raise ConflictError(f"network id {c.network_id} already exists", field="network_id")
    if len(s.networks) >= MAX_NETWORKS:
        raise ConflictError(f"the cluster already has {MAX_NETWORKS} networks", field="name")
    record = NetworkRecord(
        network_id=c.network_id,
        name=c.name,
        driver=c.driver,
        internal=c.internal,
        attachable=c.attachable,
        labels=dict(c.labels),
        created_at=c.at,
        version=v,
    )
    networks = dict(s.networks)
    networks[c.network_id] = record
    return s.evolve(networks=networks, version=v), c.network_id, [("network", "put", c.network_id, record)]


def remove_network(s: ClusterState, c: RemoveNetwork, v: int) -> Any:
    record = s.network_by_name(c.name)
    if record is None:
        raise NotFoundError(f"no network {c.name!r}", field="name")
    users = users_of(s, c.name)
    if users:
        raise ConflictError(f"network {c.name} is in use by service(s): {', '.join(users)}", field="name")
    networks = dict(s.networks)
    del networks[record.network_id]
    return s.evolve(networks=networks, version=v), c.name, [("network", "delete", record.network_id, None)]
