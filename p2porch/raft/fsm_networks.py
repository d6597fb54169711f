"""FSM handlers for user-defined networks (pure): create one, remove one that no service uses, and the
check that a written service spec names only networks that exist.

A handler returns ``(state, value, [(kind, op, key, record)])`` and refuses with
ConfigError/ConflictError/NotFoundError, which :mod:`p2porch.raft.fsm` turns into error results.
Service specs are plain maps here (the FSM never imports the scheduler's spec model).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError, ConflictError, NotFoundError
from .state import ClusterState, NetworkRecord

DEFAULT_NETWORK = "p2porch"  # the same name as scheduler.netrefs.DEFAULT_NETWORK (raft cannot import it)
RESERVED_NAMES = frozenset({DEFAULT_NETWORK, "ingress", "host", "bridge", "none"})
DRIVERS = ("overlay",)
MAX_NETWORKS = 1000
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def _field(body: Mapping[str, Any], name: str, kind: type) -> Any:
    value = body.get(name)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ConfigError(f"field {name!r} is missing or not a {kind.__name__}", field=name)
    return value


def spec_network_names(spec: Mapping[str, Any]) -> list[str]:
    """The network names a plain service spec attaches to (empty: the default network)."""
    out = []
    for item in spec.get("networks") or ():
        if isinstance(item, Mapping) and isinstance(item.get("target"), str):
            out.append(item["target"])
    return out


def users_of(state: ClusterState, name: str) -> list[str]:
    """Names of the services attached to network ``name``."""
    return sorted(s.name for s in state.services.values() if name in spec_network_names(s.spec))


def check_service_networks(state: ClusterState, spec: Mapping[str, Any]) -> None:
    """Refuse a service spec that names a network that does not exist (NotFoundError naming it)."""
    for name in spec_network_names(spec):
        if name != DEFAULT_NETWORK and state.network_by_name(name) is None:
            raise NotFoundError(f"network {name!r} not found: create it first", field="networks")


def create_network(s: ClusterState, b: Mapping[str, Any], at: float, v: int) -> Any:
    network_id = _field(b, "network_id", str)
    name = _field(b, "name", str)
    if not _NAME_RE.match(name):
        raise ConfigError(
            f"{name!r} is not a network name (1-63 letters, digits, '_', '.', '-')", field="name"
        )
    if name in RESERVED_NAMES:
        raise ConfigError(f"network name {name!r} is reserved", field="name")
    driver = _field(b, "driver", str)
    if driver not in DRIVERS:
        raise ConfigError(f"driver must be one of {', '.join(DRIVERS)}", field="driver")
    labels = b.get("labels") or {}
    if not isinstance(labels, Mapping) or not all(
        isinstance(k, str) and isinstance(val, str) for k, val in labels.items()
    ):
        raise ConfigError("labels must map strings to strings", field="labels")
    if s.network_by_name(name) is not None:
        raise ConflictError(f"a network named {name!r} already exists", field="name")
    if network_id in s.networks:
        raise ConflictError(f"network id {network_id} already exists", field="network_id")
    if len(s.networks) >= MAX_NETWORKS:
        raise ConflictError(f"the cluster already has {MAX_NETWORKS} networks", field="name")
    record = NetworkRecord(
        network_id=network_id,
        name=name,
        driver=driver,
        internal=_field(b, "internal", bool),
        attachable=_field(b, "attachable", bool),
        labels=dict(labels),
        created_at=at,
        version=v,
    )
    networks = dict(s.networks)
    networks[network_id] = record
    return s.evolve(networks=networks, version=v), network_id, [("network", "put", network_id, record)]


def remove_network(s: ClusterState, b: Mapping[str, Any], at: float, v: int) -> Any:
    name = _field(b, "name", str)
    record = s.network_by_name(name)
    if record is None:
        raise NotFoundError(f"no network {name!r}", field="name")
    users = users_of(s, name)
    if users:
        raise ConflictError(f"network {name} is in use by service(s): {', '.join(users)}", field="name")
    networks = dict(s.networks)
    del networks[record.network_id]
    return s.evolve(networks=networks, version=v), name, [("network", "delete", record.network_id, None)]
