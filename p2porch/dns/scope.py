"""DNS answers scoped to the querier's networks (pure).

A query from a task's address is answered from a zone holding only the services that share a network
with that task, plus the aliases those services have on those networks; every other source (nodes,
members, loopback, an address no committed task holds yet) gets the full zone. `ClientScopes` keeps one
`Resolver` (with its own answer cache) per distinct set of networks, so the server's cached fast path
stays one dict lookup per query: which resolver is a second lookup by the sender's packed address.
No I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from p2porch import ipv4
from p2porch.dns.resolver import Resolver
from p2porch.dns.zone import TaskEntry, ZoneData


@dataclass(frozen=True, order=True, slots=True)
class NetworkAlias:
    """``alias`` answers, on ``network``, with the tasks of ``service``."""

    network: str
    alias: str
    service: str


@dataclass(frozen=True)
class ScopeData:
    """Which services are on each network, their aliases, and each task address's networks.

    ``owners`` maps extra zone names (e.g. a stack service's short name) to the service they stand for."""

    services_by_network: Mapping[str, frozenset[str]] = field(default_factory=dict)
    aliases: tuple[NetworkAlias, ...] = ()
    clients: Mapping[str, frozenset[str]] = field(default_factory=dict)
    owners: Mapping[str, str] = field(default_factory=dict)


def visible_services(networks: frozenset[str], data: ScopeData) -> frozenset[str]:
    """The services a task on ``networks`` may resolve: those sharing at least one of them."""
    out: set[str] = set()
    for net in networks:
        out |= data.services_by_network.get(net, frozenset())
    return frozenset(out)


def scoped_zone(zone: ZoneData, networks: frozenset[str], data: ScopeData) -> ZoneData:
    """``zone`` as a task on ``networks`` sees it: other services removed, network aliases added."""
    visible = visible_services(networks, data)
    services: dict[str, list[TaskEntry] | tuple[TaskEntry, ...]] = {
        name: list(tasks) for name, tasks in zone.services.items() if data.owners.get(name, name) in visible
    }
    vips = {name: vip for name, vip in zone.vips.items() if name in services}
    for alias in data.aliases:
        if alias.network in networks and alias.service in zone.services and alias.alias not in services:
            services[alias.alias] = list(zone.services[alias.service])
            if alias.service in zone.vips:
                vips[alias.alias] = zone.vips[alias.service]  # an alias answers its service's VIP
    return ZoneData(
        domain=zone.domain,
        services=services,
        nodes=zone.nodes,
        nameservers=zone.nameservers,
        version=zone.version,
        local_site=zone.local_site,  # topology-aware answers hold inside a network too
        vips=vips,
    )


def _packed(address: str) -> bytes | None:
    ip = ipv4.address(address)
    return None if ip is None else ip.packed


class ClientScopes:
    """The resolver each client address gets: a scoped one for task addresses, else ``default``.

    Owns one resolver per distinct network set (created with ``make``, sharing the default's counters);
    `update` rebuilds them all from a new zone and scope data. Never raises on odd addresses."""

    def __init__(self, default: Resolver, make: Callable[[ZoneData], Resolver]) -> None:
        self.default = default
        self._make = make
        self.by_packed: dict[bytes, Resolver] = {}
        self.by_host: dict[str, Resolver] = {}
        self._scoped: dict[frozenset[str], Resolver] = {}
        self._clients: Mapping[str, frozenset[str]] | None = None  # the ``data.clients`` last mapped

    @property
    def scope_count(self) -> int:
        return len(self._scoped)

    def update(self, zone: ZoneData, data: ScopeData) -> None:
        """Swap in ``zone`` for the default resolver and rebuild every scope from ``data``.

        When ``data.clients`` is the very mapping of the previous call (a ``TaskNetworkIndex`` returns
        the same object while no address changed) the address maps are kept and only each scope's zone
        is rebuilt: the same resolvers, the same result as the full pass, without walking every address."""
        self.default.update_zone(zone)
        if data.clients is self._clients:
            for nets, scope in self._scoped.items():
                scope.update_zone(scoped_zone(zone, nets, data))
            return
        scoped: dict[frozenset[str], Resolver] = {}
        by_packed: dict[bytes, Resolver] = {}
        by_host: dict[str, Resolver] = {}
        for address, networks in sorted(data.clients.items()):
            packed = _packed(address)
            if packed is None or not networks:
                continue
            resolver = scoped.get(networks)
            if resolver is None:
                view = scoped_zone(zone, networks, data)
                resolver = self._scoped.get(networks)
                if resolver is None:
                    resolver = self._make(view)
                    resolver.counters = self.default.counters
                else:
                    resolver.update_zone(view)
                scoped[networks] = resolver
            by_packed[packed] = resolver
            by_host[str(ipv4.address(address))] = resolver
        self._scoped = scoped
        self._clients = data.clients
        self.by_packed = by_packed
        self.by_host = by_host

    def for_host(self, host: str) -> Resolver:
        return self.by_host.get(host, self.default)
