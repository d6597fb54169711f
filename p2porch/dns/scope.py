"""DNS answers scoped to the querier's networks (pure).

A query from a task's address is answered from a zone holding only the services that share a network
with that task, plus the aliases those services have on those networks; every other source (nodes,
members, loopback, an address no committed task holds yet) gets the full zone. `ClientScopes` keeps one
`Resolver` (with its own answer cache) per distinct set of networks, so the server's cached fast path
stays one dict lookup per query: which resolver is a second lookup by the sender's packed address.
No I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
    """``zone`` as a task on ``networks`` sees it: other services removed, network aliases added. The task
    lists are ``zone``'s own objects (never copied or changed), so a scope's ``ZoneCompiler`` reuses the
    compiled names of every service whose list did not change, by identity."""
    visible = visible_services(networks, data)
    services: dict[str, Sequence[TaskEntry]] = {
        name: tasks for name, tasks in zone.services.items() if data.owners.get(name, name) in visible
    }
    vips = {name: vip for name, vip in zone.vips.items() if name in services}
    bare: set[str] = set()
    for alias in data.aliases:
        if alias.network in networks and alias.service in zone.services and alias.alias not in services:
            services[alias.alias] = zone.services[alias.service]
            if alias.service in zone.vips:
                vips[alias.alias] = zone.vips[alias.service]  # an alias answers its service's VIP
            if "." in alias.alias:
                bare.add(alias.alias)  # "db.internal" is asked as written, not under the cluster domain
    return ZoneData(
        domain=zone.domain,
        services=services,
        nodes=zone.nodes,
        nameservers=zone.nameservers,
        version=zone.version,
        local_site=zone.local_site,  # topology-aware answers hold inside a network too
        vips=vips,
        bare=frozenset(bare),
    )


def _packed(address: str) -> bytes | None:
    return ipv4.packed(address)


class ClientScopes:
    """The resolver each client address gets: a scoped one for task addresses, else ``default``.

    Owns one resolver per distinct network set (created with ``make(zone, fragments=...)``, sharing the
    default's counters and compiled services: a service a scope sees is compiled once per node, not per
    resolver); `update` rebuilds them from a new zone and scope data. Never raises on odd addresses;
    never mutates the ``clients`` mapping it is given (it keeps it to compare with the next one)."""

    def __init__(self, default: Resolver, make: Callable[..., Resolver]) -> None:
        self.default = default
        self._make = make
        self.by_packed: dict[bytes, Resolver] = {}
        self.by_host: dict[str, Resolver] = {}
        self._scoped: dict[frozenset[str], Resolver] = {}
        self._clients: Mapping[str, frozenset[str]] | None = None  # the ``data.clients`` last mapped
        self._uses: dict[frozenset[str], int] = {}  # network set -> addresses mapped to its resolver
        self._fresh: set[frozenset[str]] = set()  # network sets whose resolver got this call's zone

    @property
    def scope_count(self) -> int:
        return len(self._scoped)

    def update(self, zone: ZoneData, data: ScopeData) -> None:
        """Swap in ``zone`` for the default resolver and rebuild every scope from ``data``.

        The address maps follow ``data.clients``: a full pass over every address the first time, then
        only the addresses whose networks differ from the previous call's mapping (a set difference of
        the two mappings' items, in C; none when it is the very same mapping, as a ``TaskNetworkIndex``
        returns while no address changed). The result is the full pass's: the same resolvers per network
        set (tested against it), the unused ones dropped; every scope's zone is rebuilt each call."""
        self.default.update_zone(zone)
        old, new = self._clients, data.clients
        if old is None or not self._follow(old, new, zone, data):
            self._full(zone, data)
        self._clients = new
        for nets, scope in self._scoped.items():
            if nets not in self._fresh:
                scope.update_zone(scoped_zone(zone, nets, data))
        self._fresh = set()

    def _full(self, zone: ZoneData, data: ScopeData) -> None:
        previous = self._scoped
        self._scoped, self._uses, self._fresh = {}, {}, set()
        self.by_packed, self.by_host = {}, {}
        for address, networks in sorted(data.clients.items()):
            self._map(address, networks, zone, data, previous)

    def _follow(
        self,
        old: Mapping[str, frozenset[str]],
        new: Mapping[str, frozenset[str]],
        zone: ZoneData,
        data: ScopeData,
    ) -> bool:
        """Apply the addresses that changed from ``old`` to ``new``; False (nothing applied) when a changed
        address is not in canonical form (two texts of one address: the full pass decides)."""
        if new is old:
            return True
        changed = {address for address, _ in old.items() ^ new.items()}
        if any(ipv4.canonical(a) != a for a in changed):
            return False
        for address in changed:
            self._unmap(address, old.get(address))
        for address in sorted(changed):
            networks = new.get(address)
            if networks is not None:
                self._map(address, networks, zone, data, self._scoped)
        return True

    def _map(
        self,
        address: str,
        networks: frozenset[str],
        zone: ZoneData,
        data: ScopeData,
        previous: dict[frozenset[str], Resolver],
    ) -> None:
        packed = _packed(address)
        if packed is None or not networks:
            return
        resolver = self._scoped.get(networks)
        if resolver is None:
            view = scoped_zone(zone, networks, data)
            resolver = previous.get(networks)
            if resolver is None:
                resolver = self._make(view, fragments=self.default.fragments)
                resolver.counters = self.default.counters
            else:
                resolver.update_zone(view)
            self._scoped[networks] = resolver
            self._fresh.add(networks)
        self._uses[networks] = self._uses.get(networks, 0) + 1
        self.by_packed[packed] = resolver
        self.by_host[ipv4.canonical(address) or address] = resolver

    def _unmap(self, address: str, networks: frozenset[str] | None) -> None:
        packed = _packed(address)
        if packed is None or not networks:
            return
        self.by_packed.pop(packed, None)
        self.by_host.pop(ipv4.canonical(address) or address, None)
        left = self._uses.get(networks, 0) - 1
        if left > 0:
            self._uses[networks] = left
        else:
            self._uses.pop(networks, None)
            self._scoped.pop(networks, None)

    def for_host(self, host: str) -> Resolver:
        return self.by_host.get(host, self.default)
