"""The DNS server against strangers on real loopback sockets: no open resolver, response-rate limiting,
per-source TCP and forward caps (docs/security.md, "DNS")."""

from __future__ import annotations

import socket

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest
import trio
from test_dns_server import zone

from p2porch.dns import server as server_mod
from p2porch.dns.guard import ClientPolicy
from p2porch.dns.resolver import Resolver
from p2porch.dns.server import ServerCounters, ServerLimits, serve_dns

CLIENT = "127.0.0.1"  # inside the clients' network 127.0.0.0/24
STRANGER = "127.0.1.9"  # another /24, not a client


async def start(nursery, upstreams=(), **limits):
    counters = ServerCounters()
    bound = await nursery.start(
        lambda task_status: serve_dns(
            Resolver(zone()),
            [("127.0.0.1", 0)],
            list(upstreams),
            timeout_s=5.0,
            counters=counters,
            policy=ClientPolicy(["127.0.0.0/24"], loopback=False),
            limits=ServerLimits(**limits),
            task_status=task_status,
        )
    )
    return bound[0], counters


async def ask(addr, name, source, *, tcp=False):
    q = dns.message.make_query(name, "A")
    send = dns.query.tcp if tcp else dns.query.udp
    return await trio.to_thread.run_sync(lambda: send(q, addr[0], timeout=5, port=addr[1], source=source))


@pytest.mark.parametrize("mmsg", [True, False])
async def test_foreign_names_are_refused_to_strangers_and_forwarded_for_clients(nursery, monkeypatch, mmsg):
    monkeypatch.setattr(server_mod, "USE_MMSG", mmsg)
    addr, counters = await start(nursery)  # no upstreams: a forwarded query ends in SERVFAIL
    for tcp in (False, True):
        assert (await ask(addr, "example.com", STRANGER, tcp=tcp)).rcode() == dns.rcode.REFUSED
        assert (await ask(addr, "example.com", CLIENT, tcp=tcp)).rcode() == dns.rcode.SERVFAIL
        in_zone = await ask(addr, "web.p2p", STRANGER, tcp=tcp)  # the cluster's own names: for anyone
        assert in_zone.rcode() == dns.rcode.NOERROR and in_zone.answer
    assert counters.refused_recursion == 2
    assert counters.forwarded == 2


@pytest.mark.parametrize("mmsg", [True, False])
async def test_strangers_are_rate_limited_with_truncated_slips_and_clients_are_not(
    nursery, monkeypatch, mmsg
):
    monkeypatch.setattr(server_mod, "USE_MMSG", mmsg)
    addr, counters = await start(nursery, rrl_rate=5.0, rrl_burst=10.0, rrl_slip=2)
    query = dns.message.make_query("web.p2p", "A").to_wire()
    sent = 200

    def flood(source):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((source, 0))
            s.settimeout(0.5)
            for _ in range(sent):
                s.sendto(query, addr)
            replies = []
            try:
                while True:
                    replies.append(dns.message.from_wire(s.recv(65535)))
            except TimeoutError:
                return replies

    started = trio.current_time()
    stranger = await trio.to_thread.run_sync(flood, STRANGER)
    elapsed = trio.current_time() - started
    full = [r for r in stranger if not r.flags & dns.flags.TC]
    slipped = [r for r in stranger if r.flags & dns.flags.TC]
    assert all(r.answer for r in full) and not any(r.answer for r in slipped)
    assert len(full) <= 10 + 5 * elapsed + 1
    assert counters.rrl_dropped + counters.rrl_slipped == sent - len(full)
    assert counters.rrl_slipped == len(slipped) >= (sent - len(full)) // 2 - 1
    client = await trio.to_thread.run_sync(flood, CLIENT)
    assert len(client) == sent and all(r.answer for r in client)


async def test_tcp_connections_are_capped_per_source(nursery):
    addr, counters = await start(nursery, max_tcp_per_source=3)
    held = [await trio.open_tcp_stream(*addr, local_address=CLIENT) for _ in range(4)]
    with trio.fail_after(5):  # the fourth is closed at once
        try:
            assert await held[3].receive_some(10) == b""
        except trio.BrokenResourceError:
            pass
    assert counters.tcp_rejected == 1
    other = await ask(addr, "web.p2p", "127.0.0.2", tcp=True)  # another source still gets answers
    assert other.rcode() == dns.rcode.NOERROR
    for stream in held:
        await stream.aclose()


async def test_forward_slots_are_capped_per_client(nursery):
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # an upstream that never answers
    silent.bind(("127.0.0.1", 0))
    try:
        addr, counters = await start(nursery, [silent.getsockname()], max_forwards_per_source=2)

        def five_foreign_queries():
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind((CLIENT, 0))
                s.settimeout(3)
                for i in range(5):
                    s.sendto(dns.message.make_query(f"n{i}.example.com", "A").to_wire(), addr)
                return [dns.message.from_wire(s.recv(65535)) for _ in range(3)]

        fast = await trio.to_thread.run_sync(five_foreign_queries)
        assert [r.rcode() for r in fast] == [dns.rcode.SERVFAIL] * 3
        assert counters.forward_rejected_per_source == 3
        other = await ask(addr, "web.p2p", "127.0.0.2")  # in-zone answers are not held up
        assert other.rcode() == dns.rcode.NOERROR
    finally:
        silent.close()
