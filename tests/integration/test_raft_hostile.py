"""A stranger on the Raft port cannot stall commits or grow the node's memory (real store processes).

Three voters on loopback; a writer commits through the leader the whole time and records the gap
between consecutive acknowledgements. A stall caused by the stranger would last as long as the attack
(6 s), so the bound is half of it, well above one election timeout (raftMaxTimeout 1.2 s, which a loaded
2-core machine brushes against without any attack), and no election (the term does not move).
``P2RF_FUZZ_S`` lengthens the fuzz phase (default 4 s).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pysyncobj import pickle as pso_pickle
from pysyncobj.encryptor import getEncryptor

from p2porch.raft import frames
from p2porch.testing.raftprocs import ControlClient, LocalCluster, NodeProc

pytestmark = pytest.mark.integration

STALL_BOUND_S = 3.0  # half the attack: a stall by the stranger would last the whole attack
MIB = 1024 * 1024
PASSWORD = "p2rf-hostile"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    c = LocalCluster(tmp_path, voters=3, password=PASSWORD)
    try:
        c.start_all()
        assert c.leader().call(op="init")["ok"]
        yield c
    finally:
        c.close()


def rss_mib(node: NodeProc) -> float:
    assert node.proc is not None
    for line in Path(f"/proc/{node.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class CommitProbe(threading.Thread):
    """Sequential writes through one node, ``PAUSE_S`` apart; the longest wait between two
    acknowledgements. The pause keeps the state the writes add (a service record each) small beside
    the RSS bound, which is about what the stranger makes the node hold: unpaced, a fast Raft port
    commits ~1,700 writes a second and the records alone grow the leader by ~70 MiB in the attack."""

    PAUSE_S = 0.005

    def __init__(self, node: NodeProc) -> None:
        super().__init__(daemon=True)
        self.client = ControlClient(node.control_port, timeout_s=30)
        self.stop = threading.Event()
        self.acks: list[float] = []
        self.errors: list[str] = []

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            answer = self.client.call(op="create", id=f"probe{i}", timeout_s=20)
            i += 1
            if answer.get("ok"):
                self.acks.append(time.monotonic())
            else:
                self.errors.append(str(answer))
            self.stop.wait(self.PAUSE_S)
        self.client.close()

    def max_gap(self, since: float) -> float:
        times = [since] + [t for t in self.acks if t >= since]
        return max(b - a for a, b in zip(times, times[1:], strict=False)) if len(times) > 1 else float("inf")


def attack(
    node: NodeProc, seconds: float, senders: list[Callable[[socket.socket, random.Random], None]]
) -> int:
    """Hostile senders against the Raft port of ``node``, in threads; returns the connections made."""
    assert node.raft_addr is not None
    host, port = node.raft_addr.rsplit(":", 1)
    deadline = time.monotonic() + seconds
    count = [0]

    def loop(sender: Callable[[socket.socket, random.Random], None], seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection((host, int(port)), timeout=2) as s:
                count[0] += 1
                sender(s, rng)

    threads = [threading.Thread(target=loop, args=(s, i), daemon=True) for i, s in enumerate(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 30)
    return count[0]


def big_garbage(s: socket.socket, rng: random.Random) -> None:
    s.sendall(struct.pack("i", 32 * MIB) + rng.randbytes(32 * MIB))


def raw_garbage(s: socket.socket, rng: random.Random) -> None:
    s.sendall(rng.randbytes(32 * MIB))


def idle_holders(s: socket.socket, rng: random.Random) -> None:
    """Many connections that trickle one byte at a time and never authenticate."""
    held = [s]
    host, port = s.getpeername()[:2]
    with contextlib.ExitStack() as stack:
        for _ in range(300):
            with contextlib.suppress(OSError):
                held.append(stack.enter_context(socket.create_connection((host, port), timeout=2)))
        for _ in range(6):
            for c in held:
                with contextlib.suppress(OSError):
                    c.send(b"\x00")
            time.sleep(0.5)


def test_stranger_sending_32_mib_and_holding_connections_does_not_stall_commits(
    cluster: LocalCluster,
) -> None:
    leader = cluster.leader()
    term = leader.call(op="status")["status"]["term"]
    rss_before = rss_mib(leader)
    probe = CommitProbe(leader)
    probe.start()
    time.sleep(0.5)
    started = time.monotonic()
    peak = [rss_before]
    sampler_stop = threading.Event()

    def sample() -> None:
        while not sampler_stop.wait(0.1):
            with contextlib.suppress(OSError, AssertionError):
                peak[0] = max(peak[0], rss_mib(leader))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    connections = attack(leader, 6.0, [big_garbage, big_garbage, raw_garbage, idle_holders])
    sampler_stop.set()
    probe.stop.set()
    probe.join(30)
    gap = probe.max_gap(started)
    print(f"\nhostile: {connections} connections, longest commit gap {gap:.3f} s, "
          f"{len(probe.acks)} acks, RSS {rss_before:.0f} -> peak {peak[0]:.0f} MiB")  # fmt: skip
    assert not probe.errors, probe.errors[:3]
    assert gap < STALL_BOUND_S
    assert leader.call(op="status")["status"]["term"] == term  # no election was triggered
    assert peak[0] - rss_before < 64


def _framed(frame: bytes) -> bytes:
    return struct.pack("i", len(frame)) + frame


def _hello(payload: object, password: str = PASSWORD) -> bytes:
    """A connection's first frame (frames.py), sealed with the cluster key of ``password``."""
    return _framed(frames.FrameChannel(frames.cluster_key(password)).seal(pso_pickle.dumps(payload)))


def _other_session_frame(payload: object) -> bytes:
    """A session frame of another connection (the password is right, the handshake keys are not)."""
    channel = frames.FrameChannel(frames.cluster_key(PASSWORD))
    channel.seal(b"hello")
    channel.start_session(own_key=os.urandom(32), peer_key=os.urandom(32))
    return _framed(channel.seal(pso_pickle.dumps(payload)))


def _fernet_frame(payload: object) -> bytes:
    """pysyncobj's own framing, as an older p2porch sends it."""
    return _framed(getEncryptor(PASSWORD).encrypt(zlib.compress(pso_pickle.dumps(payload), 3)))


def guard_counts(node: NodeProc) -> dict[str, object]:
    return dict(json.loads(node.call(op="raw")["raw"]["guard"]))


def test_fuzz_raft_port(cluster: LocalCluster) -> None:
    """Random, truncated, oversized, replayed, wrong-key and old-format frames for a bounded time
    (P2RF_FUZZ_S); every kind is counted by the guard and none disturbs the cluster."""
    leader = cluster.leader()
    term = leader.call(op="status")["status"]["term"]
    rss_before = rss_mib(leader)
    hello = _hello(os.urandom(32))  # a genuine first frame, as a captured one would be replayed
    stale = _other_session_frame(leader.raft_addr)  # a second frame of another connection
    compressible = _hello(b"\x00" * (8 * MIB), password="wrong-password")
    wrong_key = _hello(os.urandom(32), password="wrong-password")
    fernet = _fernet_frame(os.urandom(32))
    kinds = 11
    rounds = [0]

    def fuzz(s: socket.socket, rng: random.Random) -> None:
        rounds[0] += 1  # every kind in the first rounds, then at random
        kind = rounds[0] % kinds if rounds[0] <= 2 * kinds else rng.randrange(kinds)
        if kind == 0:
            s.sendall(rng.randbytes(rng.randrange(1, 65536)))
        elif kind == 1:
            s.sendall(hello[: rng.randrange(1, len(hello))])
        elif kind == 2:
            s.sendall(
                struct.pack("i", rng.randrange(4097, 2**31 - 1)) + rng.randbytes(rng.randrange(0, 8192))
            )
        elif kind == 3:
            s.sendall(struct.pack("i", -rng.randrange(1, 2**31)) + rng.randbytes(64))
        elif kind == 4:
            s.sendall(hello + stale)  # replay: another connection's session key does not open here
        elif kind == 5:
            s.sendall(hello * rng.randrange(2, 50))  # a second hello on one connection
        elif kind == 6:
            s.sendall(compressible[: rng.randrange(4, len(compressible))])
        elif kind == 7:
            s.sendall(wrong_key)
        elif kind == 8:
            s.sendall(fernet)
        elif kind == 9:
            s.sendall(_framed(frames.MAGIC + bytes((frames.FRAME_VERSION, 0)) + rng.randbytes(20)))
        else:
            s.sendall(_framed(rng.randbytes(rng.randrange(1, 4096))))
        s.settimeout(0.2)
        with contextlib.suppress(OSError):
            s.recv(4096)

    probe = CommitProbe(leader)
    probe.start()
    time.sleep(0.5)
    started = time.monotonic()
    seconds = float(os.environ.get("P2RF_FUZZ_S", "4"))
    connections = attack(leader, seconds, [fuzz] * 4)
    probe.stop.set()
    probe.join(30)
    gap = probe.max_gap(started)
    print(f"\nfuzz: {connections} connections in {seconds:.0f} s, longest commit gap {gap:.3f} s")
    assert connections > 20
    assert not probe.errors, probe.errors[:3]
    assert gap < STALL_BOUND_S
    assert all(n.alive for n in cluster.nodes)
    assert leader.call(op="status")["status"]["term"] == term
    assert rss_mib(leader) - rss_before < 64
    counts = guard_counts(leader)
    print(f"guard: {counts}")
    refused = counts["refused"]
    assert isinstance(refused, dict)
    for reason in ("auth", "out_of_order", "old_framing", "unknown_format", "truncated"):
        assert refused.get(reason, 0) > 0, (reason, counts)
    assert counts["oversized_frames"] and counts["bad_frames"] == sum(refused.values())
    # the cluster still replicates to everyone
    assert leader.call(op="create", id="after-fuzz")["ok"]
    for node in cluster.nodes:
        assert "after-fuzz" in cluster.wait_services(node, {"after-fuzz"})
