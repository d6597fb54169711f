"""The trio DNS server on loopback with real clients: dnspython (UDP, TCP) and dig."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
import trio

from p2porch.dns.resolver import Resolver
from p2porch.dns.server import ServerCounters, filter_upstreams, serve_dns
from p2porch.dns.zone import PortEntry, TaskEntry, ZoneData

Address = tuple[str, int]


def loopback_host() -> str:
    return f"127.0.0.{random.randint(2, 250)}"


def zone(web_addresses: list[str] | None = None) -> ZoneData:
    web = web_addresses if web_addresses is not None else ["10.240.1.2", "10.240.2.2"]
    return ZoneData(
        services={
            "web": [TaskEntry(i + 1, a, ports=(PortEntry(80),)) for i, a in enumerate(web)],
            "big": [TaskEntry(i, f"10.240.9.{i + 2}") for i in range(60)],
        },
        nodes={"n1": "192.168.50.1"},
    )


async def query(
    addr: Address, name: str, rdtype: str = "A", *, tcp: bool = False, **kw: object
) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, **kw)  # type: ignore[arg-type]
    send = dns.query.tcp if tcp else dns.query.udp
    response: dns.message.Message = await trio.to_thread.run_sync(
        lambda: send(q, addr[0], timeout=5, port=addr[1])
    )
    return response


def addresses(response: dns.message.Message) -> list[str]:
    return sorted(rd.address for rrset in response.answer if rrset.rdtype == dns.rdatatype.A for rd in rrset)


class Running:
    def __init__(self, resolver: Resolver, addr: Address, counters: ServerCounters) -> None:
        self.resolver = resolver
        self.addr = addr
        self.counters = counters


async def start_server(
    nursery: trio.Nursery,
    resolver: Resolver,
    upstreams: list[Address],
    *,
    host: str | None = None,
    timeout_s: float = 1.0,
) -> Running:
    counters = ServerCounters()
    bound = await nursery.start(
        lambda task_status: serve_dns(
            resolver,
            [(host or loopback_host(), 0)],
            upstreams,
            timeout_s=timeout_s,
            counters=counters,
            task_status=task_status,
        )
    )
    return Running(resolver, bound[0], counters)


@pytest.fixture
async def server(nursery: trio.Nursery) -> AsyncIterator[Running]:
    yield await start_server(nursery, Resolver(zone()), [])


async def test_udp_and_tcp_answers(server: Running) -> None:
    for tcp in (False, True):
        response = await query(server.addr, "web.p2p", tcp=tcp)
        assert response.rcode() == dns.rcode.NOERROR
        assert addresses(response) == ["10.240.1.2", "10.240.2.2"]
        srv = await query(server.addr, "_80._tcp.web.p2p", "SRV", tcp=tcp)
        assert sorted(str(rd.target) for rd in srv.answer[0]) == ["1.web.p2p.", "2.web.p2p."]
        nx = await query(server.addr, "nope.p2p", tcp=tcp)
        assert nx.rcode() == dns.rcode.NXDOMAIN
    assert server.counters.tcp_connections == 3


async def test_udp_and_tcp_share_the_port(server: Running) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.connect(server.addr)  # TCP is listening on the same port as UDP


async def test_truncation_then_full_answer_over_tcp(server: Running) -> None:
    udp = await query(server.addr, "big.p2p")
    assert udp.flags & dns.flags.TC and not udp.answer
    tcp = await query(server.addr, "big.p2p", tcp=True)
    assert len(addresses(tcp)) == 60


async def test_zone_update_changes_answers_immediately(server: Running) -> None:
    assert addresses(await query(server.addr, "web.p2p")) == ["10.240.1.2", "10.240.2.2"]
    server.resolver.update_zone(zone(["10.240.3.3"]))
    assert addresses(await query(server.addr, "web.p2p")) == ["10.240.3.3"]
    assert addresses(await query(server.addr, "tasks.web.p2p", tcp=True)) == ["10.240.3.3"]


async def test_rotation_is_visible_to_clients(server: Running) -> None:
    firsts = set()
    for _ in range(4):
        response = await query(server.addr, "web.p2p")
        firsts.add(response.answer[0][0].address)
    assert firsts == {"10.240.1.2", "10.240.2.2"}


async def test_garbage_never_stops_the_server(server: Running) -> None:
    host, port = server.addr
    with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        await sock.sendto(b"\x01", (host, port))  # dropped
        await sock.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05ab", (host, port))
        with trio.fail_after(2):
            data, _ = await sock.recvfrom(512)
        assert data[:2] == b"\x12\x34" and data[3] & 0x0F == dns.rcode.FORMERR
    # a TCP client that sends half a message and vanishes, and one with a garbage message
    half = await trio.open_tcp_stream(host, port)
    await half.send_all(b"\x00\x40\x01\x02")
    await half.aclose()
    async with await trio.open_tcp_stream(host, port) as stream:
        await stream.send_all(b"\x00\x0e\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05x")
        with trio.fail_after(2):
            reply = await stream.receive_some(512)
        assert reply[2:4] == b"\xab\xcd" and reply[5] & 0x0F == dns.rcode.FORMERR
    assert addresses(await query(server.addr, "web.p2p")) == ["10.240.1.2", "10.240.2.2"]
    assert server.resolver.counters.dropped == 1 and server.resolver.counters.formerr == 2


async def test_no_upstream_gives_servfail(server: Running) -> None:
    response = await query(server.addr, "example.com")
    assert response.rcode() == dns.rcode.SERVFAIL
    assert server.counters.servfail == 1


class FakeUpstream:
    """A Python UDP+TCP upstream on loopback answering every A query with 203.0.113.7."""

    def __init__(self, *, silent: bool = False) -> None:
        self.silent = silent
        self.queries = 0

    def answer(self, data: bytes) -> bytes:
        q = dns.message.from_wire(data)
        r = dns.message.make_response(q)
        r.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "A", "203.0.113.7"))
        return r.to_wire()

    async def serve(
        self, host: str, *, task_status: trio.TaskStatus[Address] = trio.TASK_STATUS_IGNORED
    ) -> None:
        udp = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        await udp.bind((host, 0))
        port = udp.getsockname()[1]
        listeners = await trio.open_tcp_listeners(port, host=host)

        async def tcp_handler(stream: trio.SocketStream) -> None:
            async with stream:
                head = await stream.receive_some(65536)
                self.queries += 1
                if self.silent:
                    await trio.sleep_forever()
                reply = self.answer(head[2:])
                await stream.send_all(len(reply).to_bytes(2, "big") + reply)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.serve_listeners, tcp_handler, listeners)
            task_status.started((host, port))
            with udp:
                while True:
                    data, addr = await udp.recvfrom(65535)
                    self.queries += 1
                    if not self.silent:
                        await udp.sendto(self.answer(data), addr)


async def test_forwarding_over_udp_and_tcp(nursery: trio.Nursery) -> None:
    upstream = FakeUpstream()
    up_addr = await nursery.start(upstream.serve, loopback_host())
    server = await start_server(nursery, Resolver(zone()), [up_addr])
    for tcp in (False, True):
        response = await query(server.addr, "www.Example.com", tcp=tcp)
        assert response.rcode() == dns.rcode.NOERROR
        assert addresses(response) == ["203.0.113.7"]
        assert str(response.question[0].name) == "www.Example.com."
    assert upstream.queries == 2
    assert server.counters.forwarded == 2 and server.counters.forward_replies == 2
    # names of the cluster domain are never forwarded
    assert addresses(await query(server.addr, "web.p2p")) == ["10.240.1.2", "10.240.2.2"]
    assert upstream.queries == 2


async def test_silent_upstream_times_out_to_servfail_then_next_upstream(nursery: trio.Nursery) -> None:
    silent = FakeUpstream(silent=True)
    silent_addr = await nursery.start(silent.serve, loopback_host())
    server = await start_server(nursery, Resolver(zone()), [silent_addr], timeout_s=0.3)
    response = await query(server.addr, "example.com")
    assert response.rcode() == dns.rcode.SERVFAIL
    assert server.counters.upstream_timeouts == 1 and silent.queries == 1

    good = FakeUpstream()
    good_addr = await nursery.start(good.serve, loopback_host())
    both = await start_server(nursery, Resolver(zone()), [silent_addr, good_addr], timeout_s=0.3)
    assert addresses(await query(both.addr, "example.com")) == ["203.0.113.7"]
    assert addresses(await query(both.addr, "example.com", tcp=True)) == ["203.0.113.7"]


async def test_closed_upstream_port_fails_fast(nursery: trio.Nursery) -> None:
    host = loopback_host()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        dead = (host, probe.getsockname()[1])
    server = await start_server(nursery, Resolver(zone()), [dead], timeout_s=5.0)
    with trio.fail_after(3):  # refused, not the 5 s timeout
        response = await query(server.addr, "example.com")
    assert response.rcode() == dns.rcode.SERVFAIL
    assert server.counters.upstream_errors == 1


async def test_never_forwards_to_itself(nursery: trio.Nursery) -> None:
    host = loopback_host()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        port = probe.getsockname()[1]
    counters = ServerCounters()
    await nursery.start(
        lambda task_status: serve_dns(
            Resolver(zone()), [(host, port)], [(host, port)], counters=counters, task_status=task_status
        )
    )
    response = await query((host, port), "example.com")
    assert response.rcode() == dns.rcode.SERVFAIL
    assert counters.forwarded == 1 and counters.upstream_errors == 0 and counters.upstream_timeouts == 0


def test_filter_upstreams_removes_own_addresses() -> None:
    listen = [("127.0.0.9", 53), ("0.0.0.0", 5353)]
    upstreams = [
        ("127.0.0.9", 53),
        ("127.0.0.1", 5353),
        ("10.99.99.99", 5353),
        ("127.0.0.9", 54),
        ("8.8.8.8", 53),
    ]
    assert filter_upstreams(upstreams, listen) == [("10.99.99.99", 5353), ("127.0.0.9", 54), ("8.8.8.8", 53)]


async def test_bind_error_surfaces_before_started(nursery: trio.Nursery, server: Running) -> None:
    with pytest.raises(OSError):
        await nursery.start(
            lambda task_status: serve_dns(Resolver(zone()), [server.addr], [], task_status=task_status)
        )


needs_dig = pytest.mark.skipif(shutil.which("dig") is None, reason="dig (dnsutils) not installed")


async def dig(*args: str) -> str:
    result = await trio.run_process(["dig", *args], capture_stdout=True, capture_stderr=True, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.decode()


@needs_dig
async def test_dig_queries(server: Running) -> None:
    host, port = server.addr
    short = await dig(f"@{host}", "-p", str(port), "+short", "web.p2p")
    assert sorted(short.split()) == ["10.240.1.2", "10.240.2.2"]
    srv = await dig(f"@{host}", "-p", str(port), "+short", "SRV", "_80._tcp.web.p2p")
    assert sorted(srv.splitlines()) == ["0 10 80 1.web.p2p.", "0 10 80 2.web.p2p."]
    ptr = await dig(f"@{host}", "-p", str(port), "+short", "-x", "10.240.2.2")
    assert ptr.split() == ["2.web.p2p."]
    nx = await dig(f"@{host}", "-p", str(port), "nope.p2p")
    assert "status: NXDOMAIN" in nx and "SOA" in nx
    nodata = await dig(f"@{host}", "-p", str(port), "AAAA", "WEB.p2p")
    assert "status: NOERROR" in nodata and "ANSWER: 0" in nodata and "WEB.p2p." in nodata


@needs_dig
async def test_dig_retries_over_tcp_after_truncation(server: Running) -> None:
    host, port = server.addr
    out = await dig(f"@{host}", "-p", str(port), "+noedns", "+nocookie", "big.p2p")
    assert "Truncated, retrying in TCP mode" in out
    assert "ANSWER: 60" in out
    assert server.counters.tcp_connections == 1


NOT_LOCAL = "192.0.2.77"  # TEST-NET-1: no address of this machine


async def test_a_gateway_not_local_yet_is_bound_only_with_free_bind(nursery: trio.Nursery) -> None:
    """The node's DNS binds its bridge gateway before the node's Docker network exists (made on the
    node's first container: netoverlay/bridge.py); any other address must be local."""
    resolver = Resolver(zone())
    with pytest.raises(OSError):
        await nursery.start(
            lambda task_status: serve_dns(resolver, [(NOT_LOCAL, 0)], [], task_status=task_status)
        )
    here = loopback_host()
    bound = await nursery.start(
        lambda task_status: serve_dns(
            resolver, [(NOT_LOCAL, 0), (here, 0)], [], free_bind=(NOT_LOCAL,), task_status=task_status
        )
    )
    assert [host for host, _ in bound] == [NOT_LOCAL, here]
    assert addresses(await query(bound[1], "web.p2p")) == ["10.240.1.2", "10.240.2.2"]


FREE_BIND_SCRIPT = """
import trio, dns.message, dns.query, subprocess
from p2porch.dns.resolver import Resolver
from p2porch.dns.server import serve_dns
from p2porch.dns.zone import TaskEntry, ZoneData

async def main():
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    resolver = Resolver(ZoneData(services={"web": [TaskEntry(1, "10.240.1.2")]}))
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: serve_dns(
            resolver, [("10.99.0.1", 5353)], [], free_bind=("10.99.0.1",), task_status=task_status))
        # the bridge and its gateway address come later (docker network create)
        subprocess.run(["ip", "addr", "add", "10.99.0.1/24", "dev", "lo"], check=True)
        query = dns.message.make_query("web.p2p", "A")
        for tcp in (False, True):
            send = dns.query.tcp if tcp else dns.query.udp
            answer = await trio.to_thread.run_sync(lambda: send(query, "10.99.0.1", port=5353, timeout=5))
            print(answer.answer[0][0].address)
        nursery.cancel_scope.cancel()

trio.run(main)
"""


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare")
def test_a_free_bound_gateway_answers_once_its_address_exists() -> None:
    """In a network namespace of its own: bound before the address exists, answered over UDP and TCP
    once it does, without a restart."""
    result = subprocess.run(
        ["unshare", "-n", sys.executable, "-c", FREE_BIND_SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["10.240.1.2", "10.240.1.2"]
