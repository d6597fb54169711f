"""Bounds on what a peer that has not authenticated can make the Raft thread hold or compute (shell).

pysyncobj 0.3.17's ``TcpConnection`` appends every received chunk to a ``bytes`` buffer (quadratic
copying), reads until the socket is empty before returning to its poller, accepts any frame length
up to 2 GiB before it knows who is talking, and its server accepts any number of connections that
never authenticate. One stranger sending 32 MiB pinned the Raft thread for ~15 s (election timeout
0.5-1.2 s). :class:`GuardedTCPTransport` (passed to ``SyncObj`` as ``transportClass``) fixes that:

- a connection counts as authenticated once a frame carrying the random key it sent has been
  decrypted (the peer knows the password and is not replaying an old connection); before that a
  frame may be at most :data:`PRE_AUTH_MAX_FRAME` bytes, after it :data:`MAX_FRAME`; a longer length
  prefix closes the connection at once;
- received bytes go to a ``bytearray``; one poll event reads at most :data:`READ_BUDGET` bytes
  (:data:`PRE_AUTH_READ_BUDGET` before authentication), so no peer monopolises the thread;
- a decrypted frame may not inflate past :data:`MAX_MESSAGE` bytes (zlib bomb);
- at most :data:`MAX_UNAUTHENTICATED` incoming connections may be unauthenticated at a time (the
  oldest is closed for a new one), and each must finish the handshake within ``connectionTimeout``.

Works by subclassing pysyncobj's transport and switching the class of its connection objects; it
relies on private names of exactly pysyncobj 0.3.17 (pinned in pyproject.toml; checked on import).
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import pysyncobj.version
from pysyncobj import pickle as pso_pickle
from pysyncobj.monotonic import monotonic
from pysyncobj.tcp_connection import TcpConnection
from pysyncobj.transport import TCPTransport

from ..errors import RaftError

PINNED_PYSYNCOBJ = "0.3.17"
if pysyncobj.version.VERSION != PINNED_PYSYNCOBJ:  # pragma: no cover (import-time guard)
    raise RaftError(
        f"p2porch patches pysyncobj {PINNED_PYSYNCOBJ} internals; found {pysyncobj.version.VERSION}"
    )

PRE_AUTH_MAX_FRAME = 4096
MAX_FRAME = 64 * 1024 * 1024
MAX_MESSAGE = 96 * 1024 * 1024
READ_BUDGET = 1024 * 1024
PRE_AUTH_READ_BUDGET = 16 * 1024
MAX_UNAUTHENTICATED = 32

log = logging.getLogger(__name__)


@dataclass
class GuardStats:
    """Counters of what the guard refused (Raft thread writes, anyone reads)."""

    oversized_frames: int = 0
    bad_frames: int = 0
    evicted_unauthenticated: int = 0
    handshake_timeouts: int = 0


class GuardedTcpConnection(TcpConnection):
    """A pysyncobj connection with a bounded, linear read path. Never built directly: see ``guard``."""

    _TcpConnection__readBuffer: Any
    recvLastTimestamp: int
    authenticated: bool
    accepted_at: float
    stats: GuardStats

    @classmethod
    def guard(cls, conn: TcpConnection, stats: GuardStats) -> GuardedTcpConnection:
        conn.__class__ = cls
        guarded: GuardedTcpConnection = conn
        guarded.authenticated = False
        guarded.accepted_at = monotonic()
        guarded.stats = stats
        return guarded

    def connect(self, host: str, port: int) -> bool:
        self.authenticated = False
        self.accepted_at = monotonic()
        return bool(super().connect(host, port))

    def disconnect(self) -> None:
        self.authenticated = False
        super().disconnect()

    def _buffer(self) -> bytearray:
        buf = self._TcpConnection__readBuffer
        if not isinstance(buf, bytearray):  # pysyncobj resets it to bytes() on (dis)connect
            buf = bytearray(buf)
            self._TcpConnection__readBuffer = buf
        return buf

    def _TcpConnection__tryReadBuffer(self) -> None:  # noqa: N802 (pysyncobj's mangled name)
        budget = READ_BUDGET if self.authenticated else PRE_AUTH_READ_BUDGET
        start = len(self._buffer())
        while len(self._buffer()) - start < budget and self._TcpConnection__processRead():
            pass
        self._TcpConnection__lastReadTime = monotonic()

    def _TcpConnection__processRead(self) -> bool:  # noqa: N802
        sock = self._TcpConnection__socket
        try:
            incoming = sock.recv(self._TcpConnection__recvBufferSize)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                self.disconnect()
            return False
        if not incoming or sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            self.disconnect()
            return False
        self._buffer().extend(incoming)
        return True

    def _TcpConnection__processParseMessage(self) -> Any:  # noqa: N802
        buf = self._buffer()
        if len(buf) < 4:
            return None
        (length,) = struct.unpack_from("i", buf, 0)
        limit = MAX_FRAME if self.authenticated else PRE_AUTH_MAX_FRAME
        if not 0 < length <= limit:
            self.stats.oversized_frames += 1
            log.debug("raft: closing a connection that announced a %d-byte frame (limit %d)", length, limit)
            self.disconnect()
            return None
        if len(buf) - 4 < length:
            return None
        data = bytes(buf[4 : 4 + length])
        try:
            message = self._decode(data)
        except Exception:  # any undecodable frame: drop the connection, as pysyncobj does
            self.stats.bad_frames += 1
            self.disconnect()
            return None
        del buf[: 4 + length]
        return message

    def _decode(self, data: bytes) -> Any:
        if self.encryptor:
            stamp = self.encryptor.extract_timestamp(data)
            if stamp < self.recvLastTimestamp:
                raise ValueError("frame older than the previous one")
            self.recvLastTimestamp = stamp
            data = self.encryptor.decrypt(data)
        inflater = zlib.decompressobj()
        plain = inflater.decompress(data, MAX_MESSAGE)
        if inflater.unconsumed_tail:
            raise ValueError("frame inflates past the message limit")
        message = pso_pickle.loads(plain)
        if self.recvRandKey:
            rand_key, message = message
            if rand_key != self.recvRandKey:
                raise ValueError("wrong connection key")
            self.authenticated = True
        elif not self.encryptor:
            self.authenticated = True
        return message


class GuardedTCPTransport(TCPTransport):
    """pysyncobj's TCP transport with every connection guarded and unauthenticated ones capped."""

    def __init__(self, syncObj: Any, selfNode: Any, otherNodes: Any) -> None:  # noqa: N803
        self.guard_stats = GuardStats()
        super().__init__(syncObj, selfNode, otherNodes)

    def addNode(self, node: Any) -> None:  # noqa: N802
        super().addNode(node)
        conn = self._connections.get(node)
        if conn is not None and not isinstance(conn, GuardedTcpConnection):
            GuardedTcpConnection.guard(conn, self.guard_stats)

    def _onNewIncomingConnection(self, conn: TcpConnection) -> None:  # noqa: N802
        guarded = GuardedTcpConnection.guard(conn, self.guard_stats)
        while len(self._unknownConnections) >= MAX_UNAUTHENTICATED:
            oldest = min(self._unknownConnections, key=lambda c: c.accepted_at)
            self.guard_stats.evicted_unauthenticated += 1
            self._unknownConnections.discard(oldest)
            oldest.disconnect()
        super()._onNewIncomingConnection(guarded)

    def _onTick(self) -> None:  # noqa: N802
        super()._onTick()
        if not self._unknownConnections:
            return
        deadline = monotonic() - self._syncObj.conf.connectionTimeout
        for conn in [c for c in self._unknownConnections if c.accepted_at < deadline]:
            self.guard_stats.handshake_timeouts += 1
            self._unknownConnections.discard(conn)
            conn.disconnect()
