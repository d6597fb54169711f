"""DNS scoped to the querier's networks: a task resolves only services that share a network with it and
the aliases of its networks; other sources see everything."""

from __future__ import annotations

import dataclasses
import socket

import dns.message
import dns.rcode
import pytest
import trio
from dnslib import QTYPE, DNSRecord

from p2porch.dns import mmsg
from p2porch.dns import server as server_mod
from p2porch.dns.resolver import FORWARD, Resolver
from p2porch.dns.scope import ClientScopes, NetworkAlias, ScopeData, scoped_zone, visible_services
from p2porch.dns.server import serve_dns
from p2porch.dns.zone import TaskEntry, ZoneData

ZONE = ZoneData(
    domain="p2p",
    services={
        "web": [TaskEntry(1, "10.240.1.2")],
        "db": [TaskEntry(1, "10.240.1.3")],
        "other": [TaskEntry(1, "10.240.2.2")],
        "db.shop": [TaskEntry(1, "10.240.1.3")],  # a stack short name of db
    },
    nodes={"n1": "10.0.0.1"},
)
DATA = ScopeData(
    services_by_network={
        "front": frozenset({"web"}),
        "back": frozenset({"web", "db"}),
        "p2porch": frozenset({"other"}),
    },
    aliases=(NetworkAlias("back", "database", "db"), NetworkAlias("front", "www", "web")),
    clients={
        "10.240.1.2": frozenset({"front", "back"}),
        "10.240.1.3": frozenset({"back"}),
        "10.240.2.2": frozenset({"p2porch"}),
    },
    owners={"db.shop": "db"},
)


def answer(resolver: Resolver, name: str) -> tuple[int, list[str]]:
    reply = resolver.resolve(DNSRecord.question(name).pack())
    assert isinstance(reply, bytes)
    parsed = DNSRecord.parse(reply)
    return parsed.header.rcode, sorted(str(rr.rdata) for rr in parsed.rr if rr.rtype == QTYPE.A)


def test_visible_services_are_those_sharing_a_network() -> None:
    assert visible_services(frozenset({"back"}), DATA) == {"web", "db"}
    assert visible_services(frozenset({"front"}), DATA) == {"web"}
    assert visible_services(frozenset({"nowhere"}), DATA) == set()


def test_scoped_zone_drops_other_services_and_adds_aliases_of_its_networks() -> None:
    zone = scoped_zone(ZONE, frozenset({"back"}), DATA)
    assert set(zone.services) == {"web", "db", "db.shop", "database"}
    zone = scoped_zone(ZONE, frozenset({"front"}), DATA)
    assert set(zone.services) == {"web", "www"}
    assert zone.nodes == ZONE.nodes


def test_scoped_zone_keeps_the_vips_of_visible_services_and_their_aliases() -> None:
    with_vips = dataclasses.replace(ZONE, vips={"db": "10.239.0.7", "other": "10.239.0.9"})
    zone = scoped_zone(with_vips, frozenset({"back"}), DATA)
    assert dict(zone.vips) == {"db": "10.239.0.7", "database": "10.239.0.7"}
    rcode, addresses = answer(Resolver(zone), "database.p2p")
    assert (rcode, addresses) == (0, ["10.239.0.7"])  # the alias answers the VIP, not the task
    assert dict(scoped_zone(with_vips, frozenset({"p2porch"}), DATA).vips) == {"other": "10.239.0.9"}


def test_client_scopes_answer_each_task_from_its_networks() -> None:
    scopes = ClientScopes(Resolver(ZONE), Resolver)
    scopes.update(ZONE, DATA)
    assert scopes.scope_count == 3
    db_task = scopes.for_host("10.240.1.3")
    assert answer(db_task, "web.p2p") == (0, ["10.240.1.2"])
    assert answer(db_task, "database.p2p") == (0, ["10.240.1.3"])
    assert answer(db_task, "other.p2p")[0] == 3  # NXDOMAIN: shares no network
    assert answer(db_task, "www.p2p")[0] == 3  # an alias on a network it is not on
    other = scopes.for_host("10.240.2.2")
    assert answer(other, "db.p2p")[0] == 3 and answer(other, "other.p2p") == (0, ["10.240.2.2"])
    assert scopes.by_packed[socket.inet_aton("10.240.1.3")] is db_task
    # nodes, members, loopback and not-yet-committed task addresses get the whole zone
    host = scopes.for_host("10.0.0.9")
    assert host is scopes.default
    assert answer(host, "other.p2p") == (0, ["10.240.2.2"]) and answer(host, "db.p2p") == (0, ["10.240.1.3"])


def test_update_follows_membership_changes_and_shares_counters() -> None:
    scopes = ClientScopes(Resolver(ZONE), Resolver)
    scopes.update(ZONE, DATA)
    moved = ScopeData(
        DATA.services_by_network, DATA.aliases, {"10.240.1.3": frozenset({"front"})}, DATA.owners
    )
    scopes.update(ZONE, moved)
    assert answer(scopes.for_host("10.240.1.3"), "db.p2p")[0] == 3
    assert scopes.for_host("10.240.2.2") is scopes.default  # its task is gone: full view
    assert scopes.for_host("10.240.1.3").counters is scopes.default.counters


def test_scopes_share_the_default_resolvers_compiled_services() -> None:
    scopes = ClientScopes(Resolver(ZONE), Resolver)
    scopes.update(ZONE, DATA)
    db_task = scopes.for_host("10.240.1.3")
    assert db_task.fragments is scopes.default.fragments
    web = ("p2p", "", "web")
    db_alias = ("p2p", "", "database")  # the alias: its own name, its service's entries
    assert {web, db_alias} <= set(scopes.default.fragments.fragments)
    kept = scopes.default.fragments.fragments[web]
    scopes.update(dataclasses.replace(ZONE, version=2), DATA)
    assert scopes.default.fragments.fragments[web] is kept  # neither resolver compiled it again


# --- through the server: the UDP fast paths (mmsg and plain) and TCP pick the querier's resolver ---

LOOPBACK_TASK = ScopeData(
    services_by_network=DATA.services_by_network,
    aliases=DATA.aliases,
    clients={"127.0.0.1": frozenset({"front"})},  # the test's client is a task on "front"
    owners=DATA.owners,
)


@pytest.mark.parametrize("mode", ["mmsg", "plain"])
def test_server_answers_each_client_from_its_scope(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if mode == "mmsg" and not mmsg.available():
        pytest.skip("recvmmsg/sendmmsg not available here")
    monkeypatch.setattr(server_mod, "USE_MMSG", mode == "mmsg")
    default = Resolver(ZONE)
    scopes = ClientScopes(default, Resolver)
    scopes.update(ZONE, LOOPBACK_TASK)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(
                lambda task_status: serve_dns(
                    default, [("127.0.0.1", 0)], [], timeout_s=1.0, scopes=scopes, task_status=task_status
                )
            )
            addr = bound[0]
            sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            results = {}
            for name in ("web.p2p", "www.p2p", "db.p2p", "other.p2p", "web.p2p"):  # web twice: a cache hit
                await sock.sendto(dns.message.make_query(name, "A").to_wire(), addr)
                reply = dns.message.from_wire(await sock.recv(4096))
                results.setdefault(name, []).append(reply.rcode())
            assert results == {
                "web.p2p": [dns.rcode.NOERROR, dns.rcode.NOERROR],
                "www.p2p": [dns.rcode.NOERROR],
                "db.p2p": [dns.rcode.NXDOMAIN],
                "other.p2p": [dns.rcode.NXDOMAIN],
            }
            stream = await trio.open_tcp_stream(*addr)
            wire = dns.message.make_query("db.p2p", "A").to_wire()
            await stream.send_all(len(wire).to_bytes(2, "big") + wire)
            data = b""
            while len(data) < 2 or len(data) < 2 + int.from_bytes(data[:2], "big"):
                data += await stream.receive_some(4096)
            assert dns.message.from_wire(data[2:]).rcode() == dns.rcode.NXDOMAIN
            await stream.aclose()
            nursery.cancel_scope.cancel()

    trio.run(main)


# --- Compose links: an alias only the linking service's tasks resolve ---

LINKED_ZONE = dataclasses.replace(
    ZONE,
    services={
        **ZONE.services,
        "tinode-0": [TaskEntry(1, "10.240.1.10")],
        "tinode-1": [TaskEntry(1, "10.240.1.11")],
        "exporter-0": [TaskEntry(1, "10.240.1.20")],
        "exporter-1": [TaskEntry(1, "10.240.1.21")],
    },
    vips={"tinode-1": "10.239.0.11"},
)
LINKED = ScopeData(
    services_by_network={
        **DATA.services_by_network,
        "back": frozenset({"web", "db", "tinode-0", "tinode-1", "exporter-0", "exporter-1"}),
    },
    aliases=(*DATA.aliases, NetworkAlias("back", "tinode.host", "db")),  # another service's network alias
    clients={
        **DATA.clients,
        "10.240.1.20": frozenset({"back"}),
        "10.240.1.21": frozenset({"back"}),
    },
    owners=DATA.owners,
    links={
        "exporter-0": (("tinode.host", "tinode-0"), ("web", "db"), ("gone", "other")),
        "exporter-1": (("tinode.host", "tinode-1"),),
    },
    linkers={"10.240.1.20": "exporter-0", "10.240.1.21": "exporter-1"},
)


def test_a_link_is_in_the_linking_services_scope_only() -> None:
    back = frozenset({"back"})
    mine = scoped_zone(LINKED_ZONE, back, LINKED, "exporter-0")
    theirs = scoped_zone(LINKED_ZONE, back, LINKED, "exporter-1")
    nobody = scoped_zone(LINKED_ZONE, back, LINKED)
    assert mine.services["tinode.host"] is LINKED_ZONE.services["tinode-0"]  # the link beats db's alias
    assert theirs.services["tinode.host"] is LINKED_ZONE.services["tinode-1"]
    assert nobody.services["tinode.host"] is LINKED_ZONE.services["db"]  # no link: the network alias
    assert dict(theirs.vips)["tinode.host"] == "10.239.0.11" and "tinode.host" not in mine.vips
    assert "tinode.host" in mine.bare  # a dotted alias is answered as asked
    assert mine.services["web"] is LINKED_ZONE.services["web"]  # a service name wins over a link
    assert "gone" not in mine.services  # a target the task shares no network with is not linked


def test_two_linking_services_get_their_own_resolvers_for_the_same_alias() -> None:
    scopes = ClientScopes(Resolver(LINKED_ZONE), Resolver)
    scopes.update(LINKED_ZONE, LINKED)
    assert scopes.scope_count == 5  # three network sets, two of them also per linking service
    assert answer(scopes.for_host("10.240.1.20"), "tinode.host") == (0, ["10.240.1.10"])
    assert answer(scopes.for_host("10.240.1.21"), "tinode.host.p2p") == (0, ["10.239.0.11"])
    assert answer(scopes.for_host("10.240.1.3"), "tinode.host.p2p") == (0, ["10.240.1.3"])  # db's alias
    # the scopes share compiled fragments by name: the next zone still answers each its own target
    moved = {**LINKED_ZONE.services, "tinode-0": [TaskEntry(1, "10.240.1.12")]}
    scopes.update(dataclasses.replace(LINKED_ZONE, services=moved, version=2), LINKED)
    assert answer(scopes.for_host("10.240.1.20"), "tinode.host") == (0, ["10.240.1.12"])
    assert answer(scopes.for_host("10.240.1.21"), "tinode.host") == (0, ["10.239.0.11"])
    scopes.update(LINKED_ZONE, LINKED)
    # exporter-0 loses its links: its address follows to the plain scope of its networks
    unlinked = dataclasses.replace(LINKED, linkers={"10.240.1.21": "exporter-1"})
    scopes.update(LINKED_ZONE, unlinked)
    assert scopes.for_host("10.240.1.20") is scopes.for_host("10.240.1.3")
    assert scopes.scope_count == 4
    fresh = ClientScopes(Resolver(LINKED_ZONE), Resolver)
    fresh.update(LINKED_ZONE, unlinked)
    assert {h: r._zone for h, r in scopes.by_host.items()} == {h: r._zone for h, r in fresh.by_host.items()}


def test_tasks_of_an_alias_answer_where_the_alias_does() -> None:
    """Docker's DNS answers ``tasks.<alias>`` for a service's network aliases, dotted ones too, asked as
    they are; the link's ``tasks.`` name likewise; on a network without the alias it is forwarded."""
    scopes = ClientScopes(Resolver(LINKED_ZONE), Resolver)
    scopes.update(LINKED_ZONE, LINKED)
    back, elsewhere = scopes.for_host("10.240.1.3"), scopes.for_host("10.240.2.2")
    assert answer(back, "tasks.database") == (0, ["10.240.1.3"])
    assert answer(back, "tasks.tinode.host") == (0, ["10.240.1.3"])  # db's dotted alias, asked as it is
    assert answer(scopes.for_host("10.240.1.21"), "tasks.tinode.host") == (0, ["10.240.1.11"])  # the link
    for name in ("tasks.tinode.host", "tasks.database", "tasks.tinode.host.example"):
        assert elsewhere.resolve(DNSRecord.question(name).pack()) is FORWARD, name
    assert back.resolve(DNSRecord.question("tasks.x.tinode.host").pack()) is FORWARD
