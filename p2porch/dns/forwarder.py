"""Forwarding of names outside the cluster domain to upstream resolvers (shell, trio).

`Forwarder.forward(query, tcp=...)` asks each upstream in turn (a fresh random ID, restored in the
reply; UDP queries over UDP from a fresh socket, TCP over TCP), each for at most `timeout_s`, and
returns the first reply whose ID, QR flag and question match, or SERVFAIL. It never decides who may
have names forwarded (the server asks `ClientPolicy` first) and never raises on upstream failures:
they are counted in the server's counters.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import trio

from p2porch.dns.resolver import SERVFAIL
from p2porch.dns.upstream import parse_resolv_conf, reply_matches

log = logging.getLogger(__name__)

Address = tuple[str, int]
UDP_RECV_BYTES = 65535
TCP_READ_BYTES = 65536
_WILDCARDS = ("0.0.0.0", "::", "")


def default_upstreams(resolv_conf: str | Path = "/etc/resolv.conf") -> list[Address]:
    """Upstreams from the host's resolv.conf; empty if it cannot be read."""
    try:
        return parse_resolv_conf(Path(resolv_conf).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return []


def _is_local_address(host: str) -> bool:
    """True if `host` is an address of this machine (binding to it works)."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if ip.is_loopback or ip.is_unspecified:
        return True
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((host, 0))
    except OSError:
        return False
    return True


def filter_upstreams(upstreams: Sequence[Address], listen_addrs: Sequence[Address]) -> list[Address]:
    """`upstreams` without any address this server listens on (it must never forward to itself)."""
    out: list[Address] = []
    for host, port in upstreams:
        is_self = False
        for lhost, lport in listen_addrs:
            if port != lport:
                continue
            if host == lhost or (lhost in _WILDCARDS and _is_local_address(host)):
                is_self = True
        if is_self:
            log.warning("dns: not forwarding to %s:%d, it is one of our own listen addresses", host, port)
        elif (host, port) not in out:
            out.append((host, port))
    return out


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class Forwarder:
    """Owns the upstream list and the per-upstream timeout; counts into the server's `counters`."""

    def __init__(
        self,
        upstreams: list[Address],
        counters: Any,
        error_response: Callable[[bytes, int], bytes | None],
        timeout_s: float,
    ) -> None:
        self.upstreams = upstreams
        self.counters = counters
        self.error_response = error_response
        self.timeout_s = timeout_s

    async def forward(self, query: bytes, *, tcp: bool) -> bytes | None:
        """The first valid upstream reply (client's ID restored), else SERVFAIL; None if unanswerable."""
        self.counters.forwarded += 1
        for host, port in self.upstreams:
            sent = secrets.token_bytes(2) + query[2:]
            reply: bytes | None = None
            try:
                with trio.move_on_after(self.timeout_s) as scope:
                    if tcp:
                        reply = await self._ask_tcp(host, port, sent)
                    else:
                        reply = await self._ask_udp(host, port, sent)
                if scope.cancelled_caught:
                    self.counters.upstream_timeouts += 1
                    log.debug("dns: upstream %s:%d timed out", host, port)
                elif reply is None:
                    self.counters.upstream_errors += 1
                    log.debug("dns: upstream %s:%d closed without a valid reply", host, port)
            except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                self.counters.upstream_errors += 1
                log.debug("dns: upstream %s:%d failed: %r", host, port, exc)
            if reply is not None:
                self.counters.forward_replies += 1
                return query[:2] + reply[2:]
        self.counters.servfail += 1
        return self.error_response(query, SERVFAIL)

    @staticmethod
    async def _ask_udp(host: str, port: int, sent: bytes) -> bytes | None:
        with trio.socket.socket(_family(host), socket.SOCK_DGRAM) as sock:
            await sock.connect((host, port))
            await sock.send(sent)
            while True:
                reply = await sock.recv(UDP_RECV_BYTES)
                if reply_matches(sent, reply):
                    return reply

    @staticmethod
    async def _ask_tcp(host: str, port: int, sent: bytes) -> bytes | None:
        stream = await trio.open_tcp_stream(host, port)
        async with stream:
            await stream.send_all(len(sent).to_bytes(2, "big") + sent)
            buf = bytearray()
            reply = await receive_message(stream, buf)
        if reply is None or not reply_matches(sent, reply):
            return None
        return reply


async def receive_message(stream: trio.abc.ReceiveStream, buf: bytearray) -> bytes | None:
    """Next 2-byte-length-prefixed DNS message from `stream` (`buf` keeps leftovers); None at EOF."""
    while len(buf) < 2:
        chunk = await stream.receive_some(TCP_READ_BYTES)
        if not chunk:
            return None
        buf += chunk
    size = int.from_bytes(buf[:2], "big")
    while len(buf) < 2 + size:
        chunk = await stream.receive_some(TCP_READ_BYTES)
        if not chunk:
            return None
        buf += chunk
    message = bytes(buf[2 : 2 + size])
    del buf[: 2 + size]
    return message
