"""Property-based fuzzing of the resolver: any input gives a well-formed response, FORWARD or None."""

from __future__ import annotations

import random

import dns.message
import dns.rdatatype
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2porch.dns.resolver import FORWARD, Resolver
from p2porch.dns.zone import PortEntry, TaskEntry, ZoneData

ZONE = ZoneData(
    services={
        "web": [TaskEntry(i, f"10.240.1.{i + 2}", ports=(PortEntry(80),)) for i in range(60)],
        "db": [TaskEntry(1, "10.240.2.2")],
    },
    nodes={"n1": "192.168.50.1"},
    nameservers=("192.168.50.1",),
)
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(resolver: Resolver, data: bytes, tcp: bool) -> None:
    out = resolver.resolve(data, tcp)
    assert resolver.counters.internal_errors == 0  # no exception reached the safety net
    if out is None or out is FORWARD:
        return
    assert isinstance(out, bytes)
    assert len(data) >= 12 and out[:2] == data[:2]  # answers only carry the query's ID
    assert out[2] & 0x80  # QR
    limit = 65535 if tcp else max(512, resolver.max_udp_payload_bytes)
    assert len(out) <= limit
    response = dns.message.from_wire(out)  # must be well-formed for an independent codec
    assert response.id == int.from_bytes(data[:2], "big")


@FUZZ
@given(data=st.binary(max_size=600), tcp=st.booleans())
def test_random_bytes(data: bytes, tcp: bool) -> None:
    check(Resolver(ZONE), data, tcp)


NAMES = st.sampled_from(
    [
        "web.p2p",
        "tasks.web.p2p",
        "7.web.p2p",
        "_80._tcp.web.p2p",
        "n1.node.p2p",
        "p2p",
        "nope.p2p",
        "example.com",
        "3.1.240.10.in-addr.arpa",
        "WEB.P2P",
        "db.p2p",
        ".",
    ]
)
TYPES = st.sampled_from(["A", "AAAA", "SRV", "PTR", "SOA", "NS", "ANY", "TXT", "MX", "AXFR", "CAA"])


@FUZZ
@given(
    name=NAMES,
    rdtype=TYPES,
    edns=st.sampled_from([-1, 0, 1]),
    payload=st.integers(0, 65535),
    mutations=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=4),
    cut=st.integers(0, 300),
    tcp=st.booleans(),
)
def test_mutated_valid_queries(
    name: str, rdtype: str, edns: int, payload: int, mutations: list[tuple[int, int]], cut: int, tcp: bool
) -> None:
    resolver = Resolver(ZONE, rng=random.Random(1))
    wire = bytearray(dns.message.make_query(name, rdtype, use_edns=edns, payload=payload).to_wire())
    check(resolver, bytes(wire), tcp)
    for offset, value in mutations:
        if offset < len(wire):
            wire[offset] = value
    mutated = bytes(wire[: max(cut, 0)] if cut < len(wire) else wire)
    check(resolver, mutated, tcp)
    check(resolver, mutated, tcp)  # the second time comes from the cache


@FUZZ
@given(
    labels=st.lists(st.binary(min_size=1, max_size=63), min_size=1, max_size=6), qtype=st.integers(0, 65535)
)
def test_arbitrary_names_and_types(labels: list[bytes], qtype: int) -> None:
    qname = b"".join(bytes([len(lab)]) + lab for lab in labels) + b"\x00"
    data = (
        b"\x55\xaa\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + qname + qtype.to_bytes(2, "big") + b"\x00\x01"
    )
    resolver = Resolver(ZONE)
    check(resolver, data, False)
    if qtype not in (dns.rdatatype.OPT,):
        check(resolver, data, True)
