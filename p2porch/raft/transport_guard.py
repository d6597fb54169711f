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
  oldest is closed for a new one), and each must finish the handshake within ``connectionTimeout``;
- a connection from a read-only replica times out after ``replica_timeout_s`` (longer than the voters'
  ``connectionTimeout``: an idle replica hears from the leader only every few seconds, heartbeats.py).

With a password (always, in p2porch) frames are sealed by ``frames.py`` (AES-256-GCM per connection
and direction, counter nonces) instead of pysyncobj's Fernet; every refused frame is counted in
:class:`GuardStats` by reason and closes its connection, as pysyncobj does with a frame it cannot read.
pysyncobj still asks for its Fernet encryptor when a store opens (a PBKDF2 of 100,000 rounds, ~15-30 ms
of CPU on a joiner's critical path) and only tests it for truth (``if encryptor``: draw connection
keys); :func:`install_frames_only` hands it :class:`FramesOnly`, which derives nothing and refuses to
seal or open anything, so no frame can ever go out or come in with pysyncobj's own framing.

With ``cork`` on (:data:`CORK_FRAMES`, the default), outgoing frames are *corked*: a
sealed frame goes to the connection's cork, not to its socket, and the transport writes every corked
connection's frames with one ``send`` each (:meth:`GuardedTCPTransport.flush`) when the Raft thread
is about to wait in its poll (the transport's tick callback, and ``durable_commit`` again just before
the poll, whichever callback sent) and right after the poll (``durable_commit``: the answers its
handlers sent). A leader adding several entries in one tick (one append round per entry, to every
follower) made one ``send`` per follower per message;
each ``send`` on loopback also runs the receiver's TCP path. The frames, their order and their sealing
are unchanged, and none waits past the end of the tick that sent it. A (re)connect drops the cork
with the session it was sealed for; ``getSendBufferSize`` (flow control's bytes queued for a
follower) counts the cork with what the socket refused, so a drain of many entries in one tick
is bounded per follower as before. A flush the socket cannot take whole subscribes the connection to
WRITE events, so the poller writes the rest as the socket drains: pysyncobj re-arms WRITE only after a
WRITE event, and a corked backlog (a snapshot's chunks) then moved one socket buffer per flush, which
made a new replica's 8.4 MB catch-up outlast its connection's timeout and restart, again and again
(docs/performance.md, "The eleventh round"). ``set_cork(False)`` sends each frame at once (benchmarks).

A peer that drains a backlog is alive: pysyncobj drops a connection it has read nothing from for
``connectionTimeout``, and a follower installing a snapshot sends nothing until the last chunk, so a
transfer slower than that (a large snapshot, a loaded machine) was cut and restarted from its first
chunk. When the socket takes bytes after refusing some (its send buffer was full: the space came from
the peer's acknowledgements, so the peer is reading), the connection's read deadline starts again. A
dead peer never acknowledges and a hung one stops once its receive buffer is full, so both still time
out, later by at most the time to fill that buffer (only while a backlog is queued).

Works by subclassing pysyncobj's transport and switching the class of its connection objects; it
relies on private names of exactly pysyncobj 0.3.17 (pinned in pyproject.toml; checked on import).
"""

from __future__ import annotations

import errno
import functools
import logging
import struct
import threading
from dataclasses import dataclass, field
from typing import Any

import pysyncobj.syncobj as _pso
import pysyncobj.version
from pysyncobj import pickle as pso_pickle
from pysyncobj.monotonic import monotonic
from pysyncobj.poller import POLL_EVENT_TYPE
from pysyncobj.tcp_connection import TcpConnection
from pysyncobj.transport import TCPTransport

from ..errors import RaftError
from .fanout import AppendFanout
from .frames import REASON_OLD_FRAMING, FrameChannel, FrameError, cluster_key, inflate_bounded
from .outside_config import OutsideConfiguration

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
_READ_WRITE_ERROR = POLL_EVENT_TYPE.READ | POLL_EVENT_TYPE.WRITE | POLL_EVENT_TYPE.ERROR
CORK_FRAMES = True  # see the module docstring
OLD_FRAMING_LOG_EVERY_S = 60.0
REASON_UNDECODABLE = "undecodable"  # authenticated, but not a pickle pysyncobj can read
REASON_WRONG_CONNECTION_KEY = "wrong_connection_key"  # a hello answering another connection (a replay)

log = logging.getLogger(__name__)


class _ReceiveScratch(threading.local):
    """One reusable receive buffer per thread (the Raft thread's connections read one at a time).

    ``sock.recv(65536)`` made CPython allocate a 64 KiB ``bytes`` for every message and shrink it to
    the message's size: on an idle leader (every follower's answers, every round) that churn left
    free holes in glibc's heap that ``malloc_trim`` could not hand back (docs/performance.md, "The
    idle leader's heap"). ``recv_into`` this buffer allocates nothing per message."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def view(self, size: int) -> memoryview:
        if len(self.buffer) < size:
            self.buffer = bytearray(size)
        return memoryview(self.buffer)[:size]


_scratch = _ReceiveScratch()


class FramesOnly:
    """pysyncobj's encryptor slot when ``frames.py`` seals every frame: true (pysyncobj then exchanges
    connection keys) but never derives a key and refuses any Fernet use."""

    def __bool__(self) -> bool:
        return True

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise RaftError("pysyncobj's Fernet is not used: frames.py seals the Raft port")

    encrypt = encrypt_at_time = decrypt = decrypt_at_time = extract_timestamp = _refuse


def install_frames_only() -> None:
    """Make ``SyncObj`` take :class:`FramesOnly` for its password (idempotent, process-wide)."""
    _pso.getEncryptor = _frames_only


def _frames_only(password: str | bytes) -> FramesOnly:
    return FramesOnly()


@dataclass
class GuardStats:
    """Counters of what the guard refused (Raft thread writes, anyone reads)."""

    oversized_frames: int = 0
    bad_frames: int = 0  # every refused frame; by reason (frames.REASON_*, "undecodable") in ``refused``
    evicted_unauthenticated: int = 0
    handshake_timeouts: int = 0
    unsent_before_session: int = 0  # messages pysyncobj sent mid-handshake (a vote): dropped, not framed
    refused: dict[str, int] = field(default_factory=dict)
    last_old_framing_log: float = -OLD_FRAMING_LOG_EVERY_S

    def refuse(self, reason: str) -> None:
        self.bad_frames += 1
        self.refused[reason] = self.refused.get(reason, 0) + 1


class GuardedTcpConnection(TcpConnection):
    """A pysyncobj connection with a bounded, linear read path and frames sealed by ``frames.py``. Never
    built directly: see ``guard``."""

    _TcpConnection__readBuffer: Any
    _TcpConnection__writeBuffer: bytes | bytearray
    _TcpConnection__socket: Any
    _TcpConnection__fileno: int | None
    _TcpConnection__poller: Any
    sendRandKey: bytes | None
    recvRandKey: bytes | None
    authenticated: bool
    accepted_at: float
    stats: GuardStats
    frame_key: bytes | None  # frames.cluster_key of the password; None: no password, pysyncobj's framing
    channel: FrameChannel | None
    fanout: AppendFanout | None  # the transport's, set right after ``guard``
    corked: bytearray  # sealed, length-prefixed frames not yet handed to the socket (module docstring)
    send_refused: bool  # the socket's send buffer was full at the last send (module docstring)
    unflushed: set[GuardedTcpConnection] | None  # the transport's connections with a cork; None: no cork

    @classmethod
    def guard(cls, conn: TcpConnection, stats: GuardStats, frame_key: bytes | None) -> GuardedTcpConnection:
        conn.__class__ = cls
        guarded: GuardedTcpConnection = conn
        guarded.stats = stats
        guarded.frame_key = frame_key
        guarded.unflushed = None
        guarded._reset()
        return guarded

    def _reset(self) -> None:
        self.corked = bytearray()  # frames sealed for the session that ends here: never sent on another
        self.send_refused = False
        self.authenticated = False
        self.accepted_at = monotonic()
        self.channel = None if self.frame_key is None else FrameChannel(self.frame_key)

    def connect(self, host: str, port: int) -> bool:
        self._reset()
        return bool(super().connect(host, port))

    def disconnect(self) -> None:
        self._reset()
        super().disconnect()

    def send(self, message: Any) -> None:
        channel = self.channel
        if channel is None:
            super().send(message)
            return
        if channel.needs_hello():  # the handshake: pysyncobj's (key, message) pair as it would send it
            payload = message if not self.sendRandKey else (self.sendRandKey, message)
        elif self._start_session(channel):
            payload = message  # the session key binds the frame to this connection: no key inside
        else:  # pysyncobj sends votes to any connected socket, even mid-handshake; Raft copes with a loss
            self.stats.unsent_before_session += 1
            return
        fanout = getattr(self, "fanout", None)  # the transport's (raft/fanout.py): one encoding per round
        if payload is message and fanout is not None:
            frame = channel.seal_packed(*fanout.packed(payload))
        else:
            frame = channel.seal(pso_pickle.dumps(payload))
        unflushed = self.unflushed
        if unflushed is None:  # not corked: to the socket at once (pysyncobj's way)
            out = self._out()
            out += struct.pack("i", len(frame))
            out += frame
            self._TcpConnection__trySendBuffer()
            return
        corked = self.corked
        if not corked:
            unflushed.add(self)
        corked += struct.pack("i", len(frame))
        corked += frame

    def getSendBufferSize(self) -> int:  # noqa: N802 (pysyncobj's)
        """Bytes queued in user space for this peer: what the socket refused and the cork (flow.py)."""
        return len(self._TcpConnection__writeBuffer) + len(self.corked)

    def refused_bytes(self) -> int:
        """Bytes the socket refused, queued behind the cork's (a backlog: the cork goes out this tick)."""
        return len(self._TcpConnection__writeBuffer)

    def flush(self) -> None:
        """Hand the corked frames to the socket, behind whatever it refused before (one ``send``)."""
        corked = self.corked
        if not corked:
            return
        self.corked = bytearray()
        buf = self._TcpConnection__writeBuffer
        if buf:
            self._out().extend(corked)
        else:
            self._TcpConnection__writeBuffer = corked
        self._TcpConnection__trySendBuffer()
        fileno = self._TcpConnection__fileno
        if self._TcpConnection__writeBuffer and fileno is not None:
            # the socket is full: the poller writes the rest as it drains (pysyncobj subscribes to
            # WRITE only after a WRITE event, so a backlog otherwise waits for the next send or flush:
            # one socket buffer per tick, which made a large snapshot's transfer outlast the timeout)
            self._TcpConnection__poller.subscribe(
                fileno, self._TcpConnection__processConnection, _READ_WRITE_ERROR
            )

    def _out(self) -> bytearray:
        """The write buffer as a ``bytearray``: pysyncobj's ``bytes`` (reset on every (dis)connect) was
        copied whole on every append and after every partial ``send`` (quadratic in a backlog)."""
        buf = self._TcpConnection__writeBuffer
        if not isinstance(buf, bytearray):
            buf = bytearray(buf)
            self._TcpConnection__writeBuffer = buf
        return buf

    def _TcpConnection__processSend(self) -> bool:  # noqa: N802 (pysyncobj's, same behaviour)
        """Send what the socket takes; True when some was sent (pysyncobj sends again until False).
        ``del buf[:n]`` drops the sent head without copying the rest (CPython moves the start). Bytes
        taken after the socket refused some restart the read deadline (module docstring)."""
        buf = self._TcpConnection__writeBuffer
        if not buf:
            return False
        try:
            sent = self._TcpConnection__socket.send(buf)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                self.disconnect()
            else:
                self.send_refused = True
            return False
        if sent < 0:
            self.disconnect()
            return False
        if sent == 0:
            return False
        if self.send_refused:  # the peer acknowledged what filled the buffer: it reads
            self._TcpConnection__lastReadTime = monotonic()
        self.send_refused = sent < len(buf)
        if isinstance(buf, bytearray):
            del buf[:sent]
        else:
            self._TcpConnection__writeBuffer = buf[sent:]
        return True

    def _start_session(self, channel: FrameChannel) -> bool:
        if not channel.in_session and self.sendRandKey and self.recvRandKey:
            channel.start_session(own_key=self.recvRandKey, peer_key=self.sendRandKey)
        return channel.in_session

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
        """Read one chunk; True when more may be waiting. A short read means the socket was empty a
        moment ago: stop there (the poller is level-triggered and reports whatever arrives next), which
        saves an idle peer's every message a second ``recv`` failing with EAGAIN."""
        sock = self._TcpConnection__socket
        size = self._TcpConnection__recvBufferSize
        with _scratch.view(size) as scratch:
            try:
                count = sock.recv_into(scratch, size)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                    self.disconnect()
                return False
            if not count:  # closed by the peer (a socket error surfaces as the next recv's exception)
                self.disconnect()
                return False
            self._buffer().extend(scratch[:count])
        return count == size

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
        except FrameError as exc:  # refused: drop the connection, as pysyncobj does
            self._refused(exc)
            return None
        except Exception:  # authenticated (or no password) but unreadable
            self.stats.refuse(REASON_UNDECODABLE)
            self.disconnect()
            return None
        del buf[: 4 + length]
        return message

    def _refused(self, exc: FrameError) -> None:
        self.stats.refuse(exc.reason)
        if exc.reason == REASON_OLD_FRAMING:
            now = monotonic()
            if now - self.stats.last_old_framing_log >= OLD_FRAMING_LOG_EVERY_S:
                self.stats.last_old_framing_log = now
                log.warning("raft: refused a peer's frame: %s", exc)
        log.debug("raft: refused a frame (%s): %s", exc.reason, exc)
        self.disconnect()

    def _decode(self, data: bytes) -> Any:
        channel = self.channel
        if channel is None:  # no password: pysyncobj's plain framing
            return self._decode_plain(data)
        if channel.received:
            self._start_session(channel)
        plain = channel.open(data, MAX_MESSAGE)
        message = pso_pickle.loads(plain)
        if channel.received > 1:  # a session frame: only the two ends of this handshake hold its key
            self.authenticated = True
        elif self.recvRandKey:  # the peer's hello answers ours: it must carry the key we drew
            rand_key, message = message
            if rand_key != self.recvRandKey:
                raise FrameError(REASON_WRONG_CONNECTION_KEY, "the hello carries another connection's key")
            self.authenticated = True
        return message

    def _decode_plain(self, data: bytes) -> Any:
        plain = inflate_bounded(data, MAX_MESSAGE)  # pysyncobj's plain framing always compresses
        self.authenticated = True
        return pso_pickle.loads(plain)


def _peer_host(conn: TcpConnection) -> str:
    """The address a connection comes from ("" once its socket is gone)."""
    sock = conn._TcpConnection__socket
    try:
        return str(sock.getpeername()[0]) if sock is not None else ""
    except OSError:
        return ""


class GuardedTCPTransport(OutsideConfiguration, TCPTransport):
    """pysyncobj's TCP transport with every connection guarded and unauthenticated ones capped (and
    Raft traffic with voters outside the configuration: ``outside_config.py``)."""

    def __init__(self, syncObj: Any, selfNode: Any, otherNodes: Any) -> None:  # noqa: N803
        self.guard_stats = GuardStats()
        password = syncObj.conf.password
        self.frame_key = cluster_key(password) if password and syncObj.encryptor else None
        self.fanout = AppendFanout()  # outgoing appends: see raft/fanout.py
        # connections with corked frames (module docstring); ``cork = False`` sends each frame at once
        self.unflushed: set[GuardedTcpConnection] = set()
        self.cork = CORK_FRAMES
        self.messages = 0  # messages given to send (the flow log line: messages per socket write)
        self.flushes = 0  # corked connections written
        # a replica's connection on a voter (bridge.py sets it from heartbeats.replica_connection_timeout_s)
        self.replica_timeout_s = float(
            getattr(syncObj, "replica_connection_timeout_s", None) or syncObj.conf.connectionTimeout
        )
        #: a connected read-only replica's pysyncobj id (a counter: "0", "1", ...) -> the host its
        #: connection comes from, the one thing that tells which node it is (``lag.peer_matches``)
        self.replica_hosts: dict[str, str] = {}
        super().__init__(syncObj, selfNode, otherNodes)

    def _onReadonlyNodeConnected(self, node: Any) -> None:  # noqa: N802
        """A read-only replica identified itself: its connection hears from this node (as leader) once per
        idle replica heartbeat, so it times out after the replica's longer timeout, not the voters'
        (heartbeats.replica_connection_timeout_s; the replica sets the same on its end)."""
        conn = self._connections.get(node)
        if conn is not None:
            conn._TcpConnection__timeout = self.replica_timeout_s
            self.replica_hosts[node.id] = _peer_host(conn)
        super()._onReadonlyNodeConnected(node)

    def _onReadonlyNodeDisconnected(self, node: Any) -> None:  # noqa: N802
        self.replica_hosts.pop(node.id, None)
        super()._onReadonlyNodeDisconnected(node)

    def addNode(self, node: Any) -> None:  # noqa: N802
        super().addNode(node)
        conn = self._connections.get(node)
        if conn is not None and not isinstance(conn, GuardedTcpConnection):
            self._adopt(GuardedTcpConnection.guard(conn, self.guard_stats, self.frame_key))

    def _outgoing_connection(self, node: Any) -> GuardedTcpConnection:
        """A guarded connection to dial ``node`` as pysyncobj's ``addNode`` builds one (not yet
        connected; the caller files it under ``node``)."""
        conf = self._syncObj.conf
        conn = TcpConnection(
            poller=self._syncObj._poller,
            timeout=conf.connectionTimeout,
            sendBufferSize=conf.sendBufferSize,
            recvBufferSize=conf.recvBufferSize,
            keepalive=conf.tcp_keepalive,
        )
        conn.encryptor = self._syncObj.encryptor
        guarded = GuardedTcpConnection.guard(conn, self.guard_stats, self.frame_key)
        self._adopt(guarded)
        guarded.setOnConnectedCallback(functools.partial(self._onOutgoingConnected, guarded))
        guarded.setOnMessageReceivedCallback(functools.partial(self._onMessageReceived, node))
        guarded.setOnDisconnectedCallback(functools.partial(self._onDisconnected, guarded))
        return guarded

    def _adopt(self, conn: GuardedTcpConnection) -> None:
        conn.fanout = self.fanout
        conn.unflushed = self.unflushed if self.cork else None

    def set_cork(self, on: bool) -> None:
        """Cork every connection's frames from now on, or send each at once (on the Raft thread)."""
        self.flush()
        self.cork = on
        for conn in [*self._connections.values(), *self._unknownConnections]:
            if isinstance(conn, GuardedTcpConnection):
                self._adopt(conn)

    def flush(self) -> None:
        """Write every connection's corked frames (Raft thread: before and after its poll)."""
        unflushed = self.unflushed
        while unflushed:
            unflushed.pop().flush()
            self.flushes += 1

    def send(self, node: Any, message: Any) -> bool:
        self.messages += 1
        return bool(super().send(node, message))

    def take_send_counts(self) -> str:
        """``messages in writes`` since the last call (the leader's flow log line), then reset."""
        text = f"{self.messages} messages in {self.flushes} corked writes"
        self.messages = self.flushes = 0
        return text

    def destroy(self) -> None:
        self.flush()
        super().destroy()

    def _onNewIncomingConnection(self, conn: TcpConnection) -> None:  # noqa: N802
        guarded = GuardedTcpConnection.guard(conn, self.guard_stats, self.frame_key)
        self._adopt(guarded)
        while len(self._unknownConnections) >= MAX_UNAUTHENTICATED:
            oldest = min(self._unknownConnections, key=lambda c: c.accepted_at)
            self.guard_stats.evicted_unauthenticated += 1
            self._unknownConnections.discard(oldest)
            oldest.disconnect()
        super()._onNewIncomingConnection(guarded)

    def _onTick(self) -> None:  # noqa: N802
        """pysyncobj's (bind, connect), handshake timeouts, then the tick's corked frames (the bridge's
        tick flushes once more just before its poll, after every tick callback)."""
        super()._onTick()
        if self._unknownConnections:
            deadline = monotonic() - self._syncObj.conf.connectionTimeout
            for conn in [c for c in self._unknownConnections if c.accepted_at < deadline]:
                self.guard_stats.handshake_timeouts += 1
                self._unknownConnections.discard(conn)
                conn.disconnect()
        self.flush()
