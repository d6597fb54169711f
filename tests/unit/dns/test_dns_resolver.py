"""Unit tests of the pure cluster DNS resolver; responses are decoded with dnspython (not dnslib)."""

from __future__ import annotations

import random

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from p2porch.dns.resolver import FORWARD, SERVFAIL, Resolver, RotatingAnswer
from p2porch.dns.zone import PortEntry, TaskEntry, ZoneData
from p2porch.errors import ConfigError

A = dns.rdatatype.A


def make_zone(**overrides: object) -> ZoneData:
    services = {
        "web": [
            TaskEntry(1, "10.240.1.2", ports=(PortEntry(80), PortEntry(53, "udp"))),
            TaskEntry(2, "10.240.2.2", ports=(PortEntry(80), PortEntry(53, "udp"))),
            TaskEntry(3, "10.240.3.2", healthy=False, ports=(PortEntry(80),)),
            TaskEntry(4, "10.240.3.3", running=False, ports=(PortEntry(80),)),
            TaskEntry(5, "10.240.1.9", ports=(PortEntry(80),)),
        ],
        "db": [TaskEntry(1, "10.240.2.7", healthy=False)],
    }
    kwargs: dict[str, object] = {
        "services": services,
        "nodes": {"n1": "192.168.50.1", "n2": "192.168.50.2"},
        "nameservers": ("192.168.50.1",),
        "version": 42,
    }
    kwargs.update(overrides)
    return ZoneData(**kwargs)  # type: ignore[arg-type]


def ask(
    resolver: Resolver,
    name: str,
    rdtype: str | int = "A",
    *,
    tcp: bool = False,
    use_edns: int | bool = False,
    payload: int = 1232,
    qid: int | None = None,
    want_dnssec: bool = False,
) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, use_edns=use_edns, payload=payload, want_dnssec=want_dnssec)
    if qid is not None:
        query.id = qid
    wire = query.to_wire()
    out = resolver.resolve(wire, tcp)
    assert isinstance(out, bytes), out
    response = dns.message.from_wire(out)
    assert response.id == query.id
    assert response.flags & dns.flags.QR
    assert [str(q.name) for q in response.question] == [str(q.name) for q in query.question]
    return response


def addresses(response: dns.message.Message) -> list[str]:
    return [rd.address for rrset in response.answer if rrset.rdtype == A for rd in rrset]


def ordered_addresses(wire: bytes) -> list[str]:
    """A addresses in wire order (dnspython merges records into rrsets but keeps their order)."""
    return addresses(dns.message.from_wire(wire))


@pytest.fixture
def resolver() -> Resolver:
    return Resolver(make_zone(), rng=random.Random(7))


def test_service_name_answers_running_healthy_tasks_only(resolver: Resolver) -> None:
    response = ask(resolver, "web.p2p")
    assert response.rcode() == dns.rcode.NOERROR
    assert response.flags & dns.flags.AA
    assert sorted(addresses(response)) == ["10.240.1.2", "10.240.1.9", "10.240.2.2"]
    assert response.answer[0].ttl == 5


def test_tasks_name_is_the_same_set(resolver: Resolver) -> None:
    assert sorted(addresses(ask(resolver, "tasks.web.p2p"))) == ["10.240.1.2", "10.240.1.9", "10.240.2.2"]


def test_bare_tasks_name_answers_like_swarm_and_unknown_services_still_forward(resolver: Resolver) -> None:
    response = ask(resolver, "tasks.web")
    assert response.rcode() == dns.rcode.NOERROR and response.flags & dns.flags.AA
    assert sorted(addresses(response)) == ["10.240.1.2", "10.240.1.9", "10.240.2.2"]
    assert [str(r.name) for r in response.answer] == ["tasks.web."]
    # A service with no healthy task exists: NODATA, not a forward.
    db = ask(resolver, "tasks.db")
    assert db.rcode() == dns.rcode.NOERROR and addresses(db) == []
    # Not a service: an ordinary foreign name, forwarded.
    query = dns.message.make_query("tasks.nothere", "A").to_wire()
    assert resolver.resolve(query) is FORWARD


def test_rotation_cycles_first_address_through_all_tasks(resolver: Resolver) -> None:
    query = dns.message.make_query("web.p2p", "A").to_wire()
    orders = []
    for _ in range(6):
        out = resolver.resolve(query)
        assert isinstance(out, bytes)
        orders.append(ordered_addresses(out))
    assert {order[0] for order in orders[:3]} == {"10.240.1.2", "10.240.1.9", "10.240.2.2"}
    assert all(sorted(o) == sorted(orders[0]) for o in orders)
    assert orders[:3] == orders[3:]  # a rotation, not a shuffle: every order keeps the cycle
    assert resolver.counters.cache_hits == 5


def test_rotation_start_depends_on_owned_rng() -> None:
    query = dns.message.make_query("web.p2p", "A").to_wire()
    firsts = set()
    for seed in range(12):
        out = Resolver(make_zone(), rng=random.Random(seed)).resolve(query)
        assert isinstance(out, bytes)
        firsts.add(ordered_addresses(out)[0])
    assert len(firsts) > 1


def test_slot_name_answers_the_task_in_that_slot(resolver: Resolver) -> None:
    assert addresses(ask(resolver, "2.web.p2p")) == ["10.240.2.2"]
    assert ask(resolver, "3.web.p2p").rcode() == dns.rcode.NXDOMAIN  # unhealthy
    assert ask(resolver, "4.web.p2p").rcode() == dns.rcode.NXDOMAIN  # not running
    assert ask(resolver, "9.web.p2p").rcode() == dns.rcode.NXDOMAIN


def test_srv_targets_slots_with_glue(resolver: Resolver) -> None:
    response = ask(resolver, "_80._tcp.web.p2p", "SRV")
    assert response.rcode() == dns.rcode.NOERROR
    srv = sorted((rd.port, str(rd.target)) for rd in response.answer[0])
    assert srv == [(80, "1.web.p2p."), (80, "2.web.p2p."), (80, "5.web.p2p.")]
    glue = {str(rrset.name): [rd.address for rd in rrset] for rrset in response.additional}
    assert glue == {"1.web.p2p.": ["10.240.1.2"], "2.web.p2p.": ["10.240.2.2"], "5.web.p2p.": ["10.240.1.9"]}


def test_srv_udp_ports_and_unknown_ports(resolver: Resolver) -> None:
    response = ask(resolver, "_53._udp.web.p2p", "SRV")
    assert sorted(str(rd.target) for rd in response.answer[0]) == ["1.web.p2p.", "2.web.p2p."]
    assert ask(resolver, "_53._tcp.web.p2p", "SRV").rcode() == dns.rcode.NXDOMAIN
    assert ask(resolver, "_81._tcp.web.p2p", "SRV").rcode() == dns.rcode.NXDOMAIN
    empty_non_terminal = ask(resolver, "_tcp.web.p2p", "SRV")
    assert empty_non_terminal.rcode() == dns.rcode.NOERROR
    assert not empty_non_terminal.answer


def test_srv_query_on_service_name_is_nodata(resolver: Resolver) -> None:
    response = ask(resolver, "web.p2p", "SRV")
    assert response.rcode() == dns.rcode.NOERROR and not response.answer
    assert response.authority[0].rdtype == dns.rdatatype.SOA


def test_node_names(resolver: Resolver) -> None:
    assert addresses(ask(resolver, "n2.node.p2p")) == ["192.168.50.2"]
    assert ask(resolver, "n3.node.p2p").rcode() == dns.rcode.NXDOMAIN
    assert ask(resolver, "node.p2p").rcode() == dns.rcode.NOERROR  # empty non-terminal


def test_ptr_for_task_addresses(resolver: Resolver) -> None:
    response = ask(resolver, "2.2.240.10.in-addr.arpa", "PTR")
    assert [str(rd.target) for rd in response.answer[0]] == ["2.web.p2p."]
    assert response.flags & dns.flags.AA


def test_reverse_names_we_do_not_own_are_forwarded(resolver: Resolver) -> None:
    unhealthy = dns.message.make_query("2.3.240.10.in-addr.arpa", "PTR").to_wire()
    assert resolver.resolve(unhealthy) is FORWARD
    a_of_reverse = dns.message.make_query("2.2.240.10.in-addr.arpa", "A").to_wire()
    assert resolver.resolve(a_of_reverse) is FORWARD
    assert resolver.resolve(dns.message.make_query("1.0.0.127.in-addr.arpa", "PTR").to_wire()) is FORWARD


def test_names_outside_the_domain_are_forwarded_and_the_decision_cached(resolver: Resolver) -> None:
    wire = dns.message.make_query("example.com", "A").to_wire()
    assert resolver.resolve(wire) is FORWARD
    assert resolver.resolve(wire) is FORWARD
    assert resolver.counters.cache_hits == 1
    assert resolver.resolve(dns.message.make_query("p2p.example.com", "A").to_wire()) is FORWARD
    assert resolver.resolve(dns.message.make_query("xp2p.net", "A").to_wire()) is FORWARD


def test_plain_single_label_names_are_never_forwarded(resolver: Resolver) -> None:
    # A container resolving the bare name "web" with search domain p2p also asks for "web." itself:
    # that must not wait on the upstream resolvers (dnsmasq's domain-needed). A name of the zone answers
    # as Docker's DNS answers a service's bare name (it was NXDOMAIN); any other is NXDOMAIN.
    reply = ask(resolver, "web", "A")
    assert reply.rcode() == dns.rcode.NOERROR and sorted(addresses(reply)) == ["10.240.1.2", "10.240.1.9",
                                                                               "10.240.2.2"]  # fmt: skip
    nodata = ask(resolver, "web", "AAAA")
    assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer
    assert ask(resolver, "xp2p", "AAAA").rcode() == dns.rcode.NXDOMAIN
    assert ask(resolver, "nosuch", "A").rcode() == dns.rcode.NXDOMAIN


def test_a_name_of_the_zone_is_found_under_a_stacks_search_domain() -> None:
    """A stack's task searches ``shop.p2p`` then ``p2p``; busybox ``nslookup shop-db`` asks both at once
    and exited 1 on ``shop-db.shop.p2p``'s NXDOMAIN although ``shop-db.p2p`` answered. A name of the zone
    answers under the stack's subdomain too, AAAA with NODATA (RFC 2308), an unknown one NXDOMAIN."""
    services = {"shop-db": [TaskEntry(1, "10.240.2.7")], "shop-web": [TaskEntry(1, "10.240.1.2")]}
    services["web.shop"] = services["shop-web"]  # the stack member's short name (member/views.py)
    resolver = Resolver(make_zone(services=services), rng=random.Random(7))
    assert addresses(ask(resolver, "shop-db.shop.p2p")) == ["10.240.2.7"]
    assert addresses(ask(resolver, "tasks.shop-db.shop.p2p")) == ["10.240.2.7"]
    assert addresses(ask(resolver, "web.shop.p2p")) == ["10.240.1.2"]
    for name in ("shop-db.shop.p2p", "shop-db.p2p", "shop-db"):
        nodata = ask(resolver, name, "AAAA")
        assert (nodata.rcode(), nodata.answer) == (dns.rcode.NOERROR, []), name
        assert nodata.authority[0].rdtype == dns.rdatatype.SOA
    for name in ("nosuch.shop.p2p", "shop-db.node.p2p", "shop-db.web.shop.p2p", "shop-db.nosuch.p2p"):
        assert ask(resolver, name).rcode() == dns.rcode.NXDOMAIN, name


def test_apex_soa_ns_and_glue(resolver: Resolver) -> None:
    soa = ask(resolver, "p2p", "SOA").answer[0][0]
    assert (str(soa.mname), str(soa.rname), soa.serial, soa.minimum) == ("ns.p2p.", "hostmaster.p2p.", 42, 5)
    ns = ask(resolver, "p2p", "NS")
    assert [str(rd.target) for rd in ns.answer[0]] == ["ns.p2p."]
    assert [rd.address for rd in ns.additional[0]] == ["192.168.50.1"]
    assert addresses(ask(resolver, "ns.p2p")) == ["192.168.50.1"]
    everything = ask(resolver, "p2p", "ANY")
    assert {rrset.rdtype for rrset in everything.answer} == {dns.rdatatype.SOA, dns.rdatatype.NS}
    assert ask(resolver, "p2p", "A").rcode() == dns.rcode.NOERROR


def test_nxdomain_carries_soa_in_authority(resolver: Resolver) -> None:
    response = ask(resolver, "nope.p2p")
    assert response.rcode() == dns.rcode.NXDOMAIN
    assert response.flags & dns.flags.AA
    assert not response.answer
    assert [rrset.rdtype for rrset in response.authority] == [dns.rdatatype.SOA]
    assert str(response.authority[0].name) == "p2p."
    assert ask(resolver, "a.b.web.p2p").rcode() == dns.rcode.NXDOMAIN


def test_nodata_for_known_names_without_that_type(resolver: Resolver) -> None:
    for name, rdtype in [("web.p2p", "AAAA"), ("n1.node.p2p", "MX"), ("db.p2p", "A"), ("tasks.db.p2p", "A")]:
        response = ask(resolver, name, rdtype)
        assert response.rcode() == dns.rcode.NOERROR, name
        assert not response.answer, name
        assert response.authority[0].rdtype == dns.rdatatype.SOA, name
        assert response.authority[0].ttl == 5


def test_names_are_case_insensitive_and_keep_question_case(resolver: Resolver) -> None:
    response = ask(resolver, "WeB.P2p")
    assert str(response.question[0].name) == "WeB.P2p."
    assert str(response.answer[0].name) == "WeB.P2p."
    assert sorted(addresses(response)) == ["10.240.1.2", "10.240.1.9", "10.240.2.2"]
    assert addresses(ask(resolver, "N1.NODE.P2P")) == ["192.168.50.1"]
    assert ask(resolver, "_80._TCP.Web.p2P", "SRV").answer


def test_case_variants_are_cached_separately_with_their_own_case(resolver: Resolver) -> None:
    ask(resolver, "web.p2p")
    response = ask(resolver, "WEB.P2P")
    assert str(response.answer[0].name) == "WEB.P2P."


def test_ttl_is_configurable() -> None:
    resolver = Resolver(make_zone(), ttl_s=30)
    assert ask(resolver, "web.p2p").answer[0].ttl == 30
    assert ask(resolver, "nope.p2p").authority[0][0].minimum == 30
    with pytest.raises(ConfigError):
        Resolver(make_zone(), ttl_s=-1)


def test_other_domain_and_multi_label_domain() -> None:
    resolver = Resolver(make_zone(domain="Cluster.Local"))
    assert sorted(addresses(ask(resolver, "web.cluster.local"))) == ["10.240.1.2", "10.240.1.9", "10.240.2.2"]
    assert resolver.resolve(dns.message.make_query("web.p2p", "A").to_wire()) is FORWARD


def test_edns_is_echoed_with_our_payload_size_and_do_bit(resolver: Resolver) -> None:
    response = ask(resolver, "web.p2p", use_edns=0, payload=4096, want_dnssec=True)
    assert response.edns == 0
    assert response.payload == 1232
    assert response.ednsflags & dns.flags.DO
    plain = ask(resolver, "web.p2p")
    assert plain.edns == -1


def test_edns_unknown_options_are_ignored(resolver: Resolver) -> None:
    query = dns.message.make_query("web.p2p", "A", use_edns=0, options=[dns.edns.GenericOption(10, b"c" * 8)])
    out = resolver.resolve(query.to_wire())
    assert isinstance(out, bytes)
    response = dns.message.from_wire(out)
    assert response.rcode() == dns.rcode.NOERROR and len(addresses(response)) == 3
    assert not response.options


def test_edns_version_1_gets_badvers(resolver: Resolver) -> None:
    query = dns.message.make_query("web.p2p", "A", use_edns=1)
    out = resolver.resolve(query.to_wire())
    assert isinstance(out, bytes)
    response = dns.message.from_wire(out)
    assert response.rcode() == dns.rcode.BADVERS
    assert not response.answer


def big_zone(n_tasks: int) -> ZoneData:
    tasks = [TaskEntry(i, f"10.240.{i // 200}.{i % 200 + 2}") for i in range(n_tasks)]
    return ZoneData(services={"big": tasks})


def test_udp_truncation_without_edns_then_full_answer_over_tcp() -> None:
    resolver = Resolver(big_zone(40))  # 40 * 16 bytes of answers > 512
    udp = ask(resolver, "big.p2p")
    assert udp.flags & dns.flags.TC
    assert not udp.answer
    tcp = ask(resolver, "big.p2p", tcp=True)
    assert not tcp.flags & dns.flags.TC
    assert len(addresses(tcp)) == 40
    assert resolver.counters.truncated == 1


def test_edns_size_is_honoured_up_to_our_maximum() -> None:
    resolver = Resolver(big_zone(40))
    assert len(addresses(ask(resolver, "big.p2p", use_edns=0, payload=1232))) == 40
    small = ask(resolver, "big.p2p", use_edns=0, payload=600)
    assert small.flags & dns.flags.TC and small.edns == 0
    tiny = ask(resolver, "big.p2p", use_edns=0, payload=100)  # below 512 counts as 512
    assert tiny.flags & dns.flags.TC
    large = Resolver(big_zone(100))  # 1600 bytes of answers > our 1232 even if the client offers 4096
    assert ask(large, "big.p2p", use_edns=0, payload=4096).flags & dns.flags.TC
    assert len(addresses(ask(large, "big.p2p", tcp=True))) == 100
    roomy = Resolver(big_zone(100), max_udp_payload_bytes=4096)
    assert len(addresses(ask(roomy, "big.p2p", use_edns=0, payload=4096))) == 100


def test_truncated_udp_responses_stay_within_the_limit() -> None:
    resolver = Resolver(big_zone(300))
    for payload in (512, 700, 1232):
        wire = dns.message.make_query("big.p2p", "A", use_edns=0, payload=payload).to_wire()
        out = resolver.resolve(wire)
        assert isinstance(out, bytes) and len(out) <= payload


def test_rotation_over_tcp_and_large_sets() -> None:
    resolver = Resolver(big_zone(100))
    wire = dns.message.make_query("big.p2p", "A").to_wire()
    firsts = []
    for _ in range(100):
        out = resolver.resolve(wire, True)
        assert isinstance(out, bytes)
        found = ordered_addresses(out)
        assert len(found) == 100
        firsts.append(found[0])
    assert len(set(firsts)) == 100


def test_cache_patches_the_id_and_never_serves_another_question(resolver: Resolver) -> None:
    first = ask(resolver, "n1.node.p2p", qid=1)
    second = ask(resolver, "n1.node.p2p", qid=2)
    assert first.answer == second.answer
    assert resolver.counters.cache_hits == 1
    other = ask(resolver, "n2.node.p2p", qid=2)
    assert addresses(other) == ["192.168.50.2"]


def test_udp_and_tcp_are_cached_separately() -> None:
    resolver = Resolver(big_zone(40))
    assert ask(resolver, "big.p2p").flags & dns.flags.TC
    assert len(addresses(ask(resolver, "big.p2p", tcp=True))) == 40
    assert ask(resolver, "big.p2p").flags & dns.flags.TC


def test_zone_update_changes_answers_at_once(resolver: Resolver) -> None:
    assert sorted(addresses(ask(resolver, "web.p2p"))) == ["10.240.1.2", "10.240.1.9", "10.240.2.2"]
    assert ask(resolver, "api.p2p").rcode() == dns.rcode.NXDOMAIN
    resolver.update_zone(
        ZoneData(services={"web": [TaskEntry(1, "10.240.1.2")], "api": [TaskEntry(1, "10.240.9.9")]})
    )
    assert addresses(ask(resolver, "web.p2p")) == ["10.240.1.2"]
    assert addresses(ask(resolver, "api.p2p")) == ["10.240.9.9"]
    assert resolver.zone_generation == 1


def test_udp_cache_exposes_reply_tails_for_the_server_fast_path(resolver: Resolver) -> None:
    """The server answers hits straight from `udp_cache`: a value is the reply after the ID."""
    single = dns.message.make_query("n1.node.p2p", "A").to_wire()
    reply = resolver.resolve(single)
    assert isinstance(reply, bytes)
    assert resolver.udp_cache[single[2:]] == reply[2:]
    rotating = dns.message.make_query("web.p2p", "A").to_wire()
    first = resolver.resolve(rotating)
    assert isinstance(first, bytes)
    entry = resolver.udp_cache[rotating[2:]]
    assert isinstance(entry, RotatingAnswer)
    tails = [entry.next_tail() for _ in range(3)]
    via_resolve = [resolver.resolve(rotating) for _ in range(3)]
    # both advance the same counter: tails are rotations 2-4, resolve gives 5-7, equal mod 3 tasks
    assert [rotating[:2] + t for t in tails] == via_resolve
    assert ordered_addresses(rotating[:2] + tails[0]) != ordered_addresses(rotating[:2] + tails[1])
    resolver.update_zone(make_zone(version=43))
    assert resolver.udp_cache == {}


def test_cache_is_bounded() -> None:
    resolver = Resolver(make_zone(), cache_max_entries=10)
    for i in range(50):
        ask(resolver, f"x{i}.p2p")
    assert resolver.cache_size() <= 10


def test_cache_is_bounded_in_bytes_and_long_queries_are_not_cached() -> None:
    resolver = Resolver(make_zone(), cache_max_bytes=64 * 1024)
    padding = dns.edns.GenericOption(65001, b"p" * 300)  # distinct, large (but < 512 byte) queries
    for i in range(2000):
        q = dns.message.make_query(f"foreign{i}.example.com", "A", use_edns=0, options=[padding])
        resolver.resolve(q.to_wire(), tcp=i % 2 == 0)
        assert resolver.cache_bytes <= 64 * 1024
    assert resolver.cache_size() > 0
    huge = dns.message.make_query("foreign.example.com", "A", use_edns=0, options=[padding, padding])
    before = resolver.cache_bytes
    resolver.resolve(huge.to_wire(), tcp=True)
    assert len(huge.to_wire()) > 512 and resolver.cache_bytes == before
    with pytest.raises(ConfigError):
        Resolver(make_zone(), cache_max_bytes=10)


# ---- malformed, hostile and unsupported queries ------------------------------------------------


def test_short_packets_and_responses_are_dropped(resolver: Resolver) -> None:
    assert resolver.resolve(b"") is None
    assert resolver.resolve(b"\x12\x34\x01") is None
    response = dns.message.make_response(dns.message.make_query("web.p2p", "A")).to_wire()
    assert resolver.resolve(response) is None  # never answer a response (reflection loops)
    assert resolver.counters.dropped == 3


def test_garbage_after_a_header_gets_formerr(resolver: Resolver) -> None:
    out = resolver.resolve(b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07web")
    assert isinstance(out, bytes)
    response = dns.message.from_wire(out)
    assert response.id == 0xABCD and response.rcode() == dns.rcode.FORMERR
    assert resolver.counters.formerr == 1


def test_two_questions_get_formerr(resolver: Resolver) -> None:
    query = dns.message.make_query("web.p2p", "A")
    query.question.append(dns.rrset.RRset(dns.name.from_text("db.p2p"), dns.rdataclass.IN, A))
    out = resolver.resolve(query.to_wire())
    assert isinstance(out, bytes)
    assert dns.message.from_wire(out).rcode() == dns.rcode.FORMERR


def test_zero_questions_get_formerr(resolver: Resolver) -> None:
    out = resolver.resolve(b"\x00\x07\x01\x00" + b"\x00" * 8)
    assert isinstance(out, bytes)
    assert dns.message.from_wire(out).rcode() == dns.rcode.FORMERR


def test_compression_loop_gets_formerr(resolver: Resolver) -> None:
    header = b"\x00\x09\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    out = resolver.resolve(header + b"\xc0\x0c\x00\x01\x00\x01")  # name points at itself
    assert isinstance(out, bytes)
    assert dns.message.from_wire(out).rcode() == dns.rcode.FORMERR


def test_other_opcodes_get_notimp(resolver: Resolver) -> None:
    query = dns.message.make_query("web.p2p", "A")
    query.set_opcode(dns.opcode.NOTIFY)
    out = resolver.resolve(query.to_wire())
    assert isinstance(out, bytes)
    response = dns.message.from_wire(out)
    assert response.rcode() == dns.rcode.NOTIMP and response.opcode() == dns.opcode.NOTIFY


def test_chaos_class_and_zone_transfers_are_refused(resolver: Resolver) -> None:
    chaos = dns.message.make_query("web.p2p", "TXT", rdclass=dns.rdataclass.CH)
    out = resolver.resolve(chaos.to_wire())
    assert isinstance(out, bytes)
    assert dns.message.from_wire(out).rcode() == dns.rcode.REFUSED
    assert ask(resolver, "p2p", "AXFR", tcp=True).rcode() == dns.rcode.REFUSED
    assert ask(resolver, "p2p", "IXFR", tcp=True).rcode() == dns.rcode.REFUSED


def test_error_response_echoes_question_and_edns(resolver: Resolver) -> None:
    query = dns.message.make_query("example.com", "MX", use_edns=0)
    out = resolver.error_response(query.to_wire(), SERVFAIL)
    assert out is not None
    response = dns.message.from_wire(out)
    assert response.id == query.id and response.rcode() == dns.rcode.SERVFAIL
    assert str(response.question[0].name) == "example.com." and response.edns == 0
    assert resolver.error_response(b"\x00", SERVFAIL) is None
