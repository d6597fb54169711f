"""Trio UDP + TCP DNS server around the pure `Resolver`, with forwarding of foreign names.

`serve_dns` binds UDP and TCP on every listen address (same port for both), answers from the
resolver and forwards queries for names outside the cluster domain to upstream resolvers (UDP
queries over UDP, TCP queries over TCP; `forwarder.py`), returning SERVFAIL when every upstream
fails or times out. Only the cluster's own clients (`guard.ClientPolicy`) get foreign names
forwarded, everyone else gets REFUSED; other sources are response-rate limited per /24
(`guard.ResponseRateLimiter`); forwards and TCP connections are capped in total and per source
(`ServerLimits`). It never forwards to one of its own listen addresses and never dies on bad
input: errors are counted in `ServerCounters` and logged at debug level.

The UDP loop is the hot path (docs/dns.md, "The UDP fast path"): after each `wait_readable` it
receives a batch with one recvmmsg(2), answers cache hits straight from `Resolver.udp_cache` by
writing the cached reply into each query's receive slot after its ID, hands everything else to
`Resolver.resolve`, and sends all replies with one sendmmsg(2) (`p2porch.dns.mmsg`). Where those
calls are unavailable it drains up to a batch with recvfrom and then sendto's the replies.

Standalone (used by bench/dns.py): `python -m p2porch.dns.server --zone-file zone.json --listen
127.0.0.1:5353 [--upstream 1.1.1.1] [--no-forward] [--allow-recursion CIDR] [--ttl 5]`; SIGHUP
reloads the zone file, SIGTERM/SIGINT stop the server and print the counters as JSON on stdout.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import trio

from p2porch.dns.forwarder import Forwarder, default_upstreams, filter_upstreams, receive_message
from p2porch.dns.guard import SLIP, ClientPolicy, ResponseRateLimiter, source_key, truncated_reply
from p2porch.dns.mmsg import NAME_BYTES, SLOT_BYTES, UdpBatch
from p2porch.dns.resolver import FORWARD, REFUSED, SERVFAIL, Resolver, RotatingAnswer
from p2porch.dns.scope import ClientScopes
from p2porch.dns.upstream import DNS_PORT, parse_upstream
from p2porch.dns.zone import ZoneData

log = logging.getLogger(__name__)

__all__ = ["ServerCounters", "ServerLimits", "default_upstreams", "filter_upstreams", "serve_dns"]

Address = tuple[str, int]

_UDP_BATCH = 64
# recvmmsg/sendmmsg where available (tests switch it off to cover the portable loop)
USE_MMSG = True
_UDP_RECV_BYTES = 65535
_SOCKET_BUFFER_BYTES = 4 << 20


@dataclass(slots=True)
class ServerCounters:
    """I/O side counters of one DNS server (the resolver keeps its own `ResolverCounters`)."""

    udp_wakeups: int = 0
    tcp_received: int = 0
    forwarded: int = 0
    forward_replies: int = 0
    servfail: int = 0
    overload: int = 0
    upstream_timeouts: int = 0
    upstream_errors: int = 0
    tcp_connections: int = 0
    tcp_rejected: int = 0
    refused_recursion: int = 0
    forward_rejected_per_source: int = 0
    rrl_dropped: int = 0
    rrl_slipped: int = 0
    send_errors: int = 0
    recv_errors: int = 0
    internal_errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


@dataclass(frozen=True)
class ServerLimits:
    """How much of the server one client, or all of them, may hold (docs/security.md, "DNS")."""

    max_forwards_in_flight: int = 512
    max_forwards_per_source: int = 64
    max_tcp_connections: int = 256
    max_tcp_per_source: int = 16
    tcp_idle_timeout_s: float = 10.0
    rrl_rate: float = 100.0  # responses per second per source /24 (IPv6 /56) outside the clients
    rrl_burst: float = 200.0
    rrl_slip: int = 2  # every 2nd limited response is an empty TC reply, the others are dropped


class _DnsServer:
    """Owns the sockets' loops, the per-source slots, RRL and the counters of one `serve_dns` call."""

    def __init__(
        self,
        resolver: Resolver,
        upstreams: list[Address],
        counters: ServerCounters,
        *,
        timeout_s: float,
        policy: ClientPolicy,
        limits: ServerLimits,
        scopes: ClientScopes | None = None,
    ) -> None:
        self.resolver = resolver
        self.scopes = scopes  # task clients get answers scoped to their networks (dns/scope.py)
        self.counters = counters
        self.forwarder = Forwarder(upstreams, counters, resolver.error_response, timeout_s)
        self.policy = policy
        self.limits = limits
        self.rrl = ResponseRateLimiter(
            policy, rate=limits.rrl_rate, burst=limits.rrl_burst, slip=limits.rrl_slip
        )
        self.max_forwards_in_flight = limits.max_forwards_in_flight
        self.max_tcp_connections = limits.max_tcp_connections
        self.tcp_idle_timeout_s = limits.tcp_idle_timeout_s
        self.forwards_in_flight = 0
        self.forwards_by_source: dict[str, int] = {}
        self.tcp_open = 0
        self.tcp_by_source: dict[str, int] = {}

    def _take_forward_slot(self, host: str) -> bool:
        """Reserve a forward slot for client `host` (False: over the total or the per-source cap)."""
        if self.forwards_in_flight >= self.max_forwards_in_flight:
            self.counters.overload += 1
            return False
        mine = self.forwards_by_source.get(host, 0)
        if mine >= self.limits.max_forwards_per_source:
            self.counters.forward_rejected_per_source += 1
            return False
        self.forwards_in_flight += 1
        self.forwards_by_source[host] = mine + 1
        return True

    def _release_forward_slot(self, host: str) -> None:
        self.forwards_in_flight -= 1
        left = self.forwards_by_source[host] - 1
        if left:
            self.forwards_by_source[host] = left
        else:
            del self.forwards_by_source[host]

    # ---- UDP ------------------------------------------------------------------------------------

    async def udp_loop(self, sock: socket.socket, nursery: trio.Nursery) -> None:
        """Answer UDP queries on `sock` forever: batched syscalls where available, else plain."""
        batch = UdpBatch.open(sock, _UDP_BATCH) if USE_MMSG else None
        if batch is not None:
            await self._udp_loop_mmsg(sock, nursery, batch)
        else:
            await self._udp_loop_plain(sock, nursery)

    async def _udp_loop_mmsg(self, sock: socket.socket, nursery: trio.Nursery, batch: UdpBatch) -> None:
        """recvmmsg a batch, answer cache hits in place in the receive slots, sendmmsg the replies."""
        data = batch.data
        msg_lens = batch.msg_lens
        iov_lens = batch.iov_lens
        recv = batch.recv
        send = batch.send
        reset = batch.reset
        resolver = self.resolver
        rcounters = resolver.counters
        counters = self.counters
        wait_readable = trio.lowlevel.wait_readable
        current_time = trio.current_time
        rrl_check = self.rrl.check
        names_of = batch.names
        slot = SLOT_BYTES
        while True:
            await wait_readable(sock)
            counters.udp_wakeups += 1
            n = recv()
            if n <= 0:
                if n != -errno.EAGAIN:
                    counters.recv_errors += 1
                    log.debug("dns: udp recvmmsg error %s", errno.errorcode.get(-n, -n))
                continue
            get = resolver.udp_cache.get
            scoped = self.scopes.by_packed if self.scopes is not None else None
            hits = 0
            gaps: list[int] | None = None  # slots that get no reply from this batch
            names = names_of(n)
            now = current_time()
            for i in range(n):
                off = i * slot
                try:
                    size = msg_lens[i]
                    at = i * NAME_BYTES  # RRL key: the sender's /24 (IPv4, family byte 2) or /56
                    verdict = rrl_check(
                        names[at + 4 : at + 7] if names[at] == 2 else names[at + 8 : at + 15], now
                    )
                    if verdict:
                        reply = self._rate_limited(data[off : off + size], verdict)
                        if reply is None:
                            gaps = [i] if gaps is None else gaps + [i]
                        else:
                            data[off : off + len(reply)] = reply
                            iov_lens[i] = len(reply)
                        continue
                    own = scoped.get(names[at + 4 : at + 8]) if scoped and names[at] == 2 else None
                    if own is None:
                        entry = get(data[off + 2 : off + size])
                    else:
                        entry = own.udp_cache.get(data[off + 2 : off + size])
                    if entry.__class__ is bytes:
                        end = off + 2 + len(entry)
                        data[off + 2 : end] = entry
                        iov_lens[i] = end - off
                        hits += 1
                    elif entry.__class__ is RotatingAnswer:
                        tail = entry.next_tail()
                        end = off + 2 + len(tail)
                        data[off + 2 : end] = tail
                        iov_lens[i] = end - off
                        hits += 1
                    else:
                        query = data[off : off + size]
                        result = (own or resolver).resolve(query, False)
                        if result.__class__ is bytes:
                            data[off : off + len(result)] = result
                            iov_lens[i] = len(result)
                        else:
                            if result is FORWARD:
                                self._start_udp_forward(query, batch.peer(i), sock, nursery)
                            gaps = [i] if gaps is None else gaps + [i]
                except Exception:
                    counters.internal_errors += 1
                    log.debug("dns: internal error answering a udp query", exc_info=True)
                    gaps = [i] if gaps is None else gaps + [i]
            rcounters.cache_hits += hits
            if gaps is None:
                counters.send_errors += send(0, n)
            else:
                start = 0
                for gap in gaps:
                    if gap > start:
                        counters.send_errors += send(start, gap)
                    start = gap + 1
                if start < n:
                    counters.send_errors += send(start, n)
            reset(n)

    async def _udp_loop_plain(self, sock: socket.socket, nursery: trio.Nursery) -> None:
        """Portable loop: drain up to a batch with recvfrom, answer, then sendto every reply."""
        recvfrom = sock.recvfrom
        sendto = sock.sendto
        scopes = self.scopes
        resolve = self.resolver.resolve
        counters = self.counters
        rrl_check = self.rrl.check
        replies: list[tuple[bytes, Any]] = []
        while True:
            await trio.lowlevel.wait_readable(sock)
            counters.udp_wakeups += 1
            now = trio.current_time()
            for _ in range(_UDP_BATCH):
                try:
                    data, addr = recvfrom(_UDP_RECV_BYTES)
                except BlockingIOError:
                    break
                except OSError as exc:
                    counters.recv_errors += 1
                    log.debug("dns: udp recv error %r", exc)
                    continue
                try:
                    verdict = rrl_check(source_key(addr[0]), now)
                    if verdict:
                        limited = self._rate_limited(data, verdict)
                        if limited is not None:
                            replies.append((limited, addr))
                        continue
                    if scopes is not None:
                        result = scopes.for_host(addr[0]).resolve(data, False)
                    else:
                        result = resolve(data, False)
                    if result.__class__ is bytes:
                        replies.append((result, addr))
                    elif result is FORWARD:
                        self._start_udp_forward(data, addr, sock, nursery)
                except Exception:
                    counters.internal_errors += 1
                    log.debug("dns: internal error answering %s", addr, exc_info=True)
            for result, addr in replies:
                try:
                    sendto(result, addr)
                except OSError as exc:
                    counters.send_errors += 1
                    log.debug("dns: udp send to %s failed: %r", addr, exc)
            replies.clear()

    def _rate_limited(self, query: bytes, verdict: int) -> bytes | None:
        """What a rate-limited source gets: an empty TC reply on SLIP, else nothing."""
        if verdict == SLIP:
            reply = truncated_reply(bytes(query))
            if reply is not None:
                self.counters.rrl_slipped += 1
                return reply
        self.counters.rrl_dropped += 1
        return None

    def _start_udp_forward(self, data: bytes, addr: Any, sock: socket.socket, nursery: trio.Nursery) -> None:
        host = str(addr[0])
        if not self.policy.is_client(host):  # no open resolver: foreign names only for our clients
            self.counters.refused_recursion += 1
            reply = self.resolver.error_response(data, REFUSED)
        elif not self._take_forward_slot(host):
            reply = self.resolver.error_response(data, SERVFAIL)
        else:
            nursery.start_soon(self._udp_forward, data, addr, sock)
            return
        if reply is not None:
            self._udp_send(sock, reply, addr)

    async def _udp_forward(self, data: bytes, addr: Any, sock: socket.socket) -> None:
        try:
            reply = await self.forwarder.forward(data, tcp=False)
            if reply is not None:
                self._udp_send(sock, reply, addr)
        except Exception:
            self.counters.internal_errors += 1
            log.debug("dns: internal error forwarding for %s", addr, exc_info=True)
        finally:
            self._release_forward_slot(str(addr[0]))

    def _udp_send(self, sock: socket.socket, reply: bytes, addr: Any) -> None:
        try:
            sock.sendto(reply, addr)
        except OSError as exc:
            self.counters.send_errors += 1
            log.debug("dns: udp send to %s failed: %r", addr, exc)

    # ---- TCP ------------------------------------------------------------------------------------

    async def tcp_connection(self, stream: trio.SocketStream) -> None:
        """Answer length-prefixed queries on one connection until EOF, idle timeout or error."""
        counters = self.counters
        host = _peer_host(stream)
        mine = self.tcp_by_source.get(host, 0)
        if self.tcp_open >= self.max_tcp_connections or mine >= self.limits.max_tcp_per_source:
            counters.tcp_rejected += 1
            await trio.aclose_forcefully(stream)
            return
        self.tcp_open += 1
        self.tcp_by_source[host] = mine + 1
        counters.tcp_connections += 1
        try:
            async with stream:
                buf = bytearray()
                while True:
                    message = None
                    with trio.move_on_after(self.tcp_idle_timeout_s):
                        message = await receive_message(stream, buf)
                    if message is None:
                        return
                    counters.tcp_received += 1
                    own = self.scopes.for_host(host) if self.scopes is not None else self.resolver
                    result = own.resolve(message, True)
                    if result is None:
                        continue
                    if result is FORWARD:
                        if not self.policy.is_client(host):
                            counters.refused_recursion += 1
                            result = self.resolver.error_response(message, REFUSED)
                        elif not self._take_forward_slot(host):
                            result = self.resolver.error_response(message, REFUSED)
                        else:
                            try:
                                result = await self.forwarder.forward(message, tcp=True)
                            finally:
                                self._release_forward_slot(host)
                        if result is None:
                            continue
                    assert isinstance(result, bytes)
                    with trio.move_on_after(self.tcp_idle_timeout_s) as scope:
                        await stream.send_all(len(result).to_bytes(2, "big") + result)
                    if scope.cancelled_caught:
                        return
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            log.debug("dns: tcp connection ended: %r", exc)
        except Exception:
            counters.internal_errors += 1
            log.debug("dns: internal error on tcp connection", exc_info=True)
        finally:
            self.tcp_open -= 1
            left = self.tcp_by_source[host] - 1
            if left:
                self.tcp_by_source[host] = left
            else:
                del self.tcp_by_source[host]


def _peer_host(stream: trio.SocketStream) -> str:
    try:
        return str(stream.socket.getpeername()[0])
    except (OSError, IndexError):
        return "?"


#: Linux's IP_FREEBIND (Python 3.11's socket module does not name it): bind an address not (yet) local
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)


def _bind_udp(host: str, port: int, free: bool = False) -> socket.socket:
    sock = socket.socket(_family(host), socket.SOCK_DGRAM)
    try:
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, option, _SOCKET_BUFFER_BYTES)
            except OSError:
                pass
        if free:
            sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
        sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def _bind_tcp(host: str, port: int, free: bool = False) -> trio.SocketListener:
    sock = trio.socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if free:
            sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
        await sock.bind((host, port))
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return trio.SocketListener(sock)


async def _bind_pair(host: str, port: int, free: bool = False) -> tuple[socket.socket, trio.SocketListener]:
    """UDP and TCP sockets on the same (host, port); port 0 picks one free for both. ``free``: the
    address need not be local yet (IP_FREEBIND: a bridge's gateway before its network exists)."""
    attempts = 20 if port == 0 else 1
    for attempt in range(attempts):
        udp = _bind_udp(host, port, free)
        try:
            return udp, await _bind_tcp(host, udp.getsockname()[1], free)
        except OSError as exc:
            udp.close()
            if exc.errno != errno.EADDRINUSE or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


async def serve_dns(
    resolver: Resolver,
    listen_addrs: Sequence[Address],
    upstreams: Sequence[Address] | None,
    *,
    timeout_s: float = 2.0,
    counters: ServerCounters | None = None,
    policy: ClientPolicy | None = None,
    limits: ServerLimits | None = None,
    scopes: ClientScopes | None = None,
    free_bind: Sequence[str] = (),
    task_status: trio.TaskStatus[list[Address]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve DNS on UDP and TCP at every listen address until cancelled.

    `upstreams` None means the host's /etc/resolv.conf. Our own listen addresses are removed
    from the upstreams. `timeout_s` bounds each upstream attempt. `policy` says who the cluster's
    clients are (only they get foreign names forwarded and they are exempt from RRL; default:
    loopback only). `task_status.started` reports the bound (host, port) list, so port 0 can be
    used. Bind errors raise OSError before started. With `scopes`, a task's address is answered by
    the resolver of its networks (`dns/scope.py`), everyone else by `resolver`. The hosts in
    `free_bind` are bound whether or not they are local addresses yet (answered once they are).
    """
    if not listen_addrs:
        raise ValueError("serve_dns needs at least one listen address")
    counters = counters if counters is not None else ServerCounters()
    udp_socks: list[socket.socket] = []
    listeners: list[trio.SocketListener] = []
    bound: list[Address] = []
    try:
        for host, port in listen_addrs:
            udp, listener = await _bind_pair(host, port, host in free_bind)
            udp_socks.append(udp)
            listeners.append(listener)
            bound.append((host, udp.getsockname()[1]))
        chosen = filter_upstreams(default_upstreams() if upstreams is None else upstreams, bound)
        server = _DnsServer(
            resolver,
            chosen,
            counters,
            timeout_s=timeout_s,
            policy=policy if policy is not None else ClientPolicy(),
            limits=limits if limits is not None else ServerLimits(),
            scopes=scopes,
        )
        log.info("dns: serving on %s, upstreams %s", bound, chosen)
        async with trio.open_nursery() as nursery:
            for sock in udp_socks:
                nursery.start_soon(server.udp_loop, sock, nursery)
            nursery.start_soon(trio.serve_listeners, server.tcp_connection, listeners)
            task_status.started(bound)
    finally:
        for sock in udp_socks:
            sock.close()
        for listener in listeners:
            listener.socket.close()


# ---- standalone entry (bench, manual testing) -------------------------------------------------


def _parse_listen(text: str) -> Address:
    host, port = parse_upstream(text)
    return host, port


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    zone_path = Path(args.zone_file)
    resolver = Resolver(ZoneData.from_dict(json.loads(zone_path.read_text())), ttl_s=args.ttl)
    counters = ServerCounters()
    if args.no_forward:
        upstreams: list[Address] | None = []
    elif args.upstream:
        upstreams = [parse_upstream(u) for u in args.upstream]
    else:
        upstreams = None
    listen = [_parse_listen(a) for a in args.listen] or [("127.0.0.1", DNS_PORT)]
    with trio.open_signal_receiver(signal.SIGHUP, signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(
                lambda task_status: serve_dns(
                    resolver,
                    listen,
                    upstreams,
                    timeout_s=args.timeout,
                    counters=counters,
                    policy=ClientPolicy(args.allow_recursion),
                    task_status=task_status,
                )
            )
            print(json.dumps({"listening": [f"{h}:{p}" for h, p in bound]}), flush=True)
            async for signum in signals:
                if signum == signal.SIGHUP:
                    try:
                        resolver.update_zone(ZoneData.from_dict(json.loads(zone_path.read_text())))
                    except Exception as exc:  # keep serving the old zone
                        log.error("dns: zone reload failed: %s", exc)
                    continue
                nursery.cancel_scope.cancel()
                break
    return {"resolver": resolver.counters.as_dict(), "server": counters.as_dict()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m p2porch.dns.server", description=__doc__)
    parser.add_argument("--zone-file", required=True, help="JSON zone (ZoneData.to_dict form)")
    parser.add_argument("--listen", action="append", default=[], help="IP[:PORT], repeatable; 127.0.0.1:53")
    parser.add_argument("--upstream", action="append", default=[], help="IP[:PORT], repeatable; resolv.conf")
    parser.add_argument("--no-forward", action="store_true", help="no upstreams: foreign names get SERVFAIL")
    parser.add_argument(
        "--allow-recursion", action="append", default=[], help="CIDR, repeatable: clients besides loopback"
    )
    parser.add_argument("--ttl", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=2.0, help="per-upstream timeout in seconds")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    result = trio.run(_main, args)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
