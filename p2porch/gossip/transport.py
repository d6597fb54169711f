"""Gossip transport (shell): sealed UDP datagrams and length-prefixed sealed TCP frames over trio.

Owns the sockets bound to the advertise address, sealing/opening with the keyring, framing, and the
counters of what was dropped. It never interprets membership: it hands decoded messages and push/pull
states to the runner, and never raises on bad remote input (counts it and drops it).
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Iterator

import trio

from .. import wire
from ..errors import AuthError, P2POrchError, WireError
from .config import format_addr, parse_addr
from .envelope import Envelope, ReplayGuard, SequenceClock, decode_envelope, encode_envelope
from .keyring import SEAL_OVERHEAD_BYTES, Keyring
from .messages import (
    PUSHPULL_TYPE,
    TCP_PING_TYPE,
    Message,
    StateEntry,
    decode_packet,
    decode_pushpull,
    decode_pushpull_body,
    decode_tcp_ack,
    decode_tcp_ping,
    encode_packet,
    encode_pushpull,
    encode_tcp_ack,
    encode_tcp_ping,
)

log = logging.getLogger(__name__)

UDP_AAD = b"p2porch-gossip-udp"
TCP_AAD = b"p2porch-gossip-tcp"
TCP_BODY_AAD = b"p2porch-gossip-tcp-body"
MAX_UDP_BYTES = 65535
BIND_ANY_ATTEMPTS = 20  # port 0: UDP ports tried whose TCP twin was taken
# A TCP message is a sealed head (envelope + body length), then the sealed body. Before the head has
# authenticated, a peer can make us read at most MAX_TCP_HEAD_BYTES; the body's size is announced inside
# the authenticated head and read into one preallocated buffer.
MAX_TCP_HEAD_BYTES = 1024
MAX_TCP_FRAME_BYTES = 32 * 1024 * 1024
MAX_TCP_CONNECTIONS = 64
MAX_TCP_CONNECTIONS_PER_SOURCE = 8
TCP_AUTH_DEADLINE_S = 2.0
_LEN = struct.Struct(">I")

PacketHandler = Callable[[str, list[Message]], Awaitable[None]]
PushPullHandler = Callable[[bool, list[StateEntry]], list[StateEntry]]
TcpPingHandler = Callable[[str], bool]

METRIC_KEYS = (
    "udp_packets_in",
    "udp_packets_out",
    "udp_bytes_in",
    "udp_bytes_out",
    "udp_send_errors",
    "auth_failures",
    "malformed_packets",
    "replayed_packets",
    "pushpull_in",
    "pushpull_out",
    "pushpull_failures",
    "tcp_pings_in",
    "tcp_pings_out",
    "tcp_ping_failures",
    "tcp_rejected",
    "tcp_auth_timeouts",
)


class Transport:
    """One UDP socket and one TCP listener on ``host:port``; counts everything it drops in ``metrics``.

    Every sealed message carries an :class:`Envelope` (sender name, advertised address, sequence number):
    replayed messages are dropped (``replayed_packets``) and replies go to the envelope's address. The
    TCP listener serves at most ``max_tcp_connections`` connections at once (``per_source`` per peer IP)
    and gives an unauthenticated peer ``auth_deadline_s`` to send its small sealed head.
    """

    def __init__(
        self,
        keyring: Keyring,
        metrics: dict[str, int],
        tcp_timeout_s: float,
        *,
        name: str = "",
        max_tcp_connections: int = MAX_TCP_CONNECTIONS,
        per_source: int = MAX_TCP_CONNECTIONS_PER_SOURCE,
        auth_deadline_s: float = TCP_AUTH_DEADLINE_S,
    ) -> None:
        self.keyring = keyring
        self.metrics = metrics
        for key in METRIC_KEYS:
            metrics.setdefault(key, 0)
        self.tcp_timeout_s = tcp_timeout_s
        self.name = name
        self.max_tcp_connections = max_tcp_connections
        self.per_source = per_source
        self.auth_deadline_s = min(auth_deadline_s, tcp_timeout_s)
        self.udp: trio.socket.SocketType | None = None
        self._udp_raw: socket.socket | None = None  # the same socket, for sends that need no await
        self._literal_addrs: dict[str, tuple[str, int] | None] = {}  # "ip:port" -> sockaddr; None: a name
        self.listener: trio.SocketListener | None = None
        self.addr = ""
        self.replays = ReplayGuard()
        self._seq = SequenceClock()
        self._tcp_open: dict[str, int] = {}

    def _envelope(self, payload: bytes) -> bytes:
        seq = self._seq.next(time.time_ns() // 1000)
        return encode_envelope(Envelope(self.name, self.addr, seq), payload)

    def _open_envelope(self, plaintext: bytes) -> tuple[Envelope, bytes]:
        """Envelope + payload of an authenticated plaintext; raises WireError (replays included)."""
        env, payload = decode_envelope(plaintext)
        if not self.replays.accept(env.sender, env.seq):
            self.metrics["replayed_packets"] += 1
            raise _Replayed(f"replayed gossip message from {env.sender!r} (seq {env.seq})")
        return env, payload

    async def bind(self, host: str, port: int) -> str:
        """Bind UDP then TCP on the same port (port 0 picks one); returns the ``host:port`` bound.

        With port 0 the kernel picks a free UDP port whose TCP twin may be taken: another is picked
        then (a few times), instead of failing."""
        attempt = 1
        while True:
            try:
                return await self._bind_pair(host, port)
            except OSError as exc:
                if port != 0 or exc.errno != errno.EADDRINUSE or attempt >= BIND_ANY_ATTEMPTS:
                    raise
                attempt += 1

    async def _bind_pair(self, host: str, port: int) -> str:
        family = trio.socket.AF_INET6 if ":" in host else trio.socket.AF_INET
        raw = socket.socket(family, socket.SOCK_DGRAM)
        udp = trio.socket.from_stdlib_socket(raw)
        try:
            await udp.bind((host, port))
            port = udp.getsockname()[1]
            tcp = trio.socket.socket(family, trio.socket.SOCK_STREAM)
            try:
                tcp.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_REUSEADDR, 1)
                await tcp.bind((host, port))
                tcp.listen(64)
            except BaseException:
                tcp.close()
                raise
        except BaseException:
            udp.close()
            raise
        self.udp = udp
        self._udp_raw = raw
        self.listener = trio.SocketListener(tcp)
        self.addr = format_addr(host, port)
        self.name = self.name or self.addr
        return self.addr

    def close(self) -> None:
        if self.udp is not None:
            self.udp.close()
        if self.listener is not None:
            self.listener.socket.close()

    # -------------------------------------------------------------------------------------- UDP

    async def send_packet(self, addr: str, msgs: list[Message]) -> None:
        assert self.udp is not None
        try:
            data = self.keyring.seal(self._envelope(encode_packet(msgs)), UDP_AAD)
            await self.udp.sendto(data, parse_addr(addr))
        except (OSError, WireError, ValueError) as exc:
            self.metrics["udp_send_errors"] += 1
            log.debug("gossip send to %s failed: %s", addr, exc)
            return
        self.metrics["udp_packets_out"] += 1
        self.metrics["udp_bytes_out"] += len(data)

    def send_packet_nowait(self, addr: str, msgs: list[Message]) -> bool:
        """Send at once without yielding to trio (a UDP send to an IP address does not block); False:
        the caller must use :meth:`send_packet` (a host name to resolve, or a full socket buffer).
        Saves an idle node a task switch and a scheduler pass per packet (issue 19)."""
        raw = self._udp_raw
        if addr in self._literal_addrs:
            sockaddr = self._literal_addrs[addr]
        else:
            sockaddr = _ip_sockaddr(addr)
            if len(self._literal_addrs) >= MAX_LITERAL_ADDRS:  # bounded whatever peers announce
                self._literal_addrs.clear()
            self._literal_addrs[addr] = sockaddr
        if raw is None or sockaddr is None:
            return False
        try:
            data = self.keyring.seal(self._envelope(encode_packet(msgs)), UDP_AAD)
        except (WireError, ValueError) as exc:
            self.metrics["udp_send_errors"] += 1
            log.debug("gossip send to %s failed: %s", addr, exc)
            return True
        try:
            raw.sendto(data, sockaddr)
        except BlockingIOError:
            return False
        except OSError as exc:
            self.metrics["udp_send_errors"] += 1
            log.debug("gossip send to %s failed: %s", addr, exc)
            return True
        self.metrics["udp_packets_out"] += 1
        self.metrics["udp_bytes_out"] += len(data)
        return True

    async def serve_udp(self, handler: PacketHandler) -> None:
        """Receive forever; authenticated, fresh, well-formed packets go to ``handler(sender_addr, msgs)``
        where ``sender_addr`` is the address advertised inside the sealed envelope."""
        assert self.udp is not None
        metrics = self.metrics
        # One buffer for every datagram: ``recvfrom(65535)`` allocated 64 KiB and shrank it per packet,
        # holes in glibc's heap that ``malloc_trim`` could not return (docs/performance.md, "The idle
        # leader's heap"). The buffer is this loop's own; each datagram is copied out of it at once.
        scratch = memoryview(bytearray(MAX_UDP_BYTES))
        while True:
            try:
                count, _src = await self.udp.recvfrom_into(scratch, MAX_UDP_BYTES)
            except OSError as exc:  # e.g. ICMP port unreachable surfacing on Linux
                log.debug("gossip recv error: %s", exc)
                continue
            data = bytes(scratch[:count])
            metrics["udp_packets_in"] += 1
            metrics["udp_bytes_in"] += len(data)
            try:
                env, payload = self._open_envelope(self.keyring.open(data, UDP_AAD))
                msgs = decode_packet(payload)
            except AuthError:
                metrics["auth_failures"] += 1
                continue
            except _Replayed:
                continue
            except WireError:
                metrics["malformed_packets"] += 1
                continue
            await handler(env.addr, msgs)

    # -------------------------------------------------------------------------------------- TCP

    async def _send_message(self, stream: trio.abc.Stream, plaintext: bytes) -> None:
        """Sealed head (envelope + body length), then the sealed body bound to the head's sequence."""
        body_aad = TCP_BODY_AAD
        body_len = len(plaintext) + SEAL_OVERHEAD_BYTES
        head_plain = self._envelope(_LEN.pack(body_len))
        env, _ = decode_envelope(head_plain)
        head = self.keyring.seal(head_plain, TCP_AAD)
        body = self.keyring.seal(plaintext, body_aad + _body_binding(env))
        await stream.send_all(b"".join((_LEN.pack(len(head)), head, body)))

    async def _recv_message(self, stream: trio.SocketStream, head_deadline_s: float | None = None) -> bytes:
        """Read one message: at most MAX_TCP_HEAD_BYTES before authentication, then the announced body."""
        with trio.fail_after(head_deadline_s) if head_deadline_s is not None else _no_deadline():
            (head_len,) = _LEN.unpack(await _receive_exactly(stream, _LEN.size))
            if head_len > MAX_TCP_HEAD_BYTES:
                raise WireError(f"gossip TCP head of {head_len} bytes is too large")
            head = self.keyring.open(await _receive_exactly(stream, head_len), TCP_AAD)
        env, payload = self._open_envelope(head)
        if len(payload) != _LEN.size:
            raise WireError("gossip TCP head without a body length")
        (body_len,) = _LEN.unpack(payload)
        if body_len > MAX_TCP_FRAME_BYTES:
            raise WireError(f"gossip TCP body of {body_len} bytes is too large")
        buf = await _receive_into(stream, body_len)
        return self.keyring.open(buf, TCP_BODY_AAD + _body_binding(env))

    async def pushpull(self, addr: str, join: bool, states: list[StateEntry]) -> list[StateEntry] | None:
        """Exchange full state with ``addr``; None (counted) on any failure."""
        try:
            host, port = parse_addr(addr)
            with trio.fail_after(self.tcp_timeout_s):
                stream = await trio.open_tcp_stream(host, port)
                async with stream:
                    await self._send_message(stream, encode_pushpull(join, states))
                    reply = await self._recv_message(stream)
                    _, remote = decode_pushpull(reply, max_bytes=MAX_TCP_FRAME_BYTES)
        except AuthError:
            self.metrics["auth_failures"] += 1
            self.metrics["pushpull_failures"] += 1
            return None
        except (OSError, trio.TooSlowError, trio.BrokenResourceError, WireError, ValueError) as exc:
            self.metrics["pushpull_failures"] += 1
            log.debug("push/pull with %s failed: %s", addr, exc)
            return None
        self.metrics["pushpull_out"] += 1
        return remote

    async def tcp_ping(self, addr: str, seq: int, target: str, timeout_s: float) -> bool:
        """memberlist's TCP fallback ping: True if ``target`` answered at ``addr`` within ``timeout_s``."""
        try:
            host, port = parse_addr(addr)
            with trio.fail_after(timeout_s):
                stream = await trio.open_tcp_stream(host, port)
                async with stream:
                    await self._send_message(stream, encode_tcp_ping(seq, target))
                    answered = decode_tcp_ack(await self._recv_message(stream)) == seq
        except (
            AuthError,
            OSError,
            trio.TooSlowError,
            trio.BrokenResourceError,
            WireError,
            ValueError,
        ) as exc:
            self.metrics["tcp_ping_failures"] += 1
            log.debug("tcp ping of %s failed: %s", addr, exc)
            return False
        self.metrics["tcp_pings_out"] += 1
        return answered

    async def serve_tcp(self, handler: PushPullHandler, ping_handler: TcpPingHandler) -> None:
        """Accept push/pull exchanges (``handler(join, remote_states)`` returns our state to send back) and
        TCP fallback pings (answered when ``ping_handler(target)`` is true)."""
        assert self.listener is not None

        async def one(stream: trio.SocketStream) -> None:
            source = _peer_host(stream)
            open_now = self._tcp_open.get(source, 0)
            if sum(self._tcp_open.values()) >= self.max_tcp_connections or open_now >= self.per_source:
                self.metrics["tcp_rejected"] += 1
                await trio.aclose_forcefully(stream)
                return
            self._tcp_open[source] = open_now + 1
            try:
                await self._serve_one(stream, handler, ping_handler)
            finally:
                left = self._tcp_open[source] - 1
                if left:
                    self._tcp_open[source] = left
                else:
                    del self._tcp_open[source]

        await trio.serve_listeners(one, [self.listener])

    async def _serve_one(
        self, stream: trio.SocketStream, handler: PushPullHandler, ping_handler: TcpPingHandler
    ) -> None:
        try:
            with trio.fail_after(self.tcp_timeout_s):
                async with stream:
                    plaintext = await self._recv_message(stream, self.auth_deadline_s)
                    msg_type, body = wire.decode_frame(plaintext, max_bytes=MAX_TCP_FRAME_BYTES)
                    if msg_type == TCP_PING_TYPE:
                        seq, target = decode_tcp_ping(body)
                        if ping_handler(target):
                            await self._send_message(stream, encode_tcp_ack(seq))
                            self.metrics["tcp_pings_in"] += 1
                        return
                    if msg_type != PUSHPULL_TYPE:
                        raise WireError(f"unexpected TCP frame type {msg_type!r}")
                    join, remote = decode_pushpull_body(body)
                    reply = handler(join, remote)
                    await self._send_message(stream, encode_pushpull(False, reply))
        except AuthError:
            self.metrics["auth_failures"] += 1
            return
        except _Replayed:
            return
        except WireError:
            self.metrics["malformed_packets"] += 1
            return
        except trio.TooSlowError:
            self.metrics["tcp_auth_timeouts"] += 1
            return
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError, ValueError) as exc:
            self.metrics["pushpull_failures"] += 1
            log.debug("incoming push/pull failed: %s", exc)
            return
        self.metrics["pushpull_in"] += 1


class _Replayed(WireError):
    """A replayed (already accepted) sealed message; counted in ``replayed_packets``."""


def _body_binding(env: Envelope) -> bytes:
    return env.seq.to_bytes(8, "big") + env.sender.encode()


def _peer_host(stream: trio.SocketStream) -> str:
    try:
        return str(stream.socket.getpeername()[0])
    except (OSError, IndexError):
        return "?"


@contextlib.contextmanager
def _no_deadline() -> Iterator[None]:
    yield


async def _receive_exactly(stream: trio.abc.ReceiveStream, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = await stream.receive_some(n - len(buf))
        if not chunk:
            raise WireError("connection closed mid-frame")
        buf += chunk
    return bytes(buf)


async def _receive_into(stream: trio.SocketStream, n: int) -> bytearray:
    """Read exactly ``n`` bytes into one buffer (no per-chunk copies)."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        count = await stream.socket.recv_into(view[got:], n - got)
        if not count:
            raise WireError("connection closed mid-frame")
        got += count
    return buf


MAX_LITERAL_ADDRS = 4096


def _ip_sockaddr(addr: str) -> tuple[str, int] | None:
    """``(ip, port)`` when ``addr`` is an IP literal with a port; None for a host name or garbage."""
    try:
        host, port = parse_addr(addr)
        ipaddress.ip_address(host)
    except (ValueError, P2POrchError):
        return None
    return host, port
