"""pysyncobj's real TCP transport with our guard on loopback: two nodes handshake and talk in sealed frames
(frames.py), and every bad frame a stranger sends is counted by reason and closes its connection."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pysyncobj import SyncObjConf, tcp_connection
from pysyncobj import pickle as pso_pickle
from pysyncobj.encryptor import getEncryptor
from pysyncobj.node import TCPNode
from pysyncobj.poller import createPoller

from p2porch.errors import RaftError
from p2porch.raft import frames as F
from p2porch.raft import transport_guard
from p2porch.raft.transport_guard import FramesOnly, GuardedTcpConnection, GuardedTCPTransport
from p2porch.testing.raftprocs import free_ports

PASSWORD = "p2porch-frames-test"


class Host:
    """The part of a SyncObj a transport uses: its conf, poller, encryptor and tick callbacks."""

    def __init__(self, password: str, encryptor: Any = None, connection_timeout_s: float = 3.0) -> None:
        self.conf = SyncObjConf(
            password=password, connectionTimeout=connection_timeout_s, connectionRetryTime=0.05
        )
        self._poller = createPoller("auto")
        self.encryptor = encryptor if encryptor is not None else getEncryptor(password)
        self.ticks: list[Callable[[], None]] = []
        self.received: list[tuple[Any, Any]] = []
        self.connected: list[Any] = []

    def addOnTickCallback(self, callback: Callable[[], None]) -> None:  # noqa: N802 (pysyncobj's name)
        self.ticks.append(callback)

    def tick(self) -> None:
        for callback in self.ticks:
            callback()
        self._poller.poll(0.005)


def make(host: Host, me: TCPNode, other: TCPNode) -> GuardedTCPTransport:
    transport = GuardedTCPTransport(host, me, [other])
    transport.setOnMessageReceivedCallback(lambda node, message: host.received.append((node, message)))
    transport.setOnNodeConnectedCallback(host.connected.append)
    transport.waitReady() if transport.ready else transport.tryGetReady()
    return transport


#: how long ``pump`` and a stranger wait for what they expect: a bound on a wait for an event, not a budget
#: under test (5 s ran out in a whole-suite run beside other work; alone such a wait takes milliseconds)
WAIT_S = 60.0
OUT_OF_REACH_S = 600.0
#: the tests of the read timeout itself (on a fake clock) get pysyncobj's 3 s
READ_TIMEOUT = pytest.mark.parametrize("pair", [3.0], indirect=True, ids=["3 s read timeout"])


def pump(hosts: list[Host], until: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    """Tick every host until ``until()`` holds (failing after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while not until():
        assert time.monotonic() < deadline, "condition not reached"
        for host in hosts:
            host.tick()


@pytest.fixture
def pair(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[Host, Host, GuardedTCPTransport, GuardedTCPTransport, TCPNode, TCPNode]]:
    """Two connected transports; an indirect parameter sets their read timeout: out of reach by default
    (a loaded machine let 3 s pass between two ticks, and the dropped connection lost the message a test
    waited for), pysyncobj's 3 s where a test is about it (``READ_TIMEOUT``)."""
    timeout_s = getattr(request, "param", OUT_OF_REACH_S)
    port_a, port_b = free_ports(2)
    node_a, node_b = TCPNode(f"127.0.0.1:{port_a}"), TCPNode(f"127.0.0.1:{port_b}")
    host_a, host_b = (
        Host(PASSWORD, connection_timeout_s=timeout_s),
        Host(PASSWORD, connection_timeout_s=timeout_s),
    )
    transport_a, transport_b = make(host_a, node_a, node_b), make(host_b, node_b, node_a)
    try:
        pump([host_a, host_b], lambda: bool(host_a.connected and host_b.connected))
        yield host_a, host_b, transport_a, transport_b, node_a, node_b
    finally:
        transport_a.destroy()
        transport_b.destroy()


def test_two_nodes_handshake_and_exchange_sealed_messages(pair: Any) -> None:
    host_a, host_b, transport_a, transport_b, node_a, node_b = pair
    heartbeat = {"type": "append_entries", "term": 3, "commit_index": 41, "entries": []}
    big = {"type": "append_entries", "term": 3, "entries": [(os.urandom(20_000), 42, 3)]}
    for _ in range(3):
        assert transport_a.send(node_b, heartbeat) and transport_b.send(node_a, {"type": "next_node_idx"})
    assert transport_a.send(node_b, big)
    pump([host_a, host_b], lambda: len(host_b.received) == 4 and len(host_a.received) == 3)
    assert [m for _, m in host_b.received] == [heartbeat] * 3 + [big]
    assert {type(c) for c in (*transport_a._connections.values(), *transport_b._connections.values())} == {
        GuardedTcpConnection
    }
    assert all(c.authenticated for c in transport_b._connections.values())
    assert transport_a.guard_stats.bad_frames == transport_b.guard_stats.bad_frames == 0


def test_pysyncobjs_fernet_is_never_used_nor_derived() -> None:
    """A store's SyncObj gets FramesOnly (no PBKDF2 of its own, transport_guard.install_frames_only): two
    nodes with it still handshake and exchange sealed frames, so nothing reaches pysyncobj's Fernet."""
    port_a, port_b = free_ports(2)
    node_a, node_b = TCPNode(f"127.0.0.1:{port_a}"), TCPNode(f"127.0.0.1:{port_b}")
    host_a, host_b = Host(PASSWORD, FramesOnly()), Host(PASSWORD, FramesOnly())
    transport_a, transport_b = make(host_a, node_a, node_b), make(host_b, node_b, node_a)
    try:
        pump([host_a, host_b], lambda: bool(host_a.connected and host_b.connected))
        assert transport_a.send(node_b, {"type": "hello"}) and transport_b.send(node_a, {"type": "back"})
        pump([host_a, host_b], lambda: bool(host_a.received and host_b.received))
        assert [m for _, m in host_b.received] == [{"type": "hello"}]
        assert all(c.authenticated for c in transport_b._connections.values())
    finally:
        transport_a.destroy()
        transport_b.destroy()
    with pytest.raises(RaftError, match="not used"):
        FramesOnly().encrypt_at_time(b"x", 0)


def stranger(node: TCPNode, payload: bytes) -> None:
    """Connect to ``node``'s Raft port, send ``payload`` and wait for the node to close the connection."""
    with socket.create_connection((node.ip, node.port), timeout=WAIT_S) as s:
        s.sendall(payload)
        s.settimeout(WAIT_S)
        with contextlib.suppress(ConnectionResetError):
            while s.recv(4096):
                pass


def framed(frame: bytes) -> bytes:
    return struct.pack("i", len(frame)) + frame


def hello() -> tuple[F.FrameChannel, bytes, bytes]:
    """A genuine first frame (the stranger knows the password) and the key it carries."""
    channel = F.FrameChannel(F.cluster_key(PASSWORD))
    key = os.urandom(32)
    return channel, key, framed(channel.seal(pso_pickle.dumps(key)))


def attack_and_count(pair: Any, payload: bytes, reason: str) -> None:
    """A stranger sends ``payload`` to node a's Raft port: one frame refused for ``reason``, counted."""
    host_a, host_b, transport_a, transport_b, node_a, node_b = pair
    stats = transport_a.guard_stats
    before = stats.refused.get(reason, 0)
    thread = threading.Thread(target=stranger, args=(node_a, payload), daemon=True)
    thread.start()
    pump([host_a, host_b], lambda: stats.refused.get(reason, 0) > before and not thread.is_alive())
    assert stats.refused[reason] == before + 1 and stats.bad_frames == sum(stats.refused.values())
    # the cluster's own connection is untouched
    received = len(host_b.received)
    assert transport_a.send(node_b, {"type": "still"})
    pump([host_a, host_b], lambda: len(host_b.received) > received)


def test_an_older_p2porchs_fernet_frame_is_counted_and_logged(pair: Any, caplog: Any) -> None:
    token = getEncryptor(PASSWORD).encrypt(zlib.compress(pso_pickle.dumps(os.urandom(32)), 3))
    with caplog.at_level(logging.WARNING, logger="p2porch.raft.transport_guard"):
        attack_and_count(pair, framed(token), F.REASON_OLD_FRAMING)
    assert "same p2porch version" in caplog.text


def test_a_hello_of_another_password_is_counted(pair: Any) -> None:
    frame = F.FrameChannel(F.cluster_key("wrong")).seal(pso_pickle.dumps(os.urandom(32)))
    attack_and_count(pair, framed(frame), F.REASON_AUTH)


def test_garbage_behind_a_length_prefix_is_counted(pair: Any) -> None:
    attack_and_count(pair, framed(os.urandom(300)), F.REASON_UNKNOWN_FORMAT)


def test_a_truncated_frame_is_counted(pair: Any) -> None:
    attack_and_count(pair, framed(F.MAGIC + bytes((F.FRAME_VERSION, 0)) + b"short"), F.REASON_TRUNCATED)


def test_a_genuine_hello_replayed_gives_no_session(pair: Any) -> None:
    """A captured hello is answered, but no session frame can follow without the node's fresh key."""
    channel, key, first = hello()
    guess = F.FrameChannel(F.cluster_key(PASSWORD))
    guess.seal(b"hello")
    guess.start_session(own_key=key, peer_key=os.urandom(32))  # the node's key is fresh: unknown
    attack_and_count(pair, first + framed(guess.seal(pso_pickle.dumps("127.0.0.1:1"))), F.REASON_AUTH)


def test_a_second_hello_on_one_connection_is_counted(pair: Any) -> None:
    _, _, first = hello()
    _, _, again = hello()
    attack_and_count(pair, first + again, F.REASON_OUT_OF_ORDER)


class CountingSocket:
    """A connection's socket whose ``send`` calls are counted (everything else passes through)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.sends = sock, 0

    def send(self, data: Any) -> int:
        self.sends += 1
        return self.sock.send(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


def test_frames_sent_in_one_tick_leave_in_one_send_in_order(pair: Any) -> None:
    """Corked frames (transport_guard): five messages to one peer wait for the tick and go out in one
    ``send``; the peer opens all five, in order."""
    host_a, host_b, transport_a, transport_b, node_a, node_b = pair
    transport_a.set_cork(True)
    conn = transport_a._connections[node_b]
    counting = CountingSocket(conn._TcpConnection__socket)
    conn._TcpConnection__socket = counting
    messages = [
        {"type": "append_entries", "term": 3, "entries": [(os.urandom(3000), i, 3)]} for i in range(5)
    ]
    for message in messages:
        assert transport_a.send(node_b, message)
    assert counting.sends == 0 and len(conn.corked) > 5 * 3000 and transport_a.unflushed == {conn}
    transport_a._onTick()  # the tick callback that runs last before the poll
    assert counting.sends == 1 and not conn.corked and not transport_a.unflushed
    pump([host_a, host_b], lambda: len(host_b.received) == 5)
    assert [m for _, m in host_b.received] == messages
    assert transport_a.guard_stats.bad_frames == transport_b.guard_stats.bad_frames == 0


def test_a_reconnect_drops_the_frames_corked_for_the_old_session(pair: Any) -> None:
    """Frames sealed for a connection that drops are never written to the next one (the peer would
    refuse them and drop that one too): the new session starts with its hello."""
    host_a, host_b, transport_a, transport_b, node_a, node_b = pair
    transport_a.set_cork(True)
    conn = transport_a._connections[node_b]
    assert transport_a.send(node_b, {"type": "lost"})
    assert conn.corked
    conn.disconnect()
    assert not conn.corked
    host_a.connected.clear()
    host_b.connected.clear()
    pump([host_a, host_b], lambda: bool(host_a.connected and host_b.connected))
    pump([host_a, host_b], lambda: transport_a.send(node_b, {"type": "kept"}) and bool(host_b.received))
    assert {m["type"] for _, m in host_b.received} == {"kept"}
    assert transport_a.guard_stats.bad_frames == transport_b.guard_stats.bad_frames == 0


def test_a_corked_backlog_drains_without_further_sends(pair: Any) -> None:
    """8 MB corked in one tick (a snapshot's chunks): more than the socket takes at once. The poller
    writes the rest as the socket drains; nothing else is sent meanwhile (an idle leader's transfer).
    The receiver sends nothing back, so the read timeout must be out of reach (the fixture's default):
    sealing and draining 8 MB took 1-2.5 s here and more than pysyncobj's 3 s at load 9-14 (the
    timeout's own behaviour during a transfer is the next two tests', on a fake clock)."""
    host_a, host_b, transport_a, transport_b, node_a, node_b = pair
    transport_a.set_cork(True)
    chunks = [
        {"type": "append_entries", "serialized": (os.urandom(65536), i == 0, False)} for i in range(128)
    ]
    for chunk in chunks:
        assert transport_a.send(node_b, chunk)
    transport_a.flush()
    assert transport_a._connections[node_b].getSendBufferSize() > 0  # the socket took only part of it
    pump([host_a, host_b], lambda: len(host_b.received) == len(chunks), timeout_s=20.0)
    assert [m for _, m in host_b.received] == chunks


@contextlib.contextmanager
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """pysyncobj's connection clock and the guard's, frozen at now; advance by adding to ``[0]``."""
    now = [time.monotonic()]
    monkeypatch.setattr(tcp_connection, "monotonicTime", lambda: now[0])
    monkeypatch.setattr(transport_guard, "monotonic", lambda: now[0])
    yield now


def connected(transport: GuardedTCPTransport, node: TCPNode) -> bool:
    return bool(transport._connections[node].state == tcp_connection.CONNECTION_STATE.CONNECTED)


@READ_TIMEOUT
def test_a_silent_peer_that_drains_a_backlog_is_not_timed_out(
    pair: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A follower installing a snapshot sends nothing until the last chunk: each time the socket takes
    more of the backlog (the peer read what filled it), the 3 s read deadline starts again, so a transfer
    of 8 MB over 2 s steps of the (fake) clock survives where the deadline alone cut it at the second."""
    host_a, host_b, transport_a, transport_b, node_a, node_b = pair
    transport_a.set_cork(True)
    chunks = [
        {"type": "append_entries", "serialized": (os.urandom(65536), i == 0, False)} for i in range(128)
    ]
    with fake_clock(monkeypatch) as now:
        for chunk in chunks:
            assert transport_a.send(node_b, chunk)
        transport_a.flush()
        steps = 0
        while len(host_b.received) < len(chunks):
            dropped = len(host_a.connected) > 1 or not connected(transport_a, node_b)  # reconnects at once
            assert not dropped, f"dropped after {steps} steps"
            assert steps < 400
            now[0] += 2.0
            for _ in range(5):  # B reads what arrived, A writes into the room that made
                host_b.tick()
                host_a.tick()
            steps += 1
    assert steps >= 3  # the transfer outlasted the timeout on the clock
    assert [m for _, m in host_b.received] == chunks and connected(transport_a, node_b)
    assert len(host_a.connected) == 1


@READ_TIMEOUT
def test_a_peer_that_stops_reading_is_still_timed_out(pair: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The socket takes nothing more once the peer's buffers are full: the read deadline runs out."""
    host_a, host_b, transport_a, transport_b, node_a, node_b = pair
    transport_a.set_cork(True)
    with fake_clock(monkeypatch) as now:
        for i in range(128):
            transport_a.send(
                node_b, {"type": "append_entries", "serialized": (os.urandom(65536), i == 0, False)}
            )
        transport_a.flush()
        for _ in range(20):  # host_b never reads: the buffers fill, then nothing moves
            host_a.tick()
        assert connected(transport_a, node_b) and transport_a._connections[node_b].getSendBufferSize() > 0
        now[0] += 3.5
        transport_a.send(node_b, {"type": "append_entries", "term": 1, "entries": []})
        transport_a.flush()
        assert not connected(transport_a, node_b)
