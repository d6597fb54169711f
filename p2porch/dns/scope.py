"""DNS answers scoped to the querier's networks (pure).

A query from a task's address is answered from a zone holding only the services that share a network
with that task, plus the aliases those services have on those networks, plus the link aliases of the
task's own service (Compose ``links``: seen only by the linking service's tasks, so two services may give
one alias different targets); an alias several services hold on the first of the task's networks
holding it answers them all (``ZoneData.shared``), as Docker's DNS does. Every other source (nodes,
members, loopback, an address no committed task holds yet) gets the full zone. `ClientScopes` keeps one
`Resolver` (with its own answer cache) per distinct scope: a set of networks, and the linking service for
the tasks of a service with links (a link scope: its network scope's compiled names with its link names laid
over them, `link_scope`); so the server's cached fast path stays one dict lookup per query: which resolver
is a second lookup by the sender's packed address. No I/O, no clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from p2porch import ipv4
from p2porch.dns.link_scope import LinkCompilers, ViewNames, link_zone
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

    ``aliases`` are tried in their order: the first on a task's networks takes a name, and every other
    service holding that alias on that network answers it too (a shared alias). ``owners`` maps
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
    aliases added (one several services it sees hold on the network that took it: in ``shared``, not in
    ``services``; one holder: as that service, the same data as before), then the links of ``linker``
    to the services it sees (`with_links`). The task lists are ``zone``'s own objects (never copied or
    changed), so a scope's ``ZoneCompiler`` reuses the compiled names of every service whose list did
    not change, by identity."""
    visible = visible_services(networks, data)
    services: dict[str, Sequence[TaskEntry]] = {
        name: tasks for name, tasks in zone.services.items() if data.owners.get(name, name) in visible
    }
    vips = {name: vip for name, vip in zone.vips.items() if name in services}
    bare: set[str] = set()
    taken: dict[str, NetworkAlias] = {}  # alias -> the entry that took it
    shared: dict[str, list[str]] = {}  # alias -> its holders on that entry's network, when several
    for alias in data.aliases:
        if alias.network in networks and alias.service in zone.services:
            name = alias.alias
            if name not in services:
                taken[name] = alias
                _answer(zone, services, vips, bare, name, alias.service)
            else:
                first = taken.get(name)  # None: a service's own name (it wins)
                if (
                    first is not None
                    and first.network == alias.network
                    and alias.service != first.service
                    and alias.service in visible
                    and first.service in visible  # (always in real data): its name is its own in the view
                ):
                    holders = shared.setdefault(name, [first.service])
                    if alias.service not in holders:
                        holders.append(alias.service)
    for name in shared:  # answered by every holder (`compile_shared`), not as the first one's
        del services[name]
        vips.pop(name, None)
    view = ZoneData(
        domain=zone.domain,
        services=services,
        nodes=zone.nodes,
        nameservers=zone.nameservers,
        version=zone.version,
        local_site=zone.local_site,  # topology-aware answers hold inside a network too
        vips=vips,
        bare=frozenset(bare),
        shared={name: tuple(holders) for name, holders in shared.items()} if shared else {},
    )
    return with_links(view, zone, networks, data, linker) if linker else view


def with_links(
    under: ZoneData, zone: ZoneData, networks: frozenset[str], data: ScopeData, linker: str
) -> ZoneData:
    """``under`` (``scoped_zone(zone, networks, data)``) with the links of ``linker`` to the services a
    task on ``networks`` sees: a link wins over another service's network alias, as Docker's DNS resolves
    a container's links first; a service name wins over both. O(links), not O(services) (dict copies)."""
    visible = visible_services(networks, data)
    services, vips, bare = dict(under.services), dict(under.vips), set(under.bare)
    shared = under.shared
    for name, target in data.links.get(linker, ()):
        taken = name in zone.services and data.owners.get(name, name) in visible  # no link takes it over
        if target in zone.services and target in visible and not taken:
            _answer(zone, services, vips, bare, name, target)
            if name in shared:  # the link wins over a shared network alias too
                shared = {alias: holders for alias, holders in shared.items() if alias != name}
    return dataclasses.replace(under, services=services, vips=vips, bare=frozenset(bare), shared=shared)


def _answer(
    zone: ZoneData,
    services: dict[str, Sequence[TaskEntry]],
    vips: dict[str, str],
    bare: set[str],
    alias: str,
    service: str,
) -> None:
    """``alias`` answers as ``service`` of ``zone``: its tasks, its VIP (if any), and as asked if dotted."""
    services[alias] = zone.services[service]
    if service in zone.vips:
        vips[alias] = zone.vips[service]  # an alias answers its service's VIP
    else:
        vips.pop(alias, None)
    if "." in alias:
        bare.add(alias)  # "db.internal" is asked as written, not under the cluster domain


def _packed(address: str) -> bytes | None:
    return ipv4.packed(address)


class ClientScopes:
    """The resolver each client address gets: a scoped one for task addresses, else ``default``.

    Owns one resolver per distinct scope (created with ``make(zone, fragments=...)``, sharing the
    default's counters and compiled services: a service a scope sees is compiled once per node, not per
    resolver); `update` rebuilds them from a new zone and scope data, the network scopes first, then
    each link scope over its network scope (held while a link scope uses it, even with no task of its
    own). A scope dropped (no address uses it: its network or service gone, a link removed) is closed:
    its compiled services leave the node's store unless another resolver holds them. Never raises on odd
    addresses; never mutates the ``clients`` or ``linkers`` mappings it is given (it keeps them to
    compare with the next ones)."""

    def __init__(self, default: Resolver, make: Callable[..., Resolver]) -> None:
        self.default = default
        self._make = make
        self.by_packed: dict[bytes, Resolver] = {}
        self.by_host: dict[str, Resolver] = {}
        self._scoped: dict[ScopeKey, Resolver] = {}
        self._clients: Mapping[str, frozenset[str]] | None = None  # the ``data.clients`` last mapped
        self._linkers: Mapping[str, str] = {}  # the ``data.linkers`` last mapped
        self._uses: dict[ScopeKey, int] = {}  # scope -> addresses mapped to its resolver
        self._fresh: set[ScopeKey] = set()  # network scopes whose resolver got this call's zone
        self._views: dict[ScopeKey, ZoneData] = {}  # each network scope's last zone (its link scopes')
        self._links: dict[ScopeKey, LinkCompilers] = {}  # each link scope's compilers
        self._names: dict[ScopeKey, ViewNames] = {}  # each network scope's names (its link scopes')

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
        for key, scope in self._scoped.items():
            if not key[1] and key not in self._fresh:
                view = self._views[key] = scoped_zone(zone, key[0], data)
                scope.update_zone(view)
        for (nets, linker), scope in self._scoped.items():
            if linker:  # its link names over its network scope's compiled zone
                under = (nets, "")
                view = with_links(self._views[under], zone, nets, data, linker)
                compilers = self._links.get((nets, linker))
                if compilers is None:
                    names = self._names.setdefault(under, ViewNames())
                    compilers = self._links[nets, linker] = LinkCompilers(self.default.fragments, names)
                scope.show(
                    link_zone(
                        view, self._views[under], self._scoped[under].zone, compilers, data.links[linker]
                    )
                )
        self._fresh = set()

    def _full(self, zone: ZoneData, data: ScopeData) -> None:
        previous = self._scoped
        self._scoped, self._uses, self._fresh, self._views = {}, {}, set(), {}
        self.by_packed, self.by_host = {}, {}
        for address, networks in sorted(data.clients.items()):
            self._map(address, (networks, data.linkers.get(address, "")), zone, data, previous)
        for key, resolver in previous.items():
            if self._scoped.get(key) is not resolver:
                resolver.close()  # a dropped scope: its compiled services leave the store
        for key in self._links.keys() - self._scoped.keys():
            self._links.pop(key).close()
        self._names = {key: kept for key, kept in self._names.items() if key in self._scoped}

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
        self._hold(key, zone, data, previous)
        resolver = self._scoped[key]
        self.by_packed[packed] = resolver
        self.by_host[ipv4.canonical(address) or address] = resolver

    def _hold(
        self, key: ScopeKey, zone: ZoneData, data: ScopeData, previous: dict[ScopeKey, Resolver]
    ) -> None:
        """One more use of ``key``'s resolver, created (or taken from ``previous``) when missing; a link
        scope holds its network scope too. A network scope gets this call's view at once, a link scope
        its names in `update`, after every network scope."""
        linker = key[1]
        if linker:
            self._hold((key[0], ""), zone, data, previous)
        resolver = self._scoped.get(key)
        if resolver is None:
            resolver = previous.get(key)
            if linker:
                if resolver is None:
                    resolver = self._new_resolver(ZoneData(domain=zone.domain))
            else:
                view = scoped_zone(zone, key[0], data)
                if resolver is None:
                    resolver = self._new_resolver(view)
                else:
                    resolver.update_zone(view)
                self._views[key] = view
                self._fresh.add(key)
            self._scoped[key] = resolver
        self._uses[key] = self._uses.get(key, 0) + 1

    def _new_resolver(self, zone: ZoneData) -> Resolver:
        """A scope's resolver of ``zone``, sharing the default's compiled services and counters."""
        resolver = self._make(zone, fragments=self.default.fragments)
        resolver.counters = self.default.counters
        return resolver

    def _unmap(self, address: str, key: ScopeKey) -> None:
        packed = _packed(address)
        if packed is None or not key[0]:
            return
        self.by_packed.pop(packed, None)
        self.by_host.pop(ipv4.canonical(address) or address, None)
        self._release(key)

    def _release(self, key: ScopeKey) -> None:
        left = self._uses.get(key, 0) - 1
        if left > 0:
            self._uses[key] = left
        else:
            self._uses.pop(key, None)
            self._views.pop(key, None)
            self._names.pop(key, None)
            resolver = self._scoped.pop(key, None)
            if resolver is not None:
                resolver.close()  # its compiled services leave the store unless another scope holds them
            compilers = self._links.pop(key, None)
            if compilers is not None:
                compilers.close()
        if key[1]:
            self._release((key[0], ""))

    def for_host(self, host: str) -> Resolver:
        return self.by_host.get(host, self.default)
