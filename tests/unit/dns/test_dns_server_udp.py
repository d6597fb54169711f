"""The UDP hot path of the DNS server on loopback: batched recvmmsg/sendmmsg and the portable loop.

Queries are sent in bursts from a plain socket before the test task yields, so the server finds
them all queued and answers them as one batch: hits, rotated answers, misses, garbage, forwards
and errors mixed in the same batch must each get exactly the reply (or the silence) they would get
alone. Every test runs against both loops (`udp_mode`).
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
import trio

from p2porch.dns import mmsg
from p2porch.dns import server as server_mod
from p2porch.dns.resolver import Resolver
from p2porch.dns.server import ServerCounters, serve_dns
from p2porch.dns.zone import TaskEntry, ZoneData

Address = tuple[str, int]
WEB = ["10.240.1.2", "10.240.2.2", "10.240.3.2", "10.240.4.2"]


def zone(web: list[str] | None = None) -> ZoneData:
    return ZoneData(
        services={
            "web": [TaskEntry(i + 1, a) for i, a in enumerate(WEB if web is None else web)],
            "big": [TaskEntry(i, f"10.240.9.{i + 2}") for i in range(60)],
        },
        nodes={"n1": "192.168.50.1"},
    )


def wire(name: str, rdtype: str = "A", qid: int = 1, **kw: object) -> bytes:
    query = dns.message.make_query(name, rdtype, **kw)  # type: ignore[arg-type]
    query.id = qid
    return bytes(query.to_wire())


def a_records(response: dns.message.Message) -> list[str]:
    """A addresses in wire order."""
    return [rd.address for rrset in response.answer if rrset.rdtype == dns.rdatatype.A for rd in rrset]


@pytest.fixture(params=["mmsg", "plain"])
def udp_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "mmsg":
        if not mmsg.available():
            pytest.skip("recvmmsg/sendmmsg not available here")
    else:
        monkeypatch.setattr(server_mod, "USE_MMSG", False)
    yield request.param


class Running:
    def __init__(self, resolver: Resolver, addr: Address, counters: ServerCounters) -> None:
        self.resolver = resolver
        self.addr = addr
        self.counters = counters


async def start(
    nursery: trio.Nursery, resolver: Resolver, upstreams: list[Address], host: str = "127.0.0.1"
) -> Running:
    counters = ServerCounters()
    bound = await nursery.start(
        lambda task_status: serve_dns(
            resolver, [(host, 0)], upstreams, timeout_s=1.0, counters=counters, task_status=task_status
        )
    )
    return Running(resolver, bound[0], counters)


async def burst(
    addr: Address, packets: list[bytes], replies: int, family: int = socket.AF_INET
) -> list[bytes]:
    """Send `packets` back to back without yielding, then collect exactly `replies` replies."""
    raw = socket.socket(family, socket.SOCK_DGRAM)
    for packet in packets:
        raw.sendto(packet, addr)
    with trio.socket.from_stdlib_socket(raw) as sock:
        out = []
        with trio.fail_after(5):
            while len(out) < replies:
                out.append(await sock.recv(65535))
        with trio.move_on_after(0.2):
            extra = await sock.recv(65535)
            raise AssertionError(f"unexpected extra reply {extra!r}")
    return out


def test_batched_syscalls_are_available_on_linux() -> None:
    if sys.platform.startswith("linux"):
        assert mmsg.available()


async def test_burst_of_hits_and_misses_in_one_batch(nursery: trio.Nursery, udp_mode: str) -> None:
    server = await start(nursery, Resolver(zone()), [])
    names = ["web.p2p", "1.web.p2p", "n1.node.p2p", "nope.p2p", "WEB.p2p"]
    # first burst: all misses; second: all hits (from the cache), same answers, IDs patched
    for round_ in range(2):
        wakeups = server.counters.udp_wakeups
        packets = [wire(name, qid=100 * round_ + i) for i, name in enumerate(names)]
        replies = {
            dns.message.from_wire(r).id: dns.message.from_wire(r)
            for r in await burst(server.addr, packets, 5)
        }
        assert sorted(replies) == [100 * round_ + i for i in range(5)]
        by_name = {str(r.question[0].name): r for r in replies.values()}
        assert sorted(a_records(by_name["web.p2p."])) == WEB
        assert a_records(by_name["1.web.p2p."]) == ["10.240.1.2"]
        assert a_records(by_name["n1.node.p2p."]) == ["192.168.50.1"]
        assert by_name["nope.p2p."].rcode() == dns.rcode.NXDOMAIN
        assert sorted(a_records(by_name["WEB.p2p."])) == WEB
        assert all(r.flags & dns.flags.AA and r.flags & dns.flags.QR for r in replies.values())
        assert server.counters.udp_wakeups - wakeups <= 2  # answered as one batch
    counters = server.resolver.counters
    assert counters.cache_misses == 5 and counters.cache_hits == 5
    assert server.counters.internal_errors == 0 and server.counters.send_errors == 0


async def test_rotation_cycles_inside_one_batch(nursery: trio.Nursery, udp_mode: str) -> None:
    server = await start(nursery, Resolver(zone()), [])
    packets = [wire("web.p2p", qid=i) for i in range(9)]
    replies = sorted(
        (dns.message.from_wire(r) for r in await burst(server.addr, packets, 9)), key=lambda m: m.id
    )
    orders = [a_records(r) for r in replies]
    assert all(sorted(order) == WEB for order in orders)
    firsts = [order[0] for order in orders]
    assert set(firsts[:4]) == set(WEB)  # every task comes first in turn, also within one batch
    assert firsts[4:8] == firsts[:4] and firsts[8] == firsts[0]
    for order in orders[1:]:  # each answer is a rotation of the previous one
        assert order in [orders[0][k:] + orders[0][:k] for k in range(4)]


async def test_garbage_in_a_batch_is_counted_and_the_rest_answered(
    nursery: trio.Nursery, udp_mode: str
) -> None:
    server = await start(nursery, Resolver(zone()), [])
    response_packet = bytearray(wire("web.p2p", qid=7))
    response_packet[2] |= 0x80  # QR: a response, never answered
    packets = [
        wire("web.p2p", qid=1),
        b"",  # empty datagram: dropped
        b"\x01",  # shorter than a header: dropped
        wire("n1.node.p2p", qid=2),
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05ab",  # header then garbage: FORMERR
        bytes(response_packet),
        wire("1.web.p2p", qid=3),
        b"\xff" * 600,  # a response-looking blob: dropped
    ]
    replies = {
        dns.message.from_wire(r).id: dns.message.from_wire(r) for r in await burst(server.addr, packets, 4)
    }
    assert sorted(replies) == [1, 2, 3, 0x1234]
    assert replies[0x1234].rcode() == dns.rcode.FORMERR
    assert a_records(replies[2]) == ["192.168.50.1"]
    assert a_records(replies[3]) == ["10.240.1.2"]
    counters = server.resolver.counters
    assert counters.dropped == 4 and counters.formerr == 1
    assert server.counters.internal_errors == 0
    # the same burst again: hits and garbage interleaved, same outcome
    again = await burst(server.addr, packets, 4)
    assert sorted(dns.message.from_wire(r).id for r in again) == [1, 2, 3, 0x1234]
    assert counters.dropped == 8 and counters.formerr == 2


async def test_edns_and_truncation(nursery: trio.Nursery, udp_mode: str) -> None:
    server = await start(nursery, Resolver(zone()), [])
    packets = [
        wire("big.p2p", qid=1),  # 60 A records do not fit in 512 bytes: TC
        wire("big.p2p", qid=2, use_edns=0, payload=4096),  # fit in our 1232
        wire("big.p2p", qid=3, use_edns=0, payload=600),  # do not fit in 600: TC, OPT echoed
        wire("big.p2p", qid=4),
    ]
    replies = {
        dns.message.from_wire(r).id: dns.message.from_wire(r) for r in await burst(server.addr, packets, 4)
    }
    for qid in (1, 3, 4):
        assert replies[qid].flags & dns.flags.TC and not replies[qid].answer
    assert replies[1].edns == -1 and replies[3].edns == 0 and replies[3].payload == 1232
    assert len(a_records(replies[2])) == 60 and not replies[2].flags & dns.flags.TC
    assert replies[2].edns == 0
    assert server.resolver.counters.truncated == 2


async def test_zone_update_is_seen_by_the_next_batch(nursery: trio.Nursery, udp_mode: str) -> None:
    server = await start(nursery, Resolver(zone()), [])
    packets = [wire("web.p2p", qid=1), wire("api.p2p", qid=2)]
    first = {
        dns.message.from_wire(r).id: dns.message.from_wire(r) for r in await burst(server.addr, packets, 2)
    }
    assert sorted(a_records(first[1])) == WEB and first[2].rcode() == dns.rcode.NXDOMAIN
    server.resolver.update_zone(
        ZoneData(services={"web": [TaskEntry(1, "10.240.7.7")], "api": [TaskEntry(1, "10.240.8.8")]})
    )
    second = {
        dns.message.from_wire(r).id: dns.message.from_wire(r) for r in await burst(server.addr, packets, 2)
    }
    assert a_records(second[1]) == ["10.240.7.7"]
    assert a_records(second[2]) == ["10.240.8.8"]


class EchoUpstream:
    """UDP upstream answering every A query with 203.0.113.7."""

    def __init__(self) -> None:
        self.queries = 0

    async def serve(self, *, task_status: trio.TaskStatus[Address] = trio.TASK_STATUS_IGNORED) -> None:
        with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            await udp.bind(("127.0.0.1", 0))
            task_status.started(udp.getsockname())
            while True:
                data, addr = await udp.recvfrom(65535)
                self.queries += 1
                q = dns.message.from_wire(data)
                r = dns.message.make_response(q)
                r.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "A", "203.0.113.7"))
                await udp.sendto(r.to_wire(), addr)


async def test_forwarded_queries_in_a_batch_reach_their_sender(nursery: trio.Nursery, udp_mode: str) -> None:
    upstream = EchoUpstream()
    up_addr = await nursery.start(upstream.serve)
    server = await start(nursery, Resolver(zone()), [up_addr])
    packets = [wire("web.p2p", qid=1), wire("www.example.com", qid=2), wire("n1.node.p2p", qid=3)]
    for _ in range(2):  # second time the FORWARD decision comes from the cache
        replies = {
            dns.message.from_wire(r).id: dns.message.from_wire(r)
            for r in await burst(server.addr, packets, 3)
        }
        assert a_records(replies[2]) == ["203.0.113.7"]
        assert str(replies[2].question[0].name) == "www.example.com."
        assert a_records(replies[3]) == ["192.168.50.1"]
    assert upstream.queries == 2 and server.counters.forward_replies == 2


async def test_ipv6_clients_get_replies(nursery: trio.Nursery, udp_mode: str) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    server = await start(nursery, Resolver(zone()), [], host="::1")
    packets = [wire("1.web.p2p", qid=1), wire("example.com", qid=2), wire("1.web.p2p", qid=3)]
    replies = {
        dns.message.from_wire(r).id: dns.message.from_wire(r)
        for r in await burst(server.addr, packets, 3, family=socket.AF_INET6)
    }
    assert a_records(replies[1]) == a_records(replies[3]) == ["10.240.1.2"]
    assert replies[2].rcode() == dns.rcode.SERVFAIL  # no upstream; reply sent to the v6 peer


# ---- UdpBatch itself -----------------------------------------------------------------------------


def test_open_returns_none_without_the_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mmsg, "_CALLS", None)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        assert mmsg.UdpBatch.open(sock, 8) is None


@pytest.mark.skipif(not mmsg.available(), reason="recvmmsg/sendmmsg not available")
def test_batch_receive_reply_in_place_and_skip_a_failing_send() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as srv:
        srv.bind(("127.0.0.1", 0))
        srv.setblocking(False)
        batch = mmsg.UdpBatch.open(srv, 4)
        assert batch is not None
        assert batch.recv() == -mmsg.errno.EAGAIN
        clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
        try:
            for i, client in enumerate(clients):
                client.settimeout(2)
                client.bind(("127.0.0.1", 0))
                client.sendto(b"q%d" % i, srv.getsockname())
            assert batch.recv() == 3
            for i in range(3):
                off = i * mmsg.SLOT_BYTES
                assert batch.msg_lens[i] == 2
                assert batch.data[off : off + 2] == b"q%d" % i
                assert batch.peer(i) == clients[i].getsockname()
                batch.data[off : off + 5] = b"r%d..." % i
                batch.iov_lens[i] = 5
            batch._namelens[1] = 1  # an invalid address length: this send fails with EINVAL
            assert batch.send(0, 3) == 1
            assert clients[0].recv(100) == b"r0..."
            assert clients[2].recv(100) == b"r2..."
            batch.reset(3)
            assert list(batch.iov_lens) == [mmsg.SLOT_BYTES] * 4
        finally:
            for client in clients:
                client.close()


@pytest.mark.skipif(not mmsg.available(), reason="recvmmsg/sendmmsg not available")
def test_peer_does_not_use_socket_inet_ntop(monkeypatch: pytest.MonkeyPatch) -> None:
    """pysyncobj replaces socket.inet_ntop process-wide with a function that raises on Linux."""

    def broken(*args: object) -> str:
        raise TypeError("not_windows() takes 0 positional arguments")

    monkeypatch.setattr(socket, "inet_ntop", broken)
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as srv,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as cl,
    ):
        srv.bind(("127.0.0.1", 0))
        srv.setblocking(False)
        batch = mmsg.UdpBatch.open(srv, 2)
        assert batch is not None
        cl.bind(("127.0.0.1", 0))
        cl.sendto(b"x", srv.getsockname())
        assert batch.recv() == 1
        assert batch.peer(0) == cl.getsockname()
