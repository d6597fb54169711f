"""The project's own Python work in an idle Raft leader's append round, by number of read-only replicas.

    python bench/raft_idle_round.py [--replicas 15,100,1000] [--rounds 2000]

An idle leader sends a round every 200 ms (``idle_heartbeat_period_s``) to its voters and to the
replicas whose 4 s (``replica_beat_s``) ran out. This runs ``heartbeat_rounds.QuietReplicaRounds`` (with
``heartbeats.ReplicaHeartbeats``) over pysyncobj ``TCPNode``s, 4 voters and N caught-up replicas, on a
fake clock, with a stand-in for pysyncobj's round that does only its lookups per node it sends to (7,
no I/O). Reported per round: thread CPU (µs), calls of ``Node.__hash__`` (each ``d[node]`` is one: a
Python method) and nodes sent to; and the CPU as % of a core at 4.9 rounds a second (the measured idle
rate). Run it from each tree (``PYTHONPATH=TREE``) to compare. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import types
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pysyncobj.node import TCPNode  # noqa: E402

import p2porch.raft.heartbeat_rounds as rounds_module  # noqa: E402
from p2porch.raft.flow import FlowLimits  # noqa: E402
from p2porch.raft.heartbeats import ReplicaHeartbeats  # noqa: E402
from p2porch.raft.pacer import TickPacer  # noqa: E402

ROUND_S, REPLICA_BEAT_S, ROUNDS_PER_S = 0.2, 4.0, 4.9
HASHES = [0]


class CountingNode(TCPNode):
    def __hash__(self) -> int:
        HASHES[0] += 1
        return hash(self.id)


class _Conf:
    appendEntriesPeriod = 0.1


class _Transport:
    _connections: dict[Any, Any] = {}  # noqa: RUF012 (nothing buffered)


class _PysyncobjRound:
    """pysyncobj's round reduced to its lookups per node it sends to (no message, no I/O)."""

    def __init__(self, replicas: int, clock: list[float]) -> None:
        voters = {CountingNode(f"10.1.0.{i}:7947") for i in range(4)}
        reps = {CountingNode(f"10.2.{i // 250}.{i % 250}:7947") for i in range(replicas)}
        self.clock = clock
        self._SyncObj__conf = _Conf()
        self._SyncObj__otherNodes = voters
        self._SyncObj__readonlyNodes = set(reps)
        self._SyncObj__connectedNodes = voters | reps
        self._SyncObj__raftCommitIndex = 5
        self._SyncObj__raftLog = [(b"", 5, 1)]
        self._SyncObj__raftNextIndex = dict.fromkeys(voters | reps, 6)
        self._SyncObj__raftMatchIndex = dict.fromkeys(voters | reps, 5)
        self._SyncObj__transport = _Transport()
        self._SyncObj__newAppendEntriesTime = 0.0
        self.sent = 0

    def _SyncObj__sendAppendEntries(self) -> None:  # noqa: N802
        nexts, connected = self._SyncObj__raftNextIndex, self._SyncObj__connectedNodes
        for node in self._SyncObj__otherNodes | self._SyncObj__readonlyNodes:
            if node not in connected:
                continue
            _ = nexts[node], node in connected, node in connected, node in connected  # (send: 3)
            _ = node in connected, nexts[node]
            self.sent += 1
        self._SyncObj__newAppendEntriesTime = self.clock[0] + _Conf.appendEntriesPeriod


class _Leader(rounds_module.QuietReplicaRounds, _PysyncobjRound):
    def __init__(self, replicas: int, clock: list[float]) -> None:
        super().__init__(replicas, clock)
        self._replica_beats = ReplicaHeartbeats(REPLICA_BEAT_S)
        self.round_pacer = TickPacer(busy_period_s=0.005, idle_period_s=0.5, linger_s=1.0)
        self.idle_round_s = ROUND_S
        self.flow_limits = FlowLimits()
        self._flow_broken = set()


def measure(replicas: int, count: int) -> dict[str, Any]:
    clock = [1000.0]
    rounds_module.time = types.SimpleNamespace(monotonic=lambda: clock[0])  # type: ignore[assignment]
    leader = _Leader(replicas, clock)
    for _ in range(int(2 * REPLICA_BEAT_S / ROUND_S)):  # every replica heard, spread over its period
        leader._SyncObj__sendAppendEntries()
        clock[0] += ROUND_S
    HASHES[0], leader.sent = 0, 0
    start = time.thread_time()
    for _ in range(count):
        leader._SyncObj__sendAppendEntries()
        clock[0] += ROUND_S
    cpu = time.thread_time() - start
    return {
        "replicas": replicas,
        "rounds": count,
        "us_per_round": round(1e6 * cpu / count, 1),
        "node_hashes_per_round": round(HASHES[0] / count, 1),
        "sent_per_round": round(leader.sent / count, 2),
        "cpu_pct_of_core": round(100 * ROUNDS_PER_S * cpu / count, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicas", default="15,100,1000")
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    points = [measure(int(n), args.rounds) for n in args.replicas.split(",")]
    print(json.dumps({"points": points}))


if __name__ == "__main__":
    main()
