"""Gossip transport (shell): sealed UDP datagrams and length-prefixed sealed TCP frames over trio.

Owns the sockets bound to the advertise address, sealing/opening with the keyring, framing, and the
counters of what was dropped. It never interprets membership: it hands decoded messages and push/pull
states to the runner, and never raises on bad remote input (counts it and drops it).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Awaitable, Callable

import trio

from .. import wire
from ..errors import AuthError, WireError
from .config import format_addr, parse_addr
from .keyring import Keyring
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
MAX_UDP_BYTES = 65535
MAX_TCP_FRAME_BYTES = 32 * 1024 * 1024
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
    "pushpull_in",
    "pushpull_out",
    "pushpull_failures",
    "tcp_pings_in",
    "tcp_pings_out",
    "tcp_ping_failures",
)


class Transport:
    """One UDP socket and one TCP listener on ``host:port``; counts everything it drops in ``metrics``."""

    def __init__(self, keyring: Keyring, metrics: dict[str, int], tcp_timeout_s: float) -> None:
        self.keyring = keyring
        self.metrics = metrics
        for key in METRIC_KEYS:
            metrics.setdefault(key, 0)
        self.tcp_timeout_s = tcp_timeout_s
        self.udp: trio.socket.SocketType | None = None
        self.listener: trio.SocketListener | None = None
        self.addr = ""

    async def bind(self, host: str, port: int) -> str:
        """Bind UDP then TCP on the same port (port 0 picks one); returns the ``host:port`` bound."""
        family = trio.socket.AF_INET6 if ":" in host else trio.socket.AF_INET
        udp = trio.socket.socket(family, trio.socket.SOCK_DGRAM)
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
        self.listener = trio.SocketListener(tcp)
        self.addr = format_addr(host, port)
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
            data = self.keyring.seal(encode_packet(msgs), UDP_AAD)
            await self.udp.sendto(data, parse_addr(addr))
        except (OSError, WireError, ValueError) as exc:
            self.metrics["udp_send_errors"] += 1
            log.debug("gossip send to %s failed: %s", addr, exc)
            return
        self.metrics["udp_packets_out"] += 1
        self.metrics["udp_bytes_out"] += len(data)

    async def serve_udp(self, handler: PacketHandler) -> None:
        """Receive forever; authenticated, well-formed packets go to ``handler(src_addr, msgs)``."""
        assert self.udp is not None
        metrics = self.metrics
        while True:
            try:
                data, src = await self.udp.recvfrom(MAX_UDP_BYTES)
            except OSError as exc:  # e.g. ICMP port unreachable surfacing on Linux
                log.debug("gossip recv error: %s", exc)
                continue
            metrics["udp_packets_in"] += 1
            metrics["udp_bytes_in"] += len(data)
            try:
                msgs = decode_packet(self.keyring.open(data, UDP_AAD))
            except AuthError:
                metrics["auth_failures"] += 1
                continue
            except WireError:
                metrics["malformed_packets"] += 1
                continue
            await handler(format_addr(src[0], src[1]), msgs)

    # -------------------------------------------------------------------------------------- TCP

    async def _send_frame(self, stream: trio.abc.Stream, plaintext: bytes) -> None:
        sealed = self.keyring.seal(plaintext, TCP_AAD)
        await stream.send_all(_LEN.pack(len(sealed)) + sealed)

    async def _recv_frame(self, stream: trio.abc.ReceiveStream) -> bytes:
        header = await _receive_exactly(stream, _LEN.size)
        (length,) = _LEN.unpack(header)
        if length > MAX_TCP_FRAME_BYTES:
            raise WireError(f"push/pull frame of {length} bytes is too large")
        return self.keyring.open(await _receive_exactly(stream, length), TCP_AAD)

    async def pushpull(self, addr: str, join: bool, states: list[StateEntry]) -> list[StateEntry] | None:
        """Exchange full state with ``addr``; None (counted) on any failure."""
        try:
            host, port = parse_addr(addr)
            with trio.fail_after(self.tcp_timeout_s):
                stream = await trio.open_tcp_stream(host, port)
                async with stream:
                    await self._send_frame(stream, encode_pushpull(join, states))
                    _, remote = decode_pushpull(await self._recv_frame(stream), max_bytes=MAX_TCP_FRAME_BYTES)
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
                    await self._send_frame(stream, encode_tcp_ping(seq, target))
                    answered = decode_tcp_ack(await self._recv_frame(stream)) == seq
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
            try:
                with trio.fail_after(self.tcp_timeout_s):
                    async with stream:
                        plaintext = await self._recv_frame(stream)
                        msg_type, body = wire.decode_frame(plaintext, max_bytes=MAX_TCP_FRAME_BYTES)
                        if msg_type == TCP_PING_TYPE:
                            seq, target = decode_tcp_ping(body)
                            if ping_handler(target):
                                await self._send_frame(stream, encode_tcp_ack(seq))
                                self.metrics["tcp_pings_in"] += 1
                            return
                        if msg_type != PUSHPULL_TYPE:
                            raise WireError(f"unexpected TCP frame type {msg_type!r}")
                        join, remote = decode_pushpull_body(body)
                        reply = handler(join, remote)
                        await self._send_frame(stream, encode_pushpull(False, reply))
            except AuthError:
                self.metrics["auth_failures"] += 1
                return
            except WireError:
                self.metrics["malformed_packets"] += 1
                return
            except (OSError, trio.TooSlowError, trio.BrokenResourceError, ValueError) as exc:
                self.metrics["pushpull_failures"] += 1
                log.debug("incoming push/pull failed: %s", exc)
                return
            self.metrics["pushpull_in"] += 1

        await trio.serve_listeners(one, [self.listener])


async def _receive_exactly(stream: trio.abc.ReceiveStream, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = await stream.receive_some(n - len(buf))
        if not chunk:
            raise WireError("connection closed mid-frame")
        buf += chunk
    return bytes(buf)
