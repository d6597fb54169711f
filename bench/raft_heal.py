"""Does every Raft node catch up after a partition heals? Seeded chaos on real store processes (root).

    python bench/raft_heal.py [--seeds 1,2,3 | --seeds 1-20] [--fault-s 30] [--bound-s 5]

Three voters (``python -m p2porch.raft.node``), each in its own network namespace ``p2rf-h<i>``
(10.63.0.<i+1>, bridge ``p2rf-hbr``). A writer makes sequential ``create`` writes through random
nodes, every fourth one with a 70 kB label (its Raft entry is over 64 KiB, so pysyncobj sends it as
a chunked transmission). Meanwhile a nemesis, one fault at a time, partitions a node (iptables DROP of
the Raft port inside its namespace, INPUT and OUTPUT, 3-8 s), pauses one (SIGSTOP/SIGCONT, 1-4 s) or
kills one (-9) and restarts it; targets are the leader or a follower; the last fault is always a
partition of a follower. The writer stops at the last heal (``--tail-s`` lets it go on), so only
heartbeats can bring the healed node up to date. Measured per
seed: seconds from the heal until every node holds every acknowledged write, and acknowledged writes
missing on the leader at the end ("lost"). Prints one JSON object; exit 1 if a seed missed the bound.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from p2porch.testing.raftprocs import ControlClient, LocalCluster, NodeProc  # noqa: E402

BRIDGE, SUBNET, PREFIX = "p2rf-hbr", "10.63.0", "p2rf-h"
LARGE_PAD = 70_000


def sh(*argv: str, check: bool = True) -> None:
    subprocess.run(argv, check=check, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@contextlib.contextmanager
def namespaces(n: int) -> Iterator[list[tuple[str, str]]]:
    """``n`` namespaces on one bridge that holds ``<subnet>.254`` (the harness reaches control ports)."""
    made: list[str] = []
    forward = ["iptables", "-w", "FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT"]
    try:
        sh("ip", "link", "add", BRIDGE, "type", "bridge")
        made.append(BRIDGE)
        sh("ip", "addr", "add", f"{SUBNET}.254/24", "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")
        sh(*forward[:2], "-I", *forward[2:3], "1", *forward[3:])
        out = []
        for i in range(n):
            ns = f"{PREFIX}{i}"
            sh("ip", "netns", "add", ns)
            made.append(ns)
            sh("ip", "link", "add", f"{ns}h", "type", "veth", "peer", "name", f"{ns}p")
            sh("ip", "link", "set", f"{ns}p", "netns", ns)
            sh("ip", "link", "set", f"{ns}h", "master", BRIDGE)
            sh("ip", "link", "set", f"{ns}h", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "addr", "add", f"{SUBNET}.{i + 1}/24", "dev", f"{ns}p")
            sh("ip", "-n", ns, "link", "set", f"{ns}p", "up")
            out.append((ns, f"{SUBNET}.{i + 1}"))
        yield out
    finally:
        sh(*forward[:2], "-D", *forward[2:], check=False)
        for name in reversed(made):
            if name == BRIDGE:
                sh("ip", "link", "del", BRIDGE, check=False)
            else:
                sh("ip", "netns", "del", name, check=False)
                sh("ip", "link", "del", f"{name}h", check=False)


def partition(ns: str, on: bool) -> None:
    """Drop (or stop dropping) every Raft packet in and out of ``ns``, as an operator's iptables would."""
    if not on:
        for chain in ("INPUT", "OUTPUT"):
            sh("ip", "netns", "exec", ns, "iptables", "-w", "-F", chain)
        return
    for chain in ("INPUT", "OUTPUT"):
        for side in ("--dport", "--sport"):
            port = str(LocalCluster.RAFT_PORT)
            sh(
                "ip",
                "netns",
                "exec",
                ns,
                "iptables",
                "-w",
                "-A",
                chain,
                "-p",
                "tcp",
                side,
                port,
                "-j",
                "DROP",
            )


class Writer(threading.Thread):
    """Sequential writes through random healthy nodes; records which were acknowledged."""

    def __init__(self, cluster: LocalCluster, rng: random.Random) -> None:
        super().__init__(daemon=True)
        self.cluster, self.rng = cluster, rng
        self.unavailable: set[str] = set()  # paused or killed: requests would hang
        self.lock = threading.Lock()
        self.acked: list[str] = []
        self.attempts = 0
        self.stop = threading.Event()
        self.clients: dict[str, ControlClient] = {}  # its own connections: never shared with the nemesis

    def call(self, node: NodeProc, **req: Any) -> dict[str, Any]:
        if node.name not in self.clients:
            self.clients[node.name] = ControlClient(node.control_port, timeout_s=6.0, host=node.control_host)
        try:
            return self.clients[node.name].call(**req)
        except (OSError, ConnectionError, ValueError):
            self.clients.pop(node.name).close()
            raise

    def run(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                nodes = [n for n in self.cluster.nodes if n.name not in self.unavailable and n.alive]
            if not nodes:
                time.sleep(0.05)
                continue
            node = self.rng.choice(nodes)
            sid = f"w{self.attempts}"
            pad = LARGE_PAD if self.attempts % 4 == 3 else 0
            self.attempts += 1
            try:
                answer = self.call(node, op="create", id=sid, pad=pad, timeout_s=3.0)
            except (OSError, ConnectionError, ValueError):
                continue
            if answer.get("ok"):
                self.acked.append(sid)


def services(node: NodeProc) -> set[str] | None:
    try:
        return set(node.call(op="services")["ids"])
    except (OSError, ConnectionError, ValueError, KeyError):
        node.drop_client()
        return None


def status(node: NodeProc) -> dict[str, Any]:
    try:
        return dict(node.call(op="status")["status"]) | {"raw": node.call(op="raw").get("raw")}
    except (OSError, ConnectionError, ValueError, KeyError):
        node.drop_client()
        return {}


def run_seed(
    seed: int,
    netns: list[tuple[str, str]],
    fault_s: float,
    bound_s: float,
    wait_s: float,
    tail_s: float = 0.0,
) -> dict[str, Any]:
    rng = random.Random(seed)
    root = Path(tempfile.mkdtemp(prefix=f"p2rf-heal-{seed}-"))
    cluster = LocalCluster(root, voters=3, netns=netns)
    faults: Counter[str] = Counter()
    try:
        cluster.start_all()
        for node in cluster.nodes:
            node.client().sock.settimeout(6.0)
        assert cluster.leader().call(op="init")["ok"]
        writer = Writer(cluster, random.Random(seed * 7919))
        writer.start()
        end = time.monotonic() + fault_s
        last = None
        while True:
            final = time.monotonic() >= end
            leader = cluster.leader(timeout_s=20)
            followers = [n for n in cluster.nodes if n is not leader]
            kind = "partition" if final else rng.choice(["partition", "partition", "pause", "kill"])
            target = rng.choice(followers) if final or rng.random() < 0.6 else leader
            role = "leader" if target is leader else "follower"
            faults[f"{kind}-{role}"] += 1
            if kind == "partition":
                partition(target.netns or "", True)
                time.sleep(rng.uniform(3.0, 8.0))
                partition(target.netns or "", False)
            elif kind == "pause":
                with writer.lock:
                    writer.unavailable.add(target.name)
                assert target.proc is not None
                os.kill(target.proc.pid, signal.SIGSTOP)
                time.sleep(rng.uniform(1.0, 4.0))
                os.kill(target.proc.pid, signal.SIGCONT)
                with writer.lock:
                    writer.unavailable.discard(target.name)
            else:
                with writer.lock:
                    writer.unavailable.add(target.name)
                cluster.kill(target)
                time.sleep(rng.uniform(0.5, 2.0))
                cluster.start(target)
                target.client().sock.settimeout(6.0)
                with writer.lock:
                    writer.unavailable.discard(target.name)
            if final:
                last = f"{kind}-{role} {target.name}"
                break
            time.sleep(rng.uniform(1.0, 3.0))
        healed = time.monotonic()
        time.sleep(tail_s)
        writer.stop.set()
        writer.join(timeout=10)
        acked = set(writer.acked)
        converge_s = None
        behind: dict[str, int] = {}
        while time.monotonic() - healed < wait_s:
            behind = {}
            for node in cluster.nodes:
                have = services(node)
                behind[node.name] = len(acked) if have is None else len(acked - have)
            if not any(behind.values()):
                converge_s = round(time.monotonic() - healed, 2)
                break
            time.sleep(0.1)
        leader = cluster.leader(timeout_s=20)
        lost = sorted(acked - (services(leader) or set()))
        result: dict[str, Any] = {
            "seed": seed,
            "writes": writer.attempts,
            "acked": len(acked),
            "large_acked": sum(1 for s in acked if int(s[1:]) % 4 == 3),
            "faults": dict(faults),
            "last_fault": last,
            "converge_s": converge_s,
            "ok": converge_s is not None and converge_s <= bound_s and not lost,
            "lost": len(lost),
        }
        if converge_s is None or converge_s > bound_s:
            result["behind"] = behind
            result["status"] = {n.name: status(n) for n in cluster.nodes}
            result["logs"] = {n.name: cluster.log_tail(n, 15) for n in cluster.nodes}
        return result
    finally:
        cluster.close()
        shutil.rmtree(root, ignore_errors=True)


def parse_seeds(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        seeds += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    return seeds


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench/raft_heal.py")
    parser.add_argument("--seeds", default="1-20", help="e.g. 1-20 or 3,5,8")
    parser.add_argument("--fault-s", type=float, default=30.0, help="length of the fault phase per seed")
    parser.add_argument("--bound-s", type=float, default=5.0, help="convergence bound after the last heal")
    parser.add_argument("--wait-s", type=float, default=30.0, help="how long to wait for a lagging node")
    parser.add_argument(
        "--tail-s", type=float, default=0.0, help="writes go on this long after the last heal"
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces, iptables)", file=sys.stderr)
        return 2
    runs = []
    with namespaces(3) as netns:
        for seed in parse_seeds(args.seeds):
            runs.append(run_seed(seed, netns, args.fault_s, args.bound_s, args.wait_s, args.tail_s))
            print(
                json.dumps({k: v for k, v in runs[-1].items() if k != "logs"}),
                file=sys.stderr,
            )
    times = [r["converge_s"] for r in runs if r["converge_s"] is not None]
    summary = {
        "benchmark": "raft_heal",
        "seeds": [r["seed"] for r in runs],
        "converged_within_bound": sum(1 for r in runs if r["ok"]),
        "runs": len(runs),
        "max_converge_s": max(times) if times else None,
        "acked_total": sum(r["acked"] for r in runs),
        "lost_total": sum(r["lost"] for r in runs),
        "faults_total": dict(sum((Counter(r["faults"]) for r in runs), Counter())),
        "runs_detail": runs,
    }
    print(json.dumps(summary, indent=1))
    return 0 if summary["converged_within_bound"] == len(runs) else 1


if __name__ == "__main__":
    sys.exit(main())
