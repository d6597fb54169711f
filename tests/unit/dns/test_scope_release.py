"""A dropped DNS scope lets go of its compiled services: the node's `FragmentStore` returns to its size
once the networks, services and links that made scopes come and go (the store kept every dropped
scope's fragments for the daemon's life before)."""

from __future__ import annotations

import pytest
from dnslib import DNSRecord

from p2porch.dns.resolver import Resolver
from p2porch.dns.scope import ClientScopes, NetworkAlias, ScopeData
from p2porch.dns.zone import TaskEntry, ZoneData
from p2porch.dns.zone_cache import FragmentStore, ZoneCompiler

BASE_ZONE = ZoneData(
    domain="p2p",
    services={"web": [TaskEntry(1, "10.240.1.2")], "db": [TaskEntry(1, "10.240.1.3")]},
    nodes={"n1": "10.0.0.1"},
)
BASE = ScopeData(
    services_by_network={"back": frozenset({"web", "db"})},
    aliases=(NetworkAlias("back", "database", "db"),),
    clients={"10.240.1.2": frozenset({"back"}), "10.240.1.3": frozenset({"back"})},
    links={"web": (("store", "db"),)},
    linkers={"10.240.1.2": "web"},
)


def with_cycle(i: int, odd_address: bool) -> tuple[ZoneData, ScopeData]:
    """The base world plus cycle ``i``'s network, its service (with a network alias) and a service on it
    linking to that service: a network scope and a link scope of their own, with names no other cycle
    uses. ``odd_address``: a client address in non-canonical form too (`ClientScopes` maps everything
    again: its full pass)."""
    net, target, linker, alias = f"net{i}", f"s{i}", f"l{i}", f"a{i}"
    zone = ZoneData(
        domain="p2p",
        services={
            **BASE_ZONE.services,
            target: [TaskEntry(1, f"10.241.{i}.2"), TaskEntry(2, f"10.241.{i}.3")],
            linker: [TaskEntry(1, f"10.242.{i}.2")],
        },
        nodes=BASE_ZONE.nodes,
        version=2 * i + 1,
        vips={target: f"10.239.{i}.1"},
    )
    clients = {**BASE.clients, f"10.241.{i}.2": frozenset({net}), f"10.242.{i}.2": frozenset({net})}
    if odd_address:
        clients["010.241.0.9"] = frozenset({net})
    data = ScopeData(
        services_by_network={**BASE.services_by_network, net: frozenset({target, linker})},
        aliases=(*BASE.aliases, NetworkAlias(net, alias, target)),
        clients=clients,
        links={**BASE.links, linker: ((f"peer{i}", target),)},
        linkers={**BASE.linkers, f"10.242.{i}.2": linker},
    )
    return zone, data


def store_size(store: FragmentStore) -> tuple[int, int]:
    return len(store.fragments), len(store._holders)


def answers(resolver: Resolver, name: str) -> list[str]:
    reply = resolver.resolve(DNSRecord.question(name).pack())
    assert isinstance(reply, bytes)
    return sorted(str(rr.rdata) for rr in DNSRecord.parse(reply).rr)


@pytest.mark.parametrize("odd_every", [0, 2, 1])
def test_scopes_created_and_dropped_many_times_leave_the_store_at_its_baseline(odd_every: int) -> None:
    """40 cycles of a network, a service and a linking service coming and going: every scope they made
    is dropped and the store holds what it held before the first (through the incremental remap, the
    full pass, and both)."""
    scopes = ClientScopes(Resolver(BASE_ZONE), Resolver)
    scopes.update(BASE_ZONE, BASE)
    store = scopes.default.fragments
    baseline, scope_count = store_size(store), scopes.scope_count
    for i in range(40):
        zone, data = with_cycle(i, odd_address=bool(odd_every) and i % odd_every == 0)
        scopes.update(zone, data)
        assert answers(scopes.for_host(f"10.242.{i}.2"), f"peer{i}.p2p") == [f"10.239.{i}.1"]  # its VIP
        alias_tasks = answers(scopes.for_host(f"10.241.{i}.2"), f"tasks.a{i}.p2p")
        assert alias_tasks == [f"10.241.{i}.2", f"10.241.{i}.3"]
        assert store_size(store) > baseline
        back = ZoneData(domain="p2p", services=BASE_ZONE.services, nodes=BASE_ZONE.nodes, version=2 * i + 2)
        scopes.update(back, BASE)
        assert store_size(store) == baseline, i
        assert scopes.scope_count == scope_count
    kept = scopes.for_host("10.240.1.2")  # the scopes kept all along still answer
    assert answers(kept, "store.p2p") == ["10.240.1.3"]


def test_a_closed_compiler_drops_only_the_fragments_no_other_compiler_holds() -> None:
    store = FragmentStore()
    one, two = ZoneCompiler(store), ZoneCompiler(store)
    shared = [TaskEntry(1, "10.240.1.2")]
    one.compile(ZoneData(domain="p2p", services={"web": shared, "db": [TaskEntry(1, "10.240.1.3")]}))
    two.compile(ZoneData(domain="p2p", services={"web": shared}))
    one.close()
    assert set(store.fragments) == {("p2p", "", "web")}
    two.close()
    assert store_size(store) == (0, 0)
    again = one.compile(ZoneData(domain="p2p", services={"web": shared}))  # a closed compiler starts afresh
    assert (b"web", b"p2p") in again.names and set(store.fragments) == {("p2p", "", "web")}
