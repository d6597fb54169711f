"""Real pysyncobj voters ticked by a test (``RaftBridge`` with ``autoTick=False``): building them on
loopback, the owner they need, one tick of each, and waiting for a leader (shell; never used by the
daemon). Owns the voters of :func:`loopback_voters` only while its ``with`` lasts; the test ticks them.
It never sleeps longer than 10 ms at a time and never decides anything about the cluster beyond "one
leader, known to every node".
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pysyncobj import SyncObjConf
from pysyncobj.node import TCPNode

from p2porch.raft.bridge import RaftBridge

from .raftprocs import free_ports


class BridgeTestOwner:
    """A store stand-in for a bare ``RaftBridge``: the settings it reads, an apply that applies nothing."""

    def __init__(self, election_timeout_min_s: float = 1.0) -> None:
        self.config = SimpleNamespace(
            replica_beat_s=1.0, heartbeat_answer_period_s=0.5, election_timeout_min_s=election_timeout_min_s
        )

    def _apply_on_raft_thread(self, batch: bytes) -> list[Any]:
        return []


def tick(nodes: Sequence[RaftBridge], rounds: int = 1) -> None:
    """Tick every node once per round, in order (the test's thread is their Raft thread)."""
    for _ in range(rounds):
        for so in nodes:
            so._onTick(0.0)


def elect_leader(nodes: Sequence[RaftBridge], timeout_s: float = 15.0) -> RaftBridge:
    """Tick ``nodes`` until one leads and every node knows a leader; AssertionError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        tick(nodes)
        leaders = [so for so in nodes if so._isLeader()]
        if leaders and all(so._getLeader() is not None for so in nodes):
            return leaders[0]
        time.sleep(0.01)
    raise AssertionError("no leader elected")


def loopback_conf(journal_file: str | None = None, password: str = "raft-bridges-test") -> SyncObjConf:
    """A test node's settings: ticked by hand, each entry sent as it is added (as the store), elections
    after 1-1.5 s, connection and leader fallback timeouts of 30 s (a follower that stops reading is
    neither dropped nor deposes the leader within a test)."""
    return SyncObjConf(
        password=password,
        autoTick=False,
        appendEntriesUseBatch=False,
        dynamicMembershipChange=True,
        raftMinTimeout=1.0,
        raftMaxTimeout=1.5,
        connectionTimeout=30.0,
        leaderFallbackTimeout=30.0,
        journalFile=journal_file,
    )


@contextmanager
def loopback_voters(count: int = 3, journal_dir: Path | None = None) -> Iterator[list[RaftBridge]]:
    """``count`` voters on 127.0.0.1 with :func:`loopback_conf`; with ``journal_dir``, a journal file each
    in it. Destroyed when the ``with`` ends."""
    addrs = [f"127.0.0.1:{p}" for p in free_ports(count)]
    nodes: list[RaftBridge] = []
    try:
        for i, addr in enumerate(addrs):
            conf = loopback_conf(None if journal_dir is None else str(journal_dir / f"v{i}.journal"))
            others = [a for a in addrs if a != addr]
            nodes.append(RaftBridge(BridgeTestOwner(), addr, others, conf))  # type: ignore[arg-type]
        yield nodes
    finally:
        for so in nodes:
            so.destroy()


Sent = list[tuple[Any, dict[str, Any]]]


@contextmanager
def captured_voter(
    password: str, election_timeout_min_s: float
) -> Iterator[tuple[RaftBridge, list[TCPNode], Sent]]:
    """One voter among two peers that are never started: what it sends is recorded in the list, not
    sent, and it believes itself connected (a test feeds it messages and ticks it by hand). pysyncobj's
    default election window (0.4-1.4 s) and connection timeout (3.5 s). Destroyed when the ``with`` ends."""
    me, *others = (f"127.0.0.1:{p}" for p in free_ports(3))
    conf = SyncObjConf(
        password=password, autoTick=False, appendEntriesUseBatch=False, dynamicMembershipChange=True
    )
    so = RaftBridge(BridgeTestOwner(election_timeout_min_s), me, others, conf)  # type: ignore[arg-type]
    sent: Sent = []

    def record(node: Any, message: dict[str, Any]) -> bool:
        sent.append((node, message))
        return True

    so._SyncObj__transport.send = record
    so._SyncObj__connectedToAnyone = lambda: True  # type: ignore[method-assign]  # no real peers
    try:
        yield so, [TCPNode(a) for a in others], sent
    finally:
        so.destroy()
