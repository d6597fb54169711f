"""Bounded, seeded fuzzing of every listening port p2porch serves from trio, on real loopback sockets.

Each test throws random, truncated, oversized, bit-flipped and replayed input at one port for a few
seconds while legitimate requests keep going through, then checks: the server task never crashed, the
port still answers, the counters show the drops, and traced memory grew by less than MEMORY_BOUND.
`P2PORCH_FUZZ_S=60 pytest tests/shell/test_port_fuzz.py` fuzzes each port for longer by hand; the seed
is `P2PORCH_FUZZ_SEED` (default 1). The Raft port is fuzzed with the Raft tests.
"""

from __future__ import annotations

import os
import random
import socket
import tracemalloc

import dns.message
import dns.query
import dns.rcode
import pytest
import trio
from test_dns_server import zone
from test_gossip_shell import Cluster, wait_for

from p2porch.dns.guard import ClientPolicy
from p2porch.dns.resolver import Resolver
from p2porch.dns.server import ServerCounters, ServerLimits, serve_dns
from p2porch.gossip.messages import Ping, encode_packet, encode_pushpull
from p2porch.gossip.transport import UDP_AAD
from p2porch.membership.join_service import JoinService, request_join, send_frame
from p2porch.membership.token import new_token

FUZZ_S = float(os.environ.get("P2PORCH_FUZZ_S", "2"))
SEED = int(os.environ.get("P2PORCH_FUZZ_SEED", "1"))
MEMORY_BOUND = 16 << 20
FUZZER = "127.0.0.3"  # hostile traffic comes from here; the legitimate peers use other addresses
STRANGER = "127.0.0.4"  # a hostile peer that holds its connections open (held_until_cut)
LEGIT_WAIT_S = 60.0  # a bound on waiting for legitimate answers and convergence, not a budget under test
CUT_SLACK_S = 4.0  # what a loaded machine may add to a fuzzed node's deadline before it closes a stranger


@pytest.fixture
def traced():
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def traced_bytes() -> int:
    return tracemalloc.get_traced_memory()[0]


def mutations(rng: random.Random, genuine: list[bytes]) -> bytes:
    """One hostile datagram/stream payload: random, truncated, bit-flipped, oversized or replayed."""
    kind = rng.randrange(6)
    sample = rng.choice(genuine)
    if kind == 0:
        return rng.randbytes(rng.randrange(1, 1500))
    if kind == 1:
        return sample[: rng.randrange(len(sample))]
    if kind == 2:
        flipped = bytearray(sample)
        flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        return bytes(flipped)
    if kind == 3:
        return sample + rng.randbytes(rng.randrange(1, 60000))
    if kind == 4:
        return rng.randbytes(rng.randrange(8000, 65000))
    return sample  # replayed as is


class Recorder:
    """A send-only stream that records what a transport would send."""

    def __init__(self) -> None:
        self.data = b""

    async def send_all(self, data: bytes) -> None:
        self.data += data


async def udp_fuzz(addr: tuple[str, int], rng: random.Random, genuine: list[bytes], seconds: float) -> int:
    sent = 0
    with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        await sock.bind((FUZZER, 0))
        with trio.move_on_after(seconds):
            while True:
                try:
                    await sock.sendto(mutations(rng, genuine), addr)
                except OSError:
                    pass
                sent += 1
                if sent % 20 == 0:
                    await trio.sleep(0.001)
    return sent


async def tcp_fuzz(
    addr: tuple[str, int], rng: random.Random, genuine: list[bytes], seconds: float, oversized_prefix: bytes
) -> int:
    """Connections that send hostile bytes (or nothing: idle), a few at a time."""
    opened = 0

    async def one() -> None:
        try:
            stream = await trio.open_tcp_stream(*addr, local_address=FUZZER)
        except OSError:
            return
        async with stream:
            with trio.move_on_after(rng.uniform(0.05, 0.5)):
                choice = rng.randrange(4)
                try:
                    if choice == 0:
                        await stream.send_all(oversized_prefix + rng.randbytes(4096))
                    elif choice in (1, 2):
                        await stream.send_all(mutations(rng, genuine))
                    # choice 3: idle until cut or timed out
                    while await stream.receive_some(65536):
                        pass
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass

    with trio.move_on_after(seconds):
        async with trio.open_nursery() as nursery:
            while True:
                nursery.start_soon(one)
                opened += 1
                await trio.sleep(0.005)
    return opened


async def held_until_cut(addr: tuple[str, int], partial: bytes) -> float:
    """Seconds a hostile connection that sends ``partial`` (and then nothing) stays open, until the node
    closes it (bounded by LEGIT_WAIT_S)."""
    # from its own address: the fuzzers' last connections may still fill FUZZER's per-source share
    stream = await trio.open_tcp_stream(*addr, local_address=STRANGER)
    started = trio.current_time()
    async with stream:
        with trio.fail_after(LEGIT_WAIT_S):
            try:
                await stream.send_all(partial)
                while await stream.receive_some(65536):
                    pass
            except trio.BrokenResourceError:
                pass
    return trio.current_time() - started


async def test_fuzz_gossip_udp_and_tcp(traced):
    rng = random.Random(SEED)
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery)
        a = await c.start("a")
        b = await c.start("b", [a.addr])
        # the legitimate side waits on its answers, not on fast_config's 1 s: the fuzzers share this process,
        # and a loaded machine lets a second of wall clock pass. The fuzzed node `a` keeps its short
        # deadline for strangers (fast_config's 1 s): that is under test (held_until_cut below).
        b._runner.transport.tcp_timeout_s = b._runner.transport.auth_deadline_s = LEGIT_WAIT_S
        short = a._runner.transport.auth_deadline_s
        assert short <= 1.0
        await wait_for(lambda: c.converged(["a", "b"]), LEGIT_WAIT_S)
        tb = b._runner.transport
        host, port = a.addr.rsplit(":", 1)
        addr = (host, int(port))
        udp_genuine = [
            tb.keyring.seal(tb._envelope(encode_packet([Ping(rng.randrange(1 << 30), "a", "b")])), UDP_AAD)
            for _ in range(20)
        ]
        tcp_genuine = []
        for _ in range(5):
            recorder = Recorder()
            await tb._send_message(recorder, encode_pushpull(False, b._runner.core.local_state()))
            tcp_genuine.append(recorder.data)

        def counted(m: dict[str, int]) -> bool:
            return m["auth_failures"] > 0 and m["malformed_packets"] > 0 and m["replayed_packets"] > 0

        before = traced_bytes()
        async with trio.open_nursery() as fuzzers:
            fuzzers.start_soon(udp_fuzz, addr, rng, udp_genuine, LEGIT_WAIT_S)
            fuzzers.start_soon(tcp_fuzz, addr, rng, tcp_genuine, LEGIT_WAIT_S, (1 << 31).to_bytes(4, "big"))
            # FUZZ_S at least, and until one of each kind of drop was counted: a loaded machine sent a
            # dozen inputs in 2 s (the bound is LEGIT_WAIT_S); legitimate push/pulls keep working meanwhile
            # (`a` may cut one that a loaded machine kept it from reading within its short deadline: at least
            # one must be answered)
            started, answered = trio.current_time(), 0
            with trio.fail_after(LEGIT_WAIT_S):
                while trio.current_time() - started < FUZZ_S or not counted(a.metrics) or not answered:
                    answered += await tb.pushpull(a.addr, False, b._runner.core.local_state()) is not None
                    await trio.sleep(0.1)
            fuzzers.cancel_scope.cancel()
        with trio.fail_after(LEGIT_WAIT_S):
            while await tb.pushpull(a.addr, False, b._runner.core.local_state()) is None:
                await trio.sleep(0.1)
        await wait_for(lambda: c.converged(["a", "b"]), LEGIT_WAIT_S)
        # hostile connections that send nothing, or a partial head, are closed by `a` within its short
        # deadline (before: it held them the 60 s the legitimate exchanges were given)
        cut_before = a.metrics["tcp_auth_timeouts"]
        held = [await held_until_cut(addr, partial) for partial in (b"", b"\x00\x00")]
        # (counted just after the close: the node's handler may run after this task sees it)
        await wait_for(lambda: a.metrics["tcp_auth_timeouts"] >= cut_before + 2, LEGIT_WAIT_S)
        assert max(held) < short + CUT_SLACK_S, held
        m = a.metrics
        print("gossip fuzz:", {k: v for k, v in m.items() if v}, "memory growth", traced_bytes() - before)
        assert counted(m)
        assert traced_bytes() - before < MEMORY_BOUND
        nursery.cancel_scope.cancel()


async def test_fuzz_join_port(traced):
    rng = random.Random(SEED)
    token = new_token()

    async def handle(request, source):
        return {"ok": True}

    service = JoinService(lambda: token, handle, auth_timeout_s=0.5)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(service.serve, "127.0.0.1", 0)
        genuine = []
        for body in (
            {"cluster_id": token.cluster_id, "nonce_j": rng.randbytes(16)},
            {"cluster_id": "x" * 5000, "nonce_j": b""},
            {"cluster_id": token.cluster_id + "\n", "nonce_j": rng.randbytes(16), "as": "member"},
        ):
            recorder = Recorder()
            await send_frame(recorder, "hello", body)
            genuine.append(recorder.data)
        before = traced_bytes()
        async with trio.open_nursery() as fuzzers:
            fuzzers.start_soon(
                tcp_fuzz, ("127.0.0.1", port), rng, genuine, FUZZ_S, (1 << 30).to_bytes(4, "big")
            )
            deadline = trio.current_time() + FUZZ_S
            while trio.current_time() < deadline:
                assert (await request_join("127.0.0.1", port, token, {"n": 1}, timeout_s=5))["ok"]
                await trio.sleep(0.1)
        assert (await request_join("127.0.0.1", port, token, {"n": 2}, timeout_s=5))["ok"]
        print("join fuzz:", service.metrics, "memory growth", traced_bytes() - before)
        assert service.metrics["garbage"] > 0 and service.metrics["refused"] > 0
        assert traced_bytes() - before < MEMORY_BOUND
        nursery.cancel_scope.cancel()


async def test_fuzz_dns_udp_and_tcp(traced):
    rng = random.Random(SEED)
    counters = ServerCounters()
    resolver = Resolver(zone())
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(
            lambda task_status: serve_dns(
                resolver,
                [("127.0.0.1", 0)],
                [],
                counters=counters,
                policy=ClientPolicy(["127.0.0.0/24"], loopback=False),  # the fuzzer (127.0.0.3) is a client
                limits=ServerLimits(),
                task_status=task_status,
            )
        )
        addr = bound[0]
        queries = [
            dns.message.make_query(name, rdtype, use_edns=rng.choice([None, 0])).to_wire()
            for name, rdtype in (
                ("web.p2p", "A"),
                ("big.p2p", "A"),
                ("_80._tcp.web.p2p", "SRV"),
                ("x.p2p", "A"),
            )
        ]
        tcp_genuine = [len(q).to_bytes(2, "big") + q for q in queries]
        legit = dns.message.make_query("web.p2p", "A")

        async def ask(tcp: bool) -> dns.message.Message:
            send = dns.query.tcp if tcp else dns.query.udp
            return await trio.to_thread.run_sync(lambda: send(legit, addr[0], timeout=5, port=addr[1]))

        before = traced_bytes()
        async with trio.open_nursery() as fuzzers:
            fuzzers.start_soon(udp_fuzz, addr, rng, queries, FUZZ_S)
            fuzzers.start_soon(tcp_fuzz, addr, rng, tcp_genuine, FUZZ_S, b"\xff\xff")
            deadline = trio.current_time() + FUZZ_S
            while trio.current_time() < deadline:
                for tcp in (False, True):
                    assert (await ask(tcp)).rcode() == dns.rcode.NOERROR
                await trio.sleep(0.1)
        for tcp in (False, True):
            assert (await ask(tcp)).rcode() == dns.rcode.NOERROR
        rc = resolver.counters
        print("dns fuzz:", rc.as_dict(), counters.as_dict(), "memory growth", traced_bytes() - before)
        assert rc.formerr + rc.dropped > 0 and counters.tcp_connections > 0
        assert counters.internal_errors == 0 and rc.internal_errors == 0
        assert resolver.cache_bytes <= resolver.cache_max_bytes
        assert traced_bytes() - before < MEMORY_BOUND
        nursery.cancel_scope.cancel()
