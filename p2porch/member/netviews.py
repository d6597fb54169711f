"""Adapters from committed cluster state to network isolation and DNS scopes (pure).

Which network each task address is on: a task's networks are its service's (the default network when
it names none). Only tasks that hold an address and are not finished count, so an address freed by a
stopped task and reused by a new one belongs to the new one. No I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

from ..dns.scope import NetworkAlias, ScopeData
from ..model import TERMINAL_STATES, ServiceSpec
from ..model.netrefs import attached_networks
from ..netoverlay.netpolicy import PolicyInput
from ..raft.state import ClusterState
from ..stack.names import STACK_LABEL, stack_dns_aliases, stack_membership, stack_network_alias


def service_networks(spec: ServiceSpec) -> frozenset[str]:
    """The networks a service's tasks are on (the default network when its spec names none)."""
    return frozenset(attached_networks(spec.networks))


def service_aliases(spec: ServiceSpec) -> list[tuple[str, str]]:
    """``(network, alias)`` pairs a service answers to: its networks' aliases, and a stack member's short
    name on each of its networks (as ``docker stack deploy`` adds it, so ``tasks.<short>`` answers)."""
    return _aliases(spec, service_networks(spec), spec.labels_dict())


def _aliases(spec: ServiceSpec, networks: frozenset[str], labels: Mapping[str, str]) -> list[tuple[str, str]]:
    """`service_aliases` from the service's networks and labels (read once by `dns_scopes`)."""
    pairs = {(n.target, alias) for n in spec.networks for alias in n.aliases}
    short = stack_network_alias(labels)
    if short is not None:
        pairs.update((net, short) for net in networks)
    return sorted(pairs)


def task_networks(state: ClusterState) -> dict[str, frozenset[str]]:
    """``address -> networks`` of every task that holds an address and has not finished."""
    nets = {sid: service_networks(svc.spec) for sid, svc in state.services.items()}
    out: dict[str, frozenset[str]] = {}
    for task in state.tasks.values():
        if not task.address or task.state in TERMINAL_STATES or task.service_id not in nets:
            continue
        out[task.address] = out.get(task.address, frozenset()) | nets[task.service_id]
    return out


def policy_input(
    state: ClusterState, node_id: str, clients: Mapping[str, frozenset[str]] | None = None
) -> PolicyInput | None:
    """The isolation rules' input for ``node_id`` (None until it has a lease); ``clients``: the state's
    ``task_networks`` when the caller keeps them (``TaskNetworkIndex``), else computed here. The mapping
    is passed as it is (``PolicyInput.addresses``)."""
    lease = state.leases.get(node_id)
    if lease is None or not state.cluster_cidr:
        return None
    internal = frozenset(n.name for n in state.networks.values() if n.internal)
    clients = task_networks(state) if clients is None else clients
    return PolicyInput(state.cluster_cidr, lease.subnet, clients, internal)


def dns_scopes(
    state: ClusterState,
    clients: Mapping[str, frozenset[str]] | None = None,
    addresses_of: Callable[[str], Iterable[str]] | None = None,
) -> ScopeData:
    """Which services each network holds, their aliases there, each task address's networks (``clients``:
    the state's ``task_networks`` when the caller keeps them, else computed here), and the links of each
    service with the addresses of its tasks (``addresses_of(service_id)``: a ``TaskNetworkIndex``'s, O(its
    tasks); else one walk over the tasks, only when some service has links).

    The aliases come in the order a scope tries them (the first on a task's networks takes a name, with
    every other holder of it on that network: `scope.scoped_zone`): those
    on a network of the service's own stack first, so where two stacks' ``web`` share an external network
    (a proxy's), a task of either stack on its own network too gets its own stack's ``web``; then by
    network, alias and service name."""
    base, linking = _services_part(state)
    return _with_clients(state, base, linking, clients, addresses_of)


class DnsScopes:
    """``dns_scopes`` over successive states (pure): the services' part (networks' members, aliases,
    owners, links) is made again only when the state's services or networks map is another object (they
    are immutable and replaced on every change of theirs), so a burst of task reports costs the clients
    and the linkers alone, not a walk over every service (issue 19). Equal to ``dns_scopes`` (tested)."""

    def __init__(self) -> None:
        self._maps: tuple[object, object] | None = None  # the services and networks maps of _base
        self._base = ScopeData()
        self._linking: dict[str, str] = {}

    def update(
        self,
        state: ClusterState,
        clients: Mapping[str, frozenset[str]] | None = None,
        addresses_of: Callable[[str], Iterable[str]] | None = None,
    ) -> ScopeData:
        maps = self._maps
        if maps is None or maps[0] is not state.services or maps[1] is not state.networks:
            self._base, self._linking = _services_part(state)
            self._maps = (state.services, state.networks)
        return _with_clients(state, self._base, self._linking, clients, addresses_of)


def _with_clients(
    state: ClusterState,
    base: ScopeData,
    linking: Mapping[str, str],
    clients: Mapping[str, frozenset[str]] | None,
    addresses_of: Callable[[str], Iterable[str]] | None,
) -> ScopeData:
    return replace(
        base,
        clients=task_networks(state) if clients is None else clients,
        linkers=_linkers(state, linking, addresses_of) if linking else {},
    )


def _services_part(state: ClusterState) -> tuple[ScopeData, dict[str, str]]:
    """``dns_scopes`` without its clients and linkers (a function of the services and networks maps),
    and the services with links (id -> name)."""
    members: dict[str, set[str]] = {}
    aliases: list[NetworkAlias] = []
    own: set[NetworkAlias] = set()  # the aliases on a network of their service's own stack
    stack_of_network = {n.name: n.labels.get(STACK_LABEL) for n in state.networks.values()}
    owners: dict[str, str] = {}
    links: dict[str, tuple[tuple[str, str], ...]] = {}
    linking: dict[str, str] = {}  # service id -> name, of the services with links
    for sid, svc in state.services.items():
        labels = svc.spec.labels_dict()  # read once: the stack names and the network aliases come from it
        member = stack_membership(labels)
        if member is not None:
            owners.update((short, svc.name) for short in stack_dns_aliases(labels))
        networks = service_networks(svc.spec)
        for net in networks:
            members.setdefault(net, set()).add(svc.name)
        mine = [NetworkAlias(net, alias, svc.name) for net, alias in _aliases(svc.spec, networks, labels)]
        aliases += mine
        if member is not None:
            own.update(a for a in mine if stack_of_network.get(a.network) == member[0])
        if svc.spec.links:
            links[svc.name] = tuple((link.alias, link.service) for link in svc.spec.links)
            linking[sid] = svc.name
    base = ScopeData(
        services_by_network={n: frozenset(s) for n, s in members.items()},
        aliases=tuple(sorted(aliases, key=lambda a: (a not in own, a))),
        owners=owners,
        links=links,
    )
    return base, linking


def _linkers(
    state: ClusterState, linking: Mapping[str, str], addresses_of: Callable[[str], Iterable[str]] | None
) -> dict[str, str]:
    """``address -> service name`` of the unfinished tasks of the services in ``linking`` (by id); an
    address two of them hold for a moment (a reused address reported before the old task's end) goes
    to the first name."""
    if addresses_of is not None:
        pairs = ((address, name) for sid, name in linking.items() for address in addresses_of(sid))
    else:
        pairs = (
            (task.address, linking[task.service_id])
            for task in state.tasks.values()
            if task.service_id in linking and task.address and task.state not in TERMINAL_STATES
        )
    out: dict[str, str] = {}
    for address, name in pairs:
        if name < out.get(address, "\uffff"):
            out[address] = name
    return out
