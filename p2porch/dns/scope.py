"""DNS answers scoped to the querier's networks (pure).

A query from a task's address is answered from a zone holding only the services that share a network
with that task, plus the aliases those services have on those networks, plus the link aliases of the
task's own service (Compose ``links``: seen only by the linking service's tasks, so two services may give
one alias different targets); every other source (nodes, members, loopback, an address no committed
task holds yet) gets the full zone. `ClientScopes` keeps one `Resolver` (with its own answer cache) per
distinct scope: a set of networks, and the linking service for the tasks of a service with links; so
the server's cached fast path stays one dict lookup per query: which resolver is a second lookup by the
sender's packed address. No I/O, no clock.
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


#: the scope of a client: its networks, and the service whose links it sees ("" for none)
ScopeKey = tuple[frozenset[str], str]


@dataclass(frozen=True)
class ScopeData:
    """Which services are on each network, their aliases, and each task address's networks.

    ``aliases`` are tried in their order: the first on a task's networks takes a name. ``owners`` maps
    extra zone names (e.g. a stack service's ``<short>.<stack>``) to the service they stand for;
    ``links`` maps a service to its ``(alias, target service)`` links and ``linkers`` the address of each
    task of such a service to that service (the other addresses see no link)."""

    services_by_network: Mapping[str, frozenset[str]] = field(default_factory=dict)
    aliases: tuple[NetworkAlias, ...] = ()
    clients: Mapping[str, frozenset[str]] = field(default_factory=dict)
    owners: Mapping[str, str] = field(default_factory=dict)
    links: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    linkers: Mapping[str, str] = field(default_factory=dict)


def visible_services(networks: frozenset[str], data: ScopeData) -> frozenset[str]:
    """The services a task on ``networks`` may resolve: those sharing at least one of them."""
    out: set[str] = set()
    for net in networks:
        out |= data.services_by_network.get(net, frozenset())
    return frozenset(out)


def scoped_zone(zone: ZoneData, networks: frozenset[str], data: ScopeData, linker: str = "") -> ZoneData:
    """``zone`` as a task on ``networks`` of service ``linker`` sees it: other services removed, network
    aliases added, then the links of ``linker`` to the services it sees (a link wins over another
    service's network alias, as Docker's DNS resolves a container's links first; a service name wins over
    both). The task lists are ``zone``'s own objects (never copied or changed), so a scope's
    ``ZoneCompiler`` reuses the compiled names of every service whose list did not change, by identity."""
    visible = visible_services(networks, data)
    services: dict[str, Sequence[TaskEntry]] = {
        name: tasks for name, tasks in zone.services.items() if data.owners.get(name, name) in visible
    }
    names = frozenset(services) if linker in data.links else frozenset()  # what no link may take over
    vips = {name: vip for name, vip in zone.vips.items() if name in services}
    bare: set[str] = set()

    def answer(alias: str, service: str) -> None:
        services[alias] = zone.services[service]
        if service in zone.vips:
            vips[alias] = zone.vips[service]  # an alias answers its service's VIP
        else:
            vips.pop(alias, None)
        if "." in alias:
            bare.add(alias)  # "db.internal" is asked as written, not under the cluster domain

    for alias in data.aliases:
        if alias.network in networks and alias.service in zone.services and alias.alias not in services:
            answer(alias.alias, alias.service)
    for name, target in data.links.get(linker, ()):
        if target in zone.services and target in visible and name not in names:
            answer(name, target)
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

    Owns one resolver per distinct scope (created with ``make(zone, fragments=...)``, sharing the
    default's counters and compiled services: a service a scope sees is compiled once per node, not per
    resolver); `update` rebuilds them from a new zone and scope data. Never raises on odd addresses;
    never mutates the ``clients`` or ``linkers`` mappings it is given (it keeps them to compare with the
    next ones)."""

    def __init__(self, default: Resolver, make: Callable[..., Resolver]) -> None:
        self.default = default
        self._make = make
        self.by_packed: dict[bytes, Resolver] = {}
        self.by_host: dict[str, Resolver] = {}
        self._scoped: dict[ScopeKey, Resolver] = {}
        self._clients: Mapping[str, frozenset[str]] | None = None  # the ``data.clients`` last mapped
        self._linkers: Mapping[str, str] = {}  # the ``data.linkers`` last mapped
        self._uses: dict[ScopeKey, int] = {}  # scope -> addresses mapped to its resolver
        self._fresh: set[ScopeKey] = set()  # scopes whose resolver got this call's zone

    @property
    def scope_count(self) -> int:
        return len(self._scoped)

    def update(self, zone: ZoneData, data: ScopeData) -> None:
        """Swap in ``zone`` for the default resolver and rebuild every scope from ``data``.

        The address maps follow ``data.clients`` and ``data.linkers``: a full pass over every address the
        first time, then only the addresses whose networks or linking service differ from the previous
        call's (a set difference of the mappings' items, in C; none when ``clients`` is the very same
        mapping, as a ``TaskNetworkIndex`` returns while no address changed, and ``linkers`` is equal).
        The result is the full pass's: the same resolvers per scope (tested against it), the unused
        ones dropped; every scope's zone is rebuilt each call."""
        self.default.update_zone(zone)
        old, new = self._clients, data.clients
        if old is None or not self._follow(old, new, zone, data):
            self._full(zone, data)
        self._clients, self._linkers = new, data.linkers
        for (nets, linker), scope in self._scoped.items():
            if (nets, linker) not in self._fresh:
                scope.update_zone(scoped_zone(zone, nets, data, linker))
        self._fresh = set()

    def _full(self, zone: ZoneData, data: ScopeData) -> None:
        previous = self._scoped
        self._scoped, self._uses, self._fresh = {}, {}, set()
        self.by_packed, self.by_host = {}, {}
        for address, networks in sorted(data.clients.items()):
            self._map(address, (networks, data.linkers.get(address, "")), zone, data, previous)

    def _follow(
        self,
        old: Mapping[str, frozenset[str]],
        new: Mapping[str, frozenset[str]],
        zone: ZoneData,
        data: ScopeData,
    ) -> bool:
        """Apply the addresses that changed from ``old`` to ``new`` (networks or linking service); False
        (nothing applied) when a changed address is not in canonical form (two texts of one address:
        the full pass decides)."""
        old_linkers, new_linkers = self._linkers, data.linkers
        if new is old and new_linkers == old_linkers:
            return True
        changed = set() if new is old else {address for address, _ in old.items() ^ new.items()}
        changed |= {address for address, _ in old_linkers.items() ^ new_linkers.items()}
        if any(ipv4.canonical(a) != a for a in changed):
            return False
        for address in changed:
            networks = old.get(address)
            if networks is not None:
                self._unmap(address, (networks, old_linkers.get(address, "")))
        for address in sorted(changed):
            networks = new.get(address)
            if networks is not None:
                self._map(address, (networks, new_linkers.get(address, "")), zone, data, self._scoped)
        return True

    def _map(
        self,
        address: str,
        key: ScopeKey,
        zone: ZoneData,
        data: ScopeData,
        previous: dict[ScopeKey, Resolver],
    ) -> None:
        packed = _packed(address)
        if packed is None or not key[0]:
            return
        resolver = self._scoped.get(key)
        if resolver is None:
            view = scoped_zone(zone, key[0], data, key[1])
            resolver = previous.get(key)
            if resolver is None:
                resolver = self._make(view, fragments=self.default.fragments)
                resolver.counters = self.default.counters
            else:
                resolver.update_zone(view)
            self._scoped[key] = resolver
            self._fresh.add(key)
        self._uses[key] = self._uses.get(key, 0) + 1
        self.by_packed[packed] = resolver
        self.by_host[ipv4.canonical(address) or address] = resolver

    def _unmap(self, address: str, key: ScopeKey) -> None:
        packed = _packed(address)
        if packed is None or not key[0]:
            return
        self.by_packed.pop(packed, None)
        self.by_host.pop(ipv4.canonical(address) or address, None)
        left = self._uses.get(key, 0) - 1
        if left > 0:
            self._uses[key] = left
        else:
            self._uses.pop(key, None)
            self._scoped.pop(key, None)

    def for_host(self, host: str) -> Resolver:
        return self.by_host.get(host, self.default)
