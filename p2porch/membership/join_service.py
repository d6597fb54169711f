"""The join port: a TCP service that runs the token handshake for joining nodes and peers (shell).

Owns the listening socket (bound to the advertise address only), length-prefixed wire framing and
counting/dropping bad connections. A verified request is either a join (one sealed reply, from the
caller's ``handle``; only on sessions keyed with the join token), a member request (``op`` in
``member_ops``, one sealed reply) or a stream (``op`` in ``streams``: sealed items, then ``end``), e.g. a
peer asking for this node's task logs. Member requests and streams are served only on sessions keyed
with the member key of the current cluster key epoch, which only members hold: a join token admits a
node, nothing more. A session keyed with an older epoch's key gets only the ``old_epoch_ops`` (a
lagging member fetching its sealed new key). The join handler is told the address the connection
comes from, so it can check what the joiner claims.
This module never touches cluster state itself.

Against strangers (docs/security.md, "Join port"): at most ``max_connections`` connections at once and
``per_source`` per peer address; an unauthenticated peer has ``auth_timeout_s`` to finish the handshake
and may send at most MAX_HELLO_FRAME / MAX_REQUEST_FRAME bytes before it is verified; refusals tell the
peer nothing about this cluster (not its id) and are logged escaped, shortened and rate limited.
"""

from __future__ import annotations

import logging
import os
import secrets
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import trio

from ..errors import AuthError, P2POrchError, WireError
from ..ratelimit import TokenBucket
from ..wire import decode_frame, encode_frame
from .handshake import NONCE_BYTES, JoinerHandshake, MemberHandshake, SessionKey, hello_epoch
from .token import JoinToken

log = logging.getLogger(__name__)

MAX_JOIN_FRAME = 256 * 1024
MAX_HELLO_FRAME = 4 * 1024
MAX_REQUEST_FRAME = 64 * 1024
MAX_CONNECTIONS = 64
MAX_CONNECTIONS_PER_SOURCE = 4
AUTH_TIMEOUT_S = 5.0
REFUSAL_LOG_RATE = 0.1  # refusal log lines per second (one per 10 s) after a burst of 5
REFUSAL_LOG_BURST = 5
LOGGED_TEXT_CHARS = 120
_LEN = struct.Struct(">I")

JoinHandler = Callable[[dict[str, Any], str], Awaitable[dict[str, Any]]]  # (request, source address)
MemberHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
MemberKeyLookup = Callable[[int], tuple[SessionKey, bool] | None]  # epoch -> (key, is current epoch)
StreamHandler = Callable[[dict[str, Any]], AbstractAsyncContextManager[AsyncIterator[Any]]]


async def send_frame(stream: trio.abc.Stream, msg_type: str, body: Any) -> None:
    frame = encode_frame(msg_type, body)
    await stream.send_all(_LEN.pack(len(frame)) + frame)


def loggable(text: str, limit: int = LOGGED_TEXT_CHARS) -> str:
    """``text`` safe for one log line: control characters, newlines and non-ASCII escaped, shortened."""
    escaped = text[:limit].encode("unicode_escape").decode("ascii")
    return escaped + (f"...({len(text) - limit} more chars)" if len(text) > limit else "")


async def receive_frame(stream: trio.abc.ReceiveStream, expected: str, limit: int = MAX_JOIN_FRAME) -> Any:
    header = await _receive_exactly(stream, _LEN.size)
    (size,) = _LEN.unpack(header)
    if size > limit:
        raise WireError(f"join frame of {size} bytes exceeds {limit}")
    msg_type, body = decode_frame(await _receive_exactly(stream, size))
    if msg_type == "error" and isinstance(body, dict):
        return body
    if msg_type != expected:
        raise WireError(f"expected a {expected!r} frame, got {msg_type!r}")
    return body


async def _receive_exactly(stream: trio.abc.ReceiveStream, size: int) -> bytes:
    buf = bytearray()
    while len(buf) < size:
        chunk = await stream.receive_some(size - len(buf))
        if not chunk:
            raise WireError("connection closed mid-frame")
        buf += chunk
    return bytes(buf)


class JoinService:
    """Serves the join handshake; ``metrics`` counts accepted, refused and garbage connections."""

    def __init__(
        self,
        get_token: Callable[[], JoinToken | None],
        handle: JoinHandler,
        *,
        streams: dict[str, StreamHandler] | None = None,
        member_ops: dict[str, MemberHandler] | None = None,
        get_member_key: MemberKeyLookup | None = None,
        old_epoch_ops: frozenset[str] = frozenset(),
        timeout_s: float = 30.0,
        auth_timeout_s: float = AUTH_TIMEOUT_S,
        max_connections: int = MAX_CONNECTIONS,
        per_source: int = MAX_CONNECTIONS_PER_SOURCE,
    ) -> None:
        self._get_token = get_token
        self._get_member_key = get_member_key or (lambda epoch: None)
        self._handle = handle
        self.streams = dict(streams or {})
        self.member_ops = dict(member_ops or {})
        self.old_epoch_ops = old_epoch_ops
        self._timeout_s = timeout_s
        self._auth_timeout_s = auth_timeout_s
        self.max_connections = max_connections
        self.per_source = per_source
        self._open: dict[str, int] = {}
        self._refusal_log = TokenBucket(REFUSAL_LOG_RATE, REFUSAL_LOG_BURST)
        self.metrics = {
            "accepted": 0,
            "refused": 0,
            "garbage": 0,
            "failed": 0,
            "streams": 0,
            "rejected_connections": 0,
            "auth_timeouts": 0,
            "refusals_not_logged": 0,
        }

    async def serve(
        self, host: str, port: int, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
    ) -> None:
        listeners = await trio.open_tcp_listeners(port, host=host)
        bound_port = listeners[0].socket.getsockname()[1]
        log.info("join service listening on %s:%d", host, bound_port)
        task_status.started(bound_port)
        await trio.serve_listeners(self._connection, listeners)

    async def _connection(self, stream: trio.SocketStream) -> None:
        source = _peer_host(stream)
        open_now = self._open.get(source, 0)
        if sum(self._open.values()) >= self.max_connections or open_now >= self.per_source:
            self.metrics["rejected_connections"] += 1
            await trio.aclose_forcefully(stream)
            return
        self._open[source] = open_now + 1
        try:
            await self._serve_connection(stream, source)
        finally:
            left = self._open[source] - 1
            if left:
                self._open[source] = left
            else:
                del self._open[source]

    async def _serve_connection(self, stream: trio.SocketStream, source: str) -> None:
        try:
            verified = None
            with trio.move_on_after(self._auth_timeout_s) as scope:
                verified = await self._verify(stream, source)
            if scope.cancelled_caught:
                self.metrics["auth_timeouts"] += 1
            if verified is None:
                return
            member, request, as_member, current_epoch = verified
            op = str(request.get("op", ""))
            if as_member and not current_epoch and op not in self.old_epoch_ops:
                await send_frame(stream, "error", {"error": "your cluster key epoch is not current"})
                return
            stream_handler = self.streams.get(op) if as_member else None
            if stream_handler is not None:
                await self._stream(stream, member, stream_handler, request)
                return
            handler = self.member_ops.get(op) if as_member else self._join_from(source)
            with trio.move_on_after(self._timeout_s) as handling:
                if handler is None:
                    await send_frame(stream, "error", {"error": f"unknown member request {op!r}"})
                else:
                    await self._reply(stream, member, handler, request)
            if handling.cancelled_caught:  # say so, rather than close the connection without a word
                self.metrics["failed"] += 1
                busy = f"this member did not finish the request within {self._timeout_s:.0f} s (it is busy)"
                with trio.move_on_after(1.0):
                    await send_frame(
                        stream, "error", {"error": busy + ("" if as_member else "; run the same join again")}
                    )
        except (WireError, trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self.metrics["garbage"] += 1
            log.debug("dropped bad join connection: %s", exc)
        except Exception as exc:  # e.g. a stream's peer went away inside a nursery: never take the port down
            self.metrics["failed"] += 1
            log.debug("join connection ended with %r", exc)
        finally:
            await stream.aclose()

    def _join_from(self, source: str) -> MemberHandler:
        """The join handler, told which address the connection comes from."""

        async def join(request: dict[str, Any]) -> dict[str, Any]:
            return await self._handle(request, source)

        return join

    async def _verify(
        self, stream: trio.SocketStream, source: str
    ) -> tuple[MemberHandshake, dict[str, Any], bool, bool] | None:
        """Run the handshake; returns the verified request, whether it came keyed as a member's and
        whether with the current key epoch, or None after telling the peer why not (without naming
        this node's cluster)."""
        hello = await receive_frame(stream, "hello", MAX_HELLO_FRAME)
        as_member = isinstance(hello, dict) and hello.get("as") == "member"
        current_epoch = True
        token: SessionKey | None
        if as_member:
            found = self._get_member_key(hello_epoch(hello))
            token, current_epoch = found if found is not None else (None, False)
        else:
            token = self._get_token()
        if token is None:
            error = "unknown cluster key epoch" if as_member else "this node is not part of a cluster yet"
            await send_frame(stream, "error", {"error": error})
            return None
        member = MemberHandshake(token, secrets.token_bytes(NONCE_BYTES), secrets.token_bytes(12))
        try:
            try:
                challenge = member.on_hello(hello)
            except AuthError as exc:
                other = isinstance(hello, dict) and isinstance(hello.get("cluster_id"), str)
                told = "the token is for another cluster" if other else "malformed join hello"
                raise _Refusal(told, exc.message) from exc
            await send_frame(stream, "challenge", challenge)
            try:
                request = member.on_request(await receive_frame(stream, "request", MAX_REQUEST_FRAME))
            except AuthError as exc:
                raise _Refusal("wrong join token", exc.message) from exc
        except _Refusal as refusal:
            self.metrics["refused"] += 1
            self._log_refusal(source, refusal.reason)
            await send_frame(stream, "error", {"error": refusal.told})
            return None
        return member, request, as_member, current_epoch

    def _log_refusal(self, source: str, reason: str) -> None:
        if not self._refusal_log.take(trio.current_time()):
            self.metrics["refusals_not_logged"] += 1
            return
        skipped = self.metrics["refusals_not_logged"]
        log.warning(
            "refused a join attempt from %s: %s%s",
            loggable(source, 64),
            loggable(reason),
            f" ({skipped} refusals not logged so far)" if skipped else "",
        )

    async def _reply(
        self,
        stream: trio.SocketStream,
        member: MemberHandshake,
        handler: MemberHandler,
        request: dict[str, Any],
    ) -> None:
        try:
            reply = await handler(request)
        except P2POrchError as exc:
            self.metrics["failed"] += 1
            await send_frame(stream, "error", {"error": exc.message})
            return
        await send_frame(stream, "reply", member.seal_reply(reply))
        self.metrics["accepted"] += 1

    async def _stream(
        self,
        stream: trio.SocketStream,
        member: MemberHandshake,
        handler: StreamHandler,
        request: dict[str, Any],
    ) -> None:
        self.metrics["streams"] += 1
        try:
            async with handler(request) as items:
                async for item in items:
                    await send_frame(stream, "item", member.seal_item(item))
        except P2POrchError as exc:
            await send_frame(stream, "error", {"error": exc.message})
            return
        await send_frame(stream, "end", {})


class _Refusal(Exception):
    """A refused handshake: ``told`` goes to the peer, ``reason`` (attacker text inside) to the log."""

    def __init__(self, told: str, reason: str) -> None:
        super().__init__(told)
        self.told = told
        self.reason = reason


def split_target(host: str, port: int) -> tuple[str, int]:
    """``host`` may carry its own port (``ip:port``: a member behind a NAT's port forward, see
    ``Node.join_target``); else ``port``."""
    name, sep, own = host.rpartition(":")
    if sep and own.isascii() and own.isdigit() and len(own) <= 5 and name and ":" not in name:
        return name, int(own)
    return host, port


def _peer_host(stream: trio.SocketStream) -> str:
    try:
        return str(stream.socket.getpeername()[0])
    except (OSError, IndexError):
        return "?"


def connect_failure(exc: OSError) -> str:
    """Why connecting failed, as the system said it (``Connection refused``, ``No route to host``): trio's
    ``open_tcp_stream`` raises ``all attempts to connect to H:P failed`` with the real errors as its cause."""
    cause = exc.__cause__
    errors = cause.exceptions if isinstance(cause, BaseExceptionGroup) else (exc,)
    reasons = dict.fromkeys(
        os.strerror(e.errno) if e.errno and e.errno > 0 else e.strerror or str(e)  # < 0: a resolver error
        for e in errors
        if isinstance(e, OSError)
    )
    return "; ".join(reasons) or str(exc)


async def request_join(
    host: str,
    port: int,
    token: SessionKey,
    request: dict[str, Any],
    *,
    timeout_s: float = 30.0,
    member: bool = False,
) -> dict[str, Any]:
    """Run the joiner's side against ``host:port`` (``host`` may be ``ip:port``, see ``split_target``);
    returns the member's decrypted reply.

    ``member``: the request is a member's own (``op`` in the peer's ``member_ops``), keyed with the
    cluster keys ``token``."""
    host, port = split_target(host, port)
    joiner = JoinerHandshake(token, secrets.token_bytes(NONCE_BYTES), secrets.token_bytes(12), member=member)
    try:
        with trio.fail_after(timeout_s):
            stream = await trio.open_tcp_stream(host, port)
            async with stream:
                await send_frame(stream, "hello", joiner.hello())
                challenge = await receive_frame(stream, "challenge")
                await send_frame(stream, "request", joiner.on_challenge(challenge, request))
                return joiner.open_reply(await receive_frame(stream, "reply"))
    except trio.TooSlowError as exc:
        raise P2POrchError(
            f"join: {host}:{port} did not answer within {timeout_s:.0f} s", field="PEER"
        ) from exc
    except OSError as exc:
        raise P2POrchError(
            f"join: cannot connect to {host}:{port} ({connect_failure(exc)}): is p2porch running there, "
            "in a cluster, with that join port (7948 unless set)?",
            field="PEER",
        ) from exc
    except (WireError, trio.BrokenResourceError) as exc:
        raise P2POrchError(f"join: {host}:{port} is not a p2porch join port ({exc})", field="PEER") from exc


async def request_stream(
    host: str, port: int, token: SessionKey, request: dict[str, Any], *, timeout_s: float = 30.0
) -> AsyncIterator[Any]:
    """Run the handshake against ``host:port`` with a streaming ``request`` (a member's: ``token`` is
    the cluster keys); yields the peer's items."""
    host, port = split_target(host, port)
    joiner = JoinerHandshake(token, secrets.token_bytes(NONCE_BYTES), secrets.token_bytes(12), member=True)
    try:
        with trio.fail_after(timeout_s):
            stream = await trio.open_tcp_stream(host, port)
            await send_frame(stream, "hello", joiner.hello())
            challenge = await receive_frame(stream, "challenge")
            await send_frame(stream, "request", joiner.on_challenge(challenge, request))
    except trio.TooSlowError as exc:
        raise P2POrchError(f"{host}:{port} did not answer within {timeout_s:.0f} s") from exc
    except OSError as exc:
        raise P2POrchError(f"cannot connect to {host}:{port}: {connect_failure(exc)}") from exc
    async with stream:
        while True:
            header = await _receive_exactly(stream, _LEN.size)
            (size,) = _LEN.unpack(header)
            if size > MAX_JOIN_FRAME:
                raise WireError(f"frame of {size} bytes exceeds {MAX_JOIN_FRAME}")
            msg_type, body = decode_frame(await _receive_exactly(stream, size))
            if msg_type == "end":
                return
            if msg_type == "error":
                raise P2POrchError(f"{host}:{port}: {body.get('error') if isinstance(body, dict) else body}")
            if msg_type != "item":
                raise WireError(f"unexpected {msg_type!r} frame in a stream")
            yield joiner.open_item(body)
