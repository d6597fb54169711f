"""A link scope's layered zone (`link_scope.link_zone`, as `ClientScopes` keeps it across zones) answers
every query exactly as the full link scope (`Resolver(scoped_zone(..., linker))`) does, over random zones:
services, network aliases, stack short names, links (to a service, over an alias, over a name a service
holds), dotted names, names that collide (``tasks.x``, ``1.x``, ``node``, case variants), VIPs, ports,
slots, unhealthy tasks, shared addresses; random queries of every type, asked with and without the
domain, in random case, and the PTR names of every address."""

from __future__ import annotations

import dataclasses
import random

import pytest
from dnslib import DNSRecord

from p2porch.dns.link_scope import LayeredNames, LinkCompilers, ViewNames, link_zone
from p2porch.dns.resolver import Resolver
from p2porch.dns.scope import ClientScopes, NetworkAlias, ScopeData, scoped_zone, with_links
from p2porch.dns.zone import CompiledZone, Labels, PortEntry, TaskEntry, ZoneData, compile_zone, to_labels
from p2porch.dns.zone_cache import FragmentStore, ZoneCompiler

NETWORKS = ("a", "b", "c")
LABELS = ("web", "db", "x", "tasks", "node", "ns", "1", "2", "Web", "peer", "api")
QTYPES = ("A", "SRV", "PTR", "ANY", "AAAA", "SOA", "NS", "TXT")


def _name(rng: random.Random) -> str:
    return ".".join(rng.choice(LABELS) for _ in range(rng.choice((1, 1, 1, 2, 2, 3))))


def _tasks(rng: random.Random) -> list[TaskEntry]:
    return [
        TaskEntry(
            slot=rng.choice((1, 2, 3, "x", "t1", "bad.slot")),
            address=f"10.9.0.{rng.randint(1, 12)}",
            healthy=rng.random() < 0.85,
            running=rng.random() < 0.9,
            ports=tuple(
                PortEntry(rng.choice((80, 53)), rng.choice(("tcp", "udp"))) for _ in range(rng.randint(0, 2))
            ),
            site=rng.choice(("", "eu", "us")),
        )
        for _ in range(rng.randint(0, 4))
    ]


def random_world(rng: random.Random) -> tuple[ZoneData, ScopeData]:
    services = {_name(rng): _tasks(rng) for _ in range(rng.randint(2, 9))}
    names = sorted(services)
    owners = {}
    for name in names[:2]:  # stack short names: an extra zone name standing for its service
        short = f"{name}.{rng.choice(('shop', 'x'))}"
        if short not in services:
            services[short] = services[name]
            owners[short] = name
    by_network = {net: frozenset(n for n in names if rng.random() < 0.6) for net in NETWORKS}
    aliases = tuple(
        NetworkAlias(rng.choice(NETWORKS), rng.choice((_name(rng), rng.choice(names))), rng.choice(names))
        for _ in range(rng.randint(0, 6))
    ) + _shared_aliases(rng, names)
    linking = rng.sample(names, min(len(names), rng.randint(1, 3)))
    links = {
        linker: tuple(
            (
                rng.choice((_name(rng), rng.choice(names), rng.choice(aliases).alias if aliases else "x")),
                rng.choice(names),
            )
            for _ in range(rng.randint(1, 4))
        )
        for linker in linking
    }
    clients: dict[str, frozenset[str]] = {}
    linkers: dict[str, str] = {}
    for i in range(rng.randint(1, 10)):
        address = f"10.8.0.{i + 1}"
        clients[address] = frozenset(n for n in NETWORKS if rng.random() < 0.5) or frozenset({"a"})
        if rng.random() < 0.6:
            linkers[address] = rng.choice(linking)
    zone = ZoneData(
        domain=rng.choice(("p2p", "cluster.local")),
        services=services,
        nodes={rng.choice(("n1", "web", "x", "1")): f"10.0.0.{i}" for i in range(rng.randint(0, 3))},
        nameservers=rng.choice(((), ("10.0.0.53",))),
        version=rng.randint(1, 1000),
        local_site=rng.choice(("", "eu")),
        vips={n: f"10.7.0.{rng.randint(1, 5)}" for n in names if rng.random() < 0.3},
    )
    data = ScopeData(by_network, aliases, clients, owners, links, linkers)
    return zone, data


def _shared_aliases(rng: random.Random, names: list[str]) -> tuple[NetworkAlias, ...]:
    """Up to two aliases that two or three services hold on one network (Ditto's ``ditto-cluster``)."""
    out: list[NetworkAlias] = []
    for _ in range(rng.choice((0, 1, 1, 2))):
        alias, net = rng.choice((_name(rng), "cluster", "db.internal")), rng.choice(NETWORKS)
        out += [NetworkAlias(net, alias, s) for s in rng.sample(names, min(len(names), rng.randint(2, 3)))]
    return tuple(out)


def queries(rng: random.Random, zones: list[CompiledZone]) -> list[bytes]:
    domain = ".".join(label.decode() for label in zones[0].domain)
    asked: list[str] = []
    for compiled in zones:
        for labels in compiled.names:
            asked.append(".".join(label.decode() for label in labels))
            asked.append(".".join(label.decode() for label in labels[: len(labels) - len(compiled.domain)]))
        for labels in compiled.reverse:
            asked.append(".".join(label.decode() for label in labels))
    asked += [_name(rng) for _ in range(20)] + [f"{_name(rng)}.{domain}" for _ in range(20)]
    asked += [f"tasks.{_name(rng)}" for _ in range(10)]
    asked += [
        ".".join(reversed(f"10.{z}.0.{i}".split("."))) + ".in-addr.arpa" for z in (7, 9) for i in range(13)
    ]
    out = []
    for name in asked:
        if not name:
            name = domain
        cased = "".join(c.upper() if rng.random() < 0.2 else c for c in name)
        for qtype in rng.sample(QTYPES, 3):
            out.append(DNSRecord.question(cased, qtype).pack())
    return out


def unrotated(reply: object) -> object:
    """A response with its records sorted (a resolver that answered before rotates from elsewhere)."""
    if not isinstance(reply, bytes):
        return reply
    parsed = DNSRecord.parse(reply)
    return (
        parsed.header.rcode,
        sorted(map(str, parsed.rr)),
        sorted(map(str, parsed.auth)),
        sorted(map(str, parsed.ar)),
    )


def same_names(mine: CompiledZone, full: CompiledZone) -> None:
    assert dict(mine.names.items()) == full.names
    assert dict(mine.reverse.items()) == full.reverse
    assert mine.bare == full.bare and mine.serial == full.serial and mine.domain == full.domain


@pytest.mark.parametrize("seed", range(60))
def test_a_link_scope_answers_as_the_full_link_scope(seed: int) -> None:
    rng = random.Random(seed)
    zone, data = random_world(rng)
    for linker in sorted(data.links):
        for nets in (frozenset({"a"}), frozenset({"a", "b"}), frozenset(NETWORKS)):
            view = scoped_zone(zone, nets, data, linker)
            under = scoped_zone(zone, nets, data)
            full = compile_zone(view)
            mine = link_zone(
                view, under, compile_zone(under), LinkCompilers(FragmentStore()), data.links[linker]
            )
            same_names(mine, full)
            new, old = Resolver(ZoneData()), Resolver(view)
            new.show(mine)
            for query in queries(rng, [full, compile_zone(under)]):
                assert new.resolve(query) == old.resolve(query), DNSRecord.parse(query).q
                assert new.resolve(query, tcp=True) == old.resolve(query, tcp=True)


@pytest.mark.parametrize("seed", range(15))
def test_client_scopes_keep_link_scopes_equal_to_the_full_link_scope_across_zones(seed: int) -> None:
    """Successive random zones and scope data through one `ClientScopes` (remapped addresses, kept and
    dropped scopes): every linking task's resolver answers as a fresh full link scope would."""
    rng = random.Random(seed)
    zone, data = random_world(rng)
    scopes = ClientScopes(Resolver(zone), Resolver)
    for _ in range(8):
        zone, data = random_world(rng) if rng.random() < 0.5 else (_moved(zone, rng), data)
        scopes.update(zone, data)
        for address, nets in sorted(data.clients.items()):  # the network scopes too
            if address not in data.linkers:
                same_names(scopes.for_host(address).zone, compile_zone(scoped_zone(zone, nets, data)))
        for address, linker in sorted(data.linkers.items()):
            view = scoped_zone(zone, data.clients[address], data, linker)
            resolver = scopes.for_host(address)
            full = compile_zone(view)
            same_names(resolver.zone, full)
            old = Resolver(view)
            for query in queries(rng, [full])[:80]:
                assert unrotated(resolver.resolve(query)) == unrotated(old.resolve(query))
        assert all(isinstance(r.zone.names, (dict, LayeredNames)) for r in scopes.by_host.values())


def _moved(zone: ZoneData, rng: random.Random) -> ZoneData:
    """``zone`` with one service's tasks replaced (the others' lists kept, as the zone builder does)."""
    services = dict(zone.services)
    name = rng.choice(sorted(services))
    services[name] = _tasks(rng)
    return ZoneData(
        zone.domain, services, zone.nodes, zone.nameservers, zone.version + 1, zone.local_site, zone.vips
    )


def _evolved(zone: ZoneData, data: ScopeData, rng: random.Random) -> tuple[ZoneData, ScopeData]:
    """The next zone of a burst: only its version (a message-only burst), one service's tasks moved, a
    service added (on random networks) or one removed, or a VIP changed; the others' lists kept, as the
    zone builder does."""
    kind = rng.choice(("version", "moved", "added", "removed", "vip", "holder"))
    services, by_network, vips = dict(zone.services), dict(data.services_by_network), dict(zone.vips)
    aliases = data.aliases
    if kind == "holder":  # a service takes an alias another holds (on its network), or drops one
        if aliases and rng.random() < 0.5:
            dropped = rng.randrange(len(aliases))
            aliases = aliases[:dropped] + aliases[dropped + 1 :]
        elif aliases:
            held = rng.choice(aliases)
            aliases += (NetworkAlias(held.network, held.alias, rng.choice(sorted(services))),)
    if kind == "moved":
        return _moved(zone, rng), data
    if kind == "vip":  # a service's VIP comes, goes or moves (its task list kept)
        name = rng.choice(sorted(services))
        vip = rng.choice((None, f"10.7.0.{rng.randint(1, 5)}"))
        if vip is None:
            vips.pop(name, None)
        else:
            vips[name] = vip
    if kind == "added":
        name = rng.choice((_name(rng), _name(rng).upper(), "bad..name"))
        services[name] = _tasks(rng)
        for net in rng.sample(NETWORKS, rng.randint(1, 3)):
            by_network[net] = by_network[net] | {name}
    elif kind == "removed" and len(services) > 1:
        del services[rng.choice(sorted(services))]
    moved = ZoneData(
        zone.domain, services, zone.nodes, zone.nameservers, zone.version + 1, zone.local_site, vips
    )
    return moved, ScopeData(by_network, aliases, data.clients, data.owners, data.links, data.linkers)


def _fresh_index(services: dict[str, object]) -> tuple[dict[bytes, set[str]], dict[Labels, set[str]]]:
    by_last: dict[bytes, set[str]] = {}
    by_labels: dict[Labels, set[str]] = {}
    for name in services:
        labels = to_labels(name)
        if labels:
            by_last.setdefault(labels[-1], set()).add(name)
            by_labels.setdefault(labels, set()).add(name)
    return by_last, by_labels


@pytest.mark.parametrize("seed", range(20))
def test_view_names_follow_each_view_as_an_index_built_afresh(seed: int) -> None:
    """The index kept by the names that came or went equals one built from the view's names alone,
    across views that add, drop, case-fold and repeat names (and the same mapping handed twice)."""
    rng = random.Random(seed)
    zone, data = random_world(rng)
    index = ViewNames()
    for _ in range(30):
        zone, data = _evolved(zone, data, rng) if rng.random() < 0.8 else random_world(rng)
        view = scoped_zone(zone, frozenset(rng.sample(NETWORKS, rng.randint(1, 3))), data)
        for _ in range(rng.choice((1, 2))):
            index.follow(view.services)
        assert (index.by_last, index.by_labels) == _fresh_index(dict(view.services))
        for name in view.services:
            labels = to_labels(name)
            if labels:
                assert name in index.named(labels + (b"p2p",), (b"p2p",))
        assert (
            index.named((b"p2p",), (b"p2p",)) == set() and index.named((b"x", b"other"), (b"p2p",)) == set()
        )


@pytest.mark.parametrize("seed", range(25))
def test_link_scopes_kept_across_bursts_answer_as_the_full_link_scope(seed: int) -> None:
    """One `LinkCompilers` per link scope, the link scopes of a network set sharing one `ViewNames` (as
    `ClientScopes` keeps them), across bursts that move a service's tasks, add or remove services, each
    followed by a burst that changes only the version: every layered zone equals ``compile_zone`` of
    the full link scope (names, reverse and bare names, serial), and the version-only burst reuses the
    names laid over the network scope's (nothing they hold changed)."""
    _bursts(seed)


def test_the_version_only_bursts_do_reuse_the_layered_names() -> None:
    assert sum(_bursts(seed) for seed in range(6)) > 10  # the reuse check above is not vacuous


def _bursts(seed: int) -> int:
    """`test_link_scopes_kept_across_bursts_answer_as_the_full_link_scope`'s run: how many layered
    zones of a version-only burst reused their names."""
    rng = random.Random(seed)
    zone, data = random_world(rng)
    store = FragmentStore()
    nets_choices = (frozenset({"a"}), frozenset({"a", "b"}), frozenset(NETWORKS))
    indexes = {nets: ViewNames() for nets in nets_choices}
    kept = {(nets, link): LinkCompilers(store, indexes[nets]) for nets in nets_choices for link in data.links}
    under_compilers = {nets: ZoneCompiler(store) for nets in nets_choices}
    last: dict[tuple[frozenset[str], str], LayeredNames] = {}
    reused = 0
    for step in range(12):
        if step:
            zone, data = _evolved(zone, data, rng)
        for repeat in (False, True):
            if repeat:
                zone = dataclasses.replace(zone, version=zone.version + 1)  # a message-only burst
            for nets in nets_choices:
                under = scoped_zone(zone, nets, data)
                compiled = under_compilers[nets].compile(under)
                same_names(compiled, compile_zone(under))  # the incremental path, shared aliases too
                for linker in sorted(data.links):
                    view = with_links(under, zone, nets, data, linker)
                    compilers = kept[nets, linker]
                    fallbacks = _fallbacks(compilers)
                    mine = link_zone(view, under, compiled, compilers, data.links[linker])
                    same_names(mine, compile_zone(view))
                    if not isinstance(mine.names, LayeredNames):
                        continue  # no link changed a name: the network scope's zone itself
                    if repeat and _fallbacks(compilers) == fallbacks:  # (a collision compiles whole)
                        assert mine.names.own is last[nets, linker].own
                        reused += 1
                    last[nets, linker] = mine.names
    return reused


def _fallbacks(compilers: LinkCompilers) -> int:
    """The compiles of ``compilers`` that fell back to ``compile_zone`` (a collision: nothing reused)."""
    return sum(c.full_compiles for c in (compilers.linked, compilers.replaced, compilers.touched))
