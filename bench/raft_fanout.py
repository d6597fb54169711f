"""The leader's fan-out CPU with and without corked frames, in one process (JSON).

    python bench/raft_fanout.py [--replicas 20] [--cycles 300] [--per-tick 3] [--entry-bytes 4096]
                                [--pairs 3]

A leader, two more voters and ``--replicas`` read-only replicas, all real ``RaftBridge`` stores on
loopback with the guarded transport and sealed frames (``raft/transport_guard.py``), ticked by this
thread in turn (no journal: the send path only). Each cycle proposes ``--per-tick`` entries of
``--entry-bytes`` (JSON-like, compressible, as the store's command batches) to the leader, ticks the
leader once and every follower once. The leader adds one append round per entry (pysyncobj with
``appendEntriesUseBatch=False``, as the store runs it), so a tick sends each follower ``--per-tick``
appends plus the heartbeat rounds.

Modes, alternated ``--pairs`` times in the same process on the same cluster: ``uncorked`` (every frame
handed to its socket at once: one ``send`` per follower per message, main's behaviour) and ``corked``
(frames written once per connection before and after each poll). Per mode: the leader's thread CPU
(``time.thread_time`` around its ticks only) and all nodes' CPU per committed entry, the leader's
frames and ``send`` calls per entry. No root; loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from p2porch.raft.bridge import RaftBridge  # noqa: E402
from p2porch.raft.transport_guard import GuardedTCPTransport  # noqa: E402
from p2porch.testing.raft_bridges import BridgeTestOwner, elect_leader, loopback_conf  # noqa: E402
from p2porch.testing.raftprocs import free_ports  # noqa: E402


def entry(i: int, size: int) -> bytes:
    """A command-batch-like entry: field names, ids and numbers (zlib compresses it as it does ours)."""
    parts: list[bytes] = []
    n = 0
    while sum(map(len, parts)) < size:
        spec = {
            "t": "report",
            "node": f"n{i % 1000}",
            "task": os.urandom(8).hex(),
            "state": "running",
            "k": n,
        }
        parts.append(json.dumps(spec).encode())
        n += 1
    return b"".join(parts)[:size]


def transport(so: RaftBridge) -> GuardedTCPTransport:
    t: GuardedTCPTransport = so._SyncObj__transport  # type: ignore[attr-defined]
    return t


def set_cork(nodes: list[RaftBridge], on: bool) -> None:
    for so in nodes:
        transport(so).set_cork(on)


class SendCounter:
    """Counts the ``send`` calls on the leader's sockets (wraps each connection's socket object)."""

    def __init__(self, t: GuardedTCPTransport) -> None:
        self.calls = 0
        for conn in t._connections.values():
            sock = conn._TcpConnection__socket
            if sock is not None and not isinstance(sock, _CountingSocket):
                conn._TcpConnection__socket = _CountingSocket(sock, self)


class _CountingSocket:
    def __init__(self, sock: socket.socket, counter: SendCounter) -> None:
        self._sock, self._counter = sock, counter

    def send(self, data: Any) -> int:
        self._counter.calls += 1
        return self._sock.send(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def run_phase(
    leader: RaftBridge, followers: list[RaftBridge], args: argparse.Namespace, counter: SendCounter
) -> dict[str, float]:
    t = transport(leader)
    frames_before = t.fanout.encoded + t.fanout.reused
    sends_before = counter.calls
    done: list[int] = []
    commit_before = leader.raftCommitIndex
    leader_cpu = all_cpu = 0.0
    payloads = [entry(i, args.entry_bytes) for i in range(args.per_tick)]
    wall = time.perf_counter()
    for _ in range(args.cycles):
        for p in payloads:
            leader.apply_entry(p, callback=lambda res, err: done.append(1))
        c0 = time.thread_time()
        leader._onTick(0.0)
        c1 = time.thread_time()
        for so in followers:
            so._onTick(0.0)
        c2 = time.thread_time()
        leader_cpu += c1 - c0
        all_cpu += c2 - c0
    deadline = time.monotonic() + 10
    while len(done) < args.cycles * args.per_tick and time.monotonic() < deadline:
        for so in [leader, *followers]:
            so._onTick(0.0)
    entries = leader.raftCommitIndex - commit_before
    frames = t.fanout.encoded + t.fanout.reused - frames_before
    return {
        "entries": entries,
        "leader_cpu_ms_per_entry": 1000 * leader_cpu / max(1, entries),
        "all_cpu_ms_per_entry": 1000 * all_cpu / max(1, entries),
        "leader_appends_per_entry": frames / max(1, entries),
        "leader_sends_per_entry": (counter.calls - sends_before) / max(1, entries),
        "wall_s": time.perf_counter() - wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicas", type=int, default=20)
    parser.add_argument("--cycles", type=int, default=300)
    parser.add_argument("--per-tick", type=int, default=3)
    parser.add_argument("--entry-bytes", type=int, default=4096)
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    if min(args.replicas, args.per_tick - 1, args.cycles - 1, args.entry_bytes - 1, args.pairs - 1) < 0:
        parser.error("--replicas >= 0; --per-tick, --cycles, --entry-bytes, --pairs >= 1")
    voters = [f"127.0.0.1:{p}" for p in free_ports(3)]
    owner: Any = BridgeTestOwner()
    owner.config = SimpleNamespace(**vars(owner.config))
    conf = lambda: loopback_conf(password="raft-fanout-bench")  # noqa: E731
    nodes = [RaftBridge(owner, a, [v for v in voters if v != a], conf()) for a in voters]
    replicas = [RaftBridge(owner, None, voters, conf()) for _ in range(args.replicas)]
    everyone = nodes + replicas
    try:
        leader = elect_leader(nodes)
        followers = [so for so in everyone if so is not leader]
        deadline = time.monotonic() + 20
        while len(transport(leader)._connections) < len(everyone) - 1:  # every replica identified itself
            assert time.monotonic() < deadline, "the replicas did not connect"
            for so in everyone:
                so._onTick(0.0)
        counter = SendCounter(transport(leader))
        set_cork(everyone, True)
        run_phase(leader, followers, args, counter)  # warm-up (caches, the replicas catch up)
        results: dict[str, list[dict[str, float]]] = {"uncorked": [], "corked": []}
        for _ in range(args.pairs):
            for mode in ("uncorked", "corked"):
                set_cork(everyone, mode == "corked")
                SendCounter(transport(leader))  # connections made since (none expected) are counted too
                results[mode].append(run_phase(leader, followers, args, counter))
    finally:
        for so in everyone:
            so.destroy()
    summary: dict[str, Any] = {}
    for mode, phases in results.items():
        summary[mode] = {k: statistics.median(p[k] for p in phases) for k in phases[0]}
    base, new = summary["uncorked"], summary["corked"]
    out = {
        "args": vars(args),
        "load_1m_start": os.getloadavg()[0],
        "median": summary,
        "phases": results,
        "ratio_corked_to_uncorked": {
            k: new[k] / base[k] if base[k] else None
            for k in ("leader_cpu_ms_per_entry", "all_cpu_ms_per_entry", "leader_sends_per_entry")
        },
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
