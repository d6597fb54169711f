"""Crash tests for the Raft store: real processes on loopback, kill -9, every ack must survive.

Each scenario runs 3 voters + 1 replica (separate processes), a client thread writing continuously
through random live nodes, a SIGKILL of the chosen victim(s) while it writes, recovery, and then
checks that every write the client saw acknowledged is present on every node.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2porch.testing.raftprocs import ControlClient, LocalCluster, NodeProc

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    c = LocalCluster(tmp_path / "p2rf", voters=3, replicas=1)
    try:
        c.start_all()
        c.leader().call(op="init")
        yield c
    finally:
        c.close()


class Writer:
    """Writes unique services through random live nodes; records which ones were acknowledged."""

    def __init__(self, cluster: LocalCluster, seed: int) -> None:
        self.cluster = cluster
        self.rng = random.Random(seed)
        self.acked: list[tuple[float, str]] = []
        self.failures = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.seq = 0
        self.seed = seed

    def _run(self) -> None:
        clients: dict[str, ControlClient] = {}
        while not self.stop.is_set():
            live = [n for n in self.cluster.nodes if n.alive]
            if not live:
                time.sleep(0.02)
                continue
            node = self.rng.choice(live)
            sid = f"w{self.seed}-{self.seq}"
            self.seq += 1
            try:
                if node.name not in clients:
                    clients[node.name] = ControlClient(node.control_port, timeout_s=4.0)
                answer = clients[node.name].call(op="create", id=sid, timeout_s=2.0)
            except (OSError, ConnectionError, ValueError):
                self.failures += 1
                old = clients.pop(node.name, None)
                if old is not None:
                    old.close()
                time.sleep(0.02)
                continue
            if answer.get("ok"):
                self.acked.append((time.monotonic(), sid))
            else:
                self.failures += 1
        for c in clients.values():
            c.close()

    def __enter__(self) -> Writer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=15)

    def wait_acks(self, count: int, after: float = 0.0, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if sum(1 for t, _ in self.acked if t > after) >= count:
                return
            time.sleep(0.02)
        raise AssertionError(f"only {sum(1 for t, _ in self.acked if t > after)} acks after t={after}")


def assert_all_acked_everywhere(cluster: LocalCluster, acked: set[str]) -> None:
    assert acked, "the writer never got an acknowledgement"
    for node in cluster.nodes:
        have = cluster.wait_services(node, acked, timeout_s=20.0)
        missing = acked - have
        assert not missing, f"{node.name} lost {len(missing)} acked writes, e.g. {sorted(missing)[:5]}"


def victims(cluster: LocalCluster, kind: str) -> list[NodeProc]:
    leader = cluster.leader()
    if kind == "leader":
        return [leader]
    if kind == "follower":
        return [n for n in cluster.voters() if n is not leader][:1]
    if kind == "replica":
        return cluster.replicas()
    return list(cluster.nodes)


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("kind", ["leader", "follower", "replica", "all"])
def test_kill9_loses_no_acknowledged_write(cluster: LocalCluster, kind: str, seed: int) -> None:
    rng = random.Random(seed)
    with Writer(cluster, seed) as writer:
        writer.wait_acks(20 + rng.randrange(30))
        doomed = victims(cluster, kind)
        term_before = max(n.call(op="status")["status"]["term"] for n in cluster.voters())
        for node in doomed:
            cluster.kill(node)
        killed_at = time.monotonic()
        if kind != "all":
            # the survivors (a majority of voters) keep accepting writes, with a new leader if needed
            writer.wait_acks(10, after=killed_at + 0.05)
            if kind == "leader":
                new_leader = cluster.leader()
                assert new_leader not in doomed
        time.sleep(rng.uniform(0.0, 0.5))
        for node in doomed:
            cluster.start(node, wait=False)
        for node in doomed:
            cluster.wait_ready(node)
        writer.wait_acks(10, after=time.monotonic())
    assert_all_acked_everywhere(cluster, {sid for _, sid in writer.acked})
    # currentTerm is persisted (PySyncObj #201): no voter comes back with a smaller term
    assert min(n.call(op="status")["status"]["term"] for n in cluster.voters()) >= term_before
    versions = {n.name: n.call(op="services")["version"] for n in cluster.nodes}
    # the writer is stopped: every node converges to the same state version
    deadline = time.monotonic() + 10
    while len(set(versions.values())) != 1 and time.monotonic() < deadline:
        time.sleep(0.1)
        versions = {n.name: n.call(op="services")["version"] for n in cluster.nodes}
    assert len(set(versions.values())) == 1, versions


def test_garbage_on_raft_port_does_not_hurt(cluster: LocalCluster) -> None:
    rng = random.Random(7)
    leader = cluster.leader()
    term = leader.call(op="status")["status"]["term"]
    assert leader.raft_addr is not None
    host, port = leader.raft_addr.rsplit(":", 1)
    payloads = [rng.randbytes(rng.randrange(1, 4096)) for _ in range(20)] + [
        b"\x00\x00\x00\x10" + b"A" * 16,
        b"\xff\xff\xff\x7f" + b"B" * 100,
        b"GET / HTTP/1.0\r\n\r\n",
    ]
    for payload in payloads:
        with contextlib.suppress(OSError), socket.create_connection((host, int(port)), timeout=2) as s:
            s.sendall(payload)
    for node in cluster.voters():
        assert node.alive
    answer = leader.call(op="create", id="after-garbage")
    assert answer["ok"], answer
    status = leader.call(op="status")["status"]
    assert status["is_leader"] and status["term"] == term, status  # no election: garbage changed nothing
    assert cluster.leader() is leader
    assert cluster.wait_services(cluster.replicas()[0], {"after-garbage"}) >= {"after-garbage"}


def test_wrong_password_replica_gets_nothing(cluster: LocalCluster, tmp_path: Path) -> None:
    assert cluster.leader().call(op="create", id="secret-svc")["ok"]
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password")
    intruder = NodeProc("intruder", None, cluster.nodes[-1].control_port + 0, tmp_path / "intruder")
    # give the intruder its own control port
    from p2porch.testing.raftprocs import free_ports

    intruder.control_port = free_ports(1)[0]
    cluster.nodes.append(intruder)
    cluster.start(intruder, password_file=wrong)
    # a write after the intruder started reaches the rightful replica: the intruder had the same chance
    assert cluster.leader().call(op="create", id="after-intruder")["ok"]
    assert "after-intruder" in cluster.wait_services(cluster.replicas()[0], {"after-intruder"})
    answer = intruder.call(op="services")
    assert answer["version"] == 0 and answer["ids"] == []
    status = intruder.call(op="status")["status"]
    assert status["leader"] is None
    # a write through the intruder never reaches the cluster
    answer = intruder.call(op="create", id="intruder-write", timeout_s=1.0)
    assert not answer["ok"]
    leader = cluster.leader()
    assert "intruder-write" not in leader.call(op="services")["ids"]
    assert leader.call(op="create", id="still-fine")["ok"]
