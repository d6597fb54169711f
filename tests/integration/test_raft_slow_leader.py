"""The adaptive election timeout with real voters (3 processes on loopback, pysyncobj Raft): a leader
whose process is stopped for 1.5-2 s at a time keeps its place once its followers learned its gaps, and
a leader that dies still fails over within the configured window (docs/raft.md, "Adaptive election
timeout")."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2porch.testing.raftprocs import ControlClient, LocalCluster, NodeProc

pytestmark = pytest.mark.integration

FAILOVER_S = 2.0  # issue 19's target (the configured window is 0.5-1.2 s, plus a pre-vote round)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    c = LocalCluster(tmp_path / "p2el", voters=3)
    try:
        c.start_all()
        c.leader().call(op="init")
        yield c
    finally:
        c.resume_all()  # never leave a stopped process behind
        c.close()


def terms(cluster: LocalCluster) -> dict[str, int]:
    return {n.name: int(n.call(op="status")["status"]["term"]) for n in cluster.voters() if n.alive}


def stall(node: NodeProc, seconds: float) -> None:
    """Stop ``node``'s process (every thread: Raft, trio) for ``seconds``; its sockets stay open."""
    assert node.proc is not None
    os.kill(node.proc.pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.kill(node.proc.pid, signal.SIGCONT)


def failover_s(cluster: LocalCluster, leader: NodeProc) -> float:
    """SIGKILL ``leader``; seconds until the other voters agree on a new one."""
    started = time.monotonic()
    cluster.kill(leader)
    new = cluster.leader(timeout_s=10.0)
    assert new is not leader
    return time.monotonic() - started


def test_a_killed_leader_fails_over_within_the_configured_window(cluster: LocalCluster) -> None:
    leader = cluster.leader()
    time.sleep(1.0)  # steady heartbeats: the followers' timeouts are the configured ones
    assert failover_s(cluster, leader) < FAILOVER_S


class Writes:
    """Creates services through the leader without pause, so its appends go out every few milliseconds
    and a follower's gaps are the stops themselves (an idle leader heartbeats every 0.2 s)."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster, self.done, self.acked = cluster, threading.Event(), 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        seq = 0
        while not self.done.is_set():
            try:
                client = ControlClient(self.cluster.leader(timeout_s=5.0).control_port, timeout_s=5.0)
            except (TimeoutError, OSError):
                continue
            try:
                while not self.done.is_set():
                    seq += 1
                    if not client.call(op="create", id=f"w{seq}", timeout_s=4.0).get("ok"):
                        break  # not the leader any more
                    self.acked += 1
            except (OSError, ConnectionError, ValueError):
                pass
            finally:
                client.close()

    def __enter__(self) -> Writes:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join(timeout=10)


def test_a_leader_stopped_for_two_seconds_at_a_time_keeps_its_place(cluster: LocalCluster) -> None:
    with Writes(cluster) as writes:
        # the followers learn the leader's gaps from stops the configured 0.5 s minimum tolerates, then
        # from what each of those taught them (a first 1.5 s stop with no history deposes a leader: a
        # change of leader here is allowed, the learned estimate stays with the followers)
        for seconds in (0.25, 0.5, 1.0):
            stall(cluster.leader(), seconds)
            time.sleep(1.0)
        leader = cluster.leader()
        before = terms(cluster)
        for seconds in (1.5, 2.0, 1.5, 2.0, 1.8):  # each beyond the configured 1.2 s maximum
            stall(leader, seconds)
            time.sleep(1.0)
        assert terms(cluster) == before, [cluster.log_tail(n) for n in cluster.voters()]
        assert cluster.leader() is leader
    assert writes.acked > 0
    # a real death after all that: the dropped connections bring the configured window back
    assert failover_s(cluster, leader) < FAILOVER_S
