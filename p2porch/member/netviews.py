"""Adapters from committed cluster state to network isolation and DNS scopes (pure).

Which network each task address is on: a task's networks are its service's (the default network when
it names none). Only tasks that hold an address and are not finished count, so an address freed by a
stopped task and reused by a new one belongs to the new one. No I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..agent.model import TERMINAL_STATES
from ..dns.scope import NetworkAlias, ScopeData
from ..netoverlay.netpolicy import Endpoint, PolicyInput
from ..raft.fsm_networks import DEFAULT_NETWORK
from ..raft.state import ClusterState
from ..stack.names import stack_dns_aliases


def service_networks(spec: Mapping[str, Any]) -> frozenset[str]:
    """The networks a service's tasks are on (the default network when its spec names none)."""
    names = [n["target"] for n in spec.get("networks") or () if isinstance(n, Mapping) and n.get("target")]
    return frozenset(names or (DEFAULT_NETWORK,))


def service_aliases(spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(network, alias)`` pairs a service answers to."""
    out = []
    for item in spec.get("networks") or ():
        if isinstance(item, Mapping) and isinstance(item.get("target"), str):
            out += [(item["target"], str(alias)) for alias in item.get("aliases") or ()]
    return out


def task_networks(state: ClusterState) -> dict[str, frozenset[str]]:
    """``address -> networks`` of every task that holds an address and has not finished."""
    nets = {sid: service_networks(svc.spec) for sid, svc in state.services.items()}
    out: dict[str, frozenset[str]] = {}
    for task in state.tasks.values():
        if not task.address or task.state in TERMINAL_STATES or task.service_id not in nets:
            continue
        out[task.address] = out.get(task.address, frozenset()) | nets[task.service_id]
    return out


def policy_input(state: ClusterState, node_id: str) -> PolicyInput | None:
    """The isolation rules' input for ``node_id`` (None until it has a lease)."""
    lease = state.leases.get(node_id)
    if lease is None or not state.cluster_cidr:
        return None
    internal = frozenset(n.name for n in state.networks.values() if n.internal)
    endpoints = tuple(Endpoint(a, nets) for a, nets in sorted(task_networks(state).items()))
    return PolicyInput(state.cluster_cidr, lease.subnet, endpoints, internal)


def dns_scopes(state: ClusterState) -> ScopeData:
    """Which services each network holds, their aliases there, and each task address's networks."""
    members: dict[str, set[str]] = {}
    aliases: list[NetworkAlias] = []
    owners: dict[str, str] = {}
    for svc in state.services.values():
        owners.update((short, svc.name) for short in stack_dns_aliases(svc.spec.get("labels")))
        for net in service_networks(svc.spec):
            members.setdefault(net, set()).add(svc.name)
        aliases += [NetworkAlias(net, alias, svc.name) for net, alias in service_aliases(svc.spec)]
    return ScopeData(
        services_by_network={n: frozenset(s) for n, s in members.items()},
        aliases=tuple(sorted(aliases)),
        clients=task_networks(state),
        owners=owners,
    )
