"""A link scope's layered zone (`link_scope.link_zone`, as `ClientScopes` keeps it across zones) answers
every query exactly as the full link scope (`Resolver(scoped_zone(..., linker))`) does, over random zones:
services, network aliases, stack short names, links (to a service, over an alias, over a name a service
holds), dotted names, names that collide (``tasks.x``, ``1.x``, ``node``, case variants), VIPs, ports,
slots, unhealthy tasks, shared addresses; random queries of every type, asked with and without the
domain, in random case, and the PTR names of every address."""

from __future__ import annotations

import random

import pytest
from dnslib import DNSRecord

from p2porch.dns.link_scope import LayeredNames, LinkCompilers, link_zone
from p2porch.dns.resolver import Resolver
from p2porch.dns.scope import ClientScopes, NetworkAlias, ScopeData, scoped_zone
from p2porch.dns.zone import CompiledZone, PortEntry, TaskEntry, ZoneData, compile_zone
from p2porch.dns.zone_cache import FragmentStore

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
    )
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
