"""Gossip ports against hostile peers on real loopback sockets: replays, spoofed sources, oversized or
idle TCP connections (docs/security.md, "Gossip")."""

import socket

import trio
from test_gossip_shell import Cluster, wait_for

from p2porch.gossip.messages import Ping, decode_pushpull, encode_packet, encode_pushpull
from p2porch.gossip.transport import UDP_AAD


def _host_port(addr):
    host, port = addr.rsplit(":", 1)
    return host, int(port)


async def test_replayed_packet_is_dropped_and_the_reply_goes_to_the_sealed_sender_address():
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery)
        a = await c.start("a")
        b = await c.start("b")
        transport = a._runner.transport
        # a genuine packet from "a" (sealed with the cluster key), sent from a socket that is not a's
        sealed = transport.keyring.seal(transport._envelope(encode_packet([Ping(424242, "b", "a")])), UDP_AAD)
        unknown_before = a._runner.core.counters["unknown_acks"]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as spoofed:
            spoofed.bind(("127.0.0.1", 0))
            spoofed.setblocking(False)
            for _ in range(3):
                spoofed.sendto(sealed, _host_port(b.addr))
            await wait_for(lambda: b.metrics["replayed_packets"] == 2)
            # the one accepted copy was answered to a's advertised address, not to the sending socket
            await wait_for(lambda: a._runner.core.counters["unknown_acks"] == unknown_before + 1)
            try:
                got = spoofed.recv(65535)
            except BlockingIOError:
                got = None
            assert got is None
        nursery.cancel_scope.cancel()


async def test_oversized_tcp_length_prefix_is_refused_before_reading_it():
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery)
        a = await c.start("a")
        a._runner.transport.tcp_timeout_s = 60.0  # the refusal must not be a timeout
        a._runner.transport.auth_deadline_s = 60.0
        stream = await trio.open_tcp_stream(*_host_port(a.addr))
        await stream.send_all((32 * 1024 * 1024).to_bytes(4, "big") + b"x" * 65536)
        with trio.fail_after(5):  # closed (or reset, data unread) long before any timeout
            try:
                while await stream.receive_some(65536):
                    pass
            except trio.BrokenResourceError:
                pass
        await stream.aclose()
        assert a.metrics["malformed_packets"] == 1
        nursery.cancel_scope.cancel()


async def test_idle_connections_are_capped_per_source_and_closed_after_the_auth_deadline():
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery)
        a = await c.start("a")
        b = await c.start("b")
        ta = a._runner.transport
        ta.auth_deadline_s = 1.0
        idle = [await trio.open_tcp_stream(*_host_port(a.addr)) for _ in range(ta.per_source + 3)]
        await wait_for(lambda: a.metrics["tcp_rejected"] == 3)
        # a member from another address still gets its push/pull through while the idle ones are held
        b_transport = b._runner.transport
        with trio.fail_after(5):
            stream = await trio.open_tcp_stream(*_host_port(a.addr), local_address="127.0.0.2")
            async with stream:
                await b_transport._send_message(stream, encode_pushpull(True, b._runner.core.local_state()))
                _, states = decode_pushpull(await b_transport._recv_message(stream))
        assert {s.name for s in states} >= {"a", "b"}
        await wait_for(lambda: a.metrics["tcp_auth_timeouts"] == ta.per_source)
        for s in idle:
            await s.aclose()
        nursery.cancel_scope.cancel()
