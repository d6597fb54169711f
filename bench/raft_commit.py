"""Raft commit benchmark: p2porch's store vs a 3-member etcd cluster, same machine, same run.

    python bench/raft_commit.py [--writes N] [--concurrent-writes M] [--skip-etcd]
                                [--spaced MS,... [--spaced-writes K]]

Three store processes (python -m p2porch.raft.node) and three etcd members on loopback. The client is
this process for both systems: one persistent connection per writer thread (our JSON-lines control
port; etcd's v3 JSON gateway over HTTP keep-alive with httpx). Each write is one new key/object.
Measured: commit latency p50/p99 with one writer issued on the leader and on a non-leader, and
commits/s with 1 and 16 concurrent writers on the leader. ``--spaced`` adds, per gap, ``--spaced-writes``
writes one at a time with that gap before each (on the leader, then on a non-leader), and the three store
processes' CPU seconds over them: a join's 1-2 entries a few hundred ms apart, or after a quiet second
(the Raft tick's pacing after a commit, raft/pacer.py). Our store groups proposals that arrive while
a Raft entry is in flight into the next entry (group commit); etcd batches proposals the same way.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from p2porch.testing.raftprocs import ControlClient, LocalCluster, free_ports  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0


def run_writers(
    make_writer: Callable[[int], Callable[[int], None]], total: int, writers: int
) -> dict[str, Any]:
    """``writers`` threads share ``total`` writes; returns latency percentiles (ms) and commits/s."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(total))

    def body(w: int) -> None:
        write = make_writer(w)
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            t0 = time.perf_counter()
            try:
                write(i)
            except Exception as exc:  # noqa: BLE001 - a benchmark reports errors, it does not stop
                with lock:
                    errors.append(repr(exc)[:200])
                continue
            with lock:
                latencies.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=body, args=(w,)) for w in range(writers)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    return {
        "writes": len(latencies),
        "errors": len(errors),
        "first_errors": errors[:3],
        "p50_ms": round(pct(latencies, 0.50), 3) if latencies else None,
        "p99_ms": round(pct(latencies, 0.99), 3) if latencies else None,
        "mean_ms": round(statistics.fmean(latencies) * 1000, 3) if latencies else None,
        "commits_per_s": round(len(latencies) / elapsed, 1),
    }


# --- p2porch ------------------------------------------------------------------------------------


def process_cpu_s(pids: list[int]) -> float:
    """CPU seconds (user + system) of ``pids`` so far, from /proc (a gone process counts 0)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def spaced_writes(write: Callable[[int], None], count: int, gap_s: float, pids: list[int]) -> dict[str, Any]:
    """``count`` writes one at a time, each after ``gap_s`` of quiet; latency (ms) and the processes' CPU
    seconds per write, the gaps included (what the stores spend between sparse commits)."""
    latencies: list[float] = []
    cpu_before = process_cpu_s(pids)
    for i in range(count):
        time.sleep(gap_s)
        t0 = time.perf_counter()
        write(i)
        latencies.append(time.perf_counter() - t0)
    cpu_s = process_cpu_s(pids) - cpu_before
    return {
        "writes": count,
        "gap_ms": round(gap_s * 1000),
        "p50_ms": round(pct(latencies, 0.50), 3),
        "max_ms": round(max(latencies) * 1000, 3),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 3),
        "stores_cpu_ms_per_write": round(cpu_s * 1000 / count, 2),
    }


def bench_p2porch(
    root: Path, writes: int, concurrent_writes: int, spaced_ms: Sequence[int] = (), spaced_count: int = 20
) -> dict[str, Any]:
    cluster = LocalCluster(root / "p2porch", voters=3)
    try:
        cluster.start_all()
        leader = cluster.leader()
        assert leader.call(op="init")["ok"]
        follower = next(n for n in cluster.voters() if n is not leader)
        out: dict[str, Any] = {}

        def writer_on(node: Any, tag: str) -> Callable[[int], Callable[[int], None]]:
            def make(w: int) -> Callable[[int], None]:
                client = ControlClient(node.control_port, timeout_s=30)

                def write(i: int) -> None:
                    answer = client.call(op="create", id=f"{tag}-{w}-{i}", timeout_s=10)
                    if not answer.get("ok"):
                        raise RuntimeError(answer)

                return write

            return make

        run_writers(writer_on(leader, "warm"), 50, 1)
        pids = [n.proc.pid for n in cluster.voters() if n.proc is not None]
        for gap_ms in spaced_ms:
            for node, where in ((leader, "leader"), (follower, "non_leader")):
                write = writer_on(node, f"s{where}{gap_ms}")(0)
                out[f"{where}_spaced_{gap_ms}ms"] = spaced_writes(write, spaced_count, gap_ms / 1000, pids)
        out["leader_1_writer"] = run_writers(writer_on(leader, "l1"), writes, 1)
        out["non_leader_1_writer"] = run_writers(writer_on(follower, "f1"), writes, 1)
        out["leader_16_writers"] = run_writers(writer_on(leader, "l16"), concurrent_writes, 16)
        # the same loads driven inside the leader process (no client round trip): the store's own cost
        for name, count, conc in (
            ("in_process_1_writer", writes, 1),
            ("in_process_16_writers", concurrent_writes, 16),
        ):
            client = ControlClient(leader.control_port, timeout_s=120)
            r = client.call(op="bench", count=count, concurrency=conc, prefix=name)
            client.close()
            lat = r["latencies_s"]
            out[name] = {
                "writes": len(lat),
                "p50_ms": round(pct(lat, 0.5), 3),
                "p99_ms": round(pct(lat, 0.99), 3),
                "commits_per_s": round(len(lat) / r["elapsed_s"], 1),
            }
        status = leader.call(op="status")["status"]
        out["raft_entries"] = status["commit_index"]
        out["state_version"] = status["state_version"]
        return out
    finally:
        cluster.close()


# --- etcd ---------------------------------------------------------------------------------------


class EtcdCluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        ports = free_ports(6)
        self.client_urls = [f"http://127.0.0.1:{p}" for p in ports[:3]]
        self.peer_urls = [f"http://127.0.0.1:{p}" for p in ports[3:]]
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        initial = ",".join(f"e{i}={u}" for i, u in enumerate(self.peer_urls))
        for i in range(3):
            log = open(self.root / f"etcd{i}.log", "wb")  # noqa: SIM115
            self.procs.append(
                subprocess.Popen(
                    [
                        "etcd",
                        "--name", f"e{i}",
                        "--data-dir", str(self.root / f"etcd{i}"),
                        "--listen-client-urls", self.client_urls[i],
                        "--advertise-client-urls", self.client_urls[i],
                        "--listen-peer-urls", self.peer_urls[i],
                        "--initial-advertise-peer-urls", self.peer_urls[i],
                        "--initial-cluster", initial,
                        "--initial-cluster-state", "new",
                        "--initial-cluster-token", "p2rf-bench",
                    ],
                    stdout=log,
                    stderr=log,
                )
            )  # fmt: skip
            log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                if self.leader_index() is not None:
                    return
            time.sleep(0.2)
        raise RuntimeError("etcd did not elect a leader")

    def status(self, i: int) -> dict[str, Any]:
        r = httpx.post(f"{self.client_urls[i]}/v3/maintenance/status", json={}, timeout=2)
        return r.json()  # type: ignore[no-any-return]

    def leader_index(self) -> int | None:
        for i in range(3):
            s = self.status(i)
            if s.get("leader") and s["leader"] == s["header"]["member_id"]:
                return i
        return None

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=10)


def bench_etcd(root: Path, writes: int, concurrent_writes: int) -> dict[str, Any]:
    (root / "etcd").mkdir()
    etcd = EtcdCluster(root / "etcd")
    try:
        etcd.start()
        li = etcd.leader_index()
        assert li is not None
        fi = (li + 1) % 3

        def writer_on(i: int, tag: str) -> Callable[[int], Callable[[int], None]]:
            def make(w: int) -> Callable[[int], None]:
                client = httpx.Client(base_url=etcd.client_urls[i], timeout=30)
                value = base64.b64encode(json.dumps({"n": 1}).encode()).decode()

                def write(n: int) -> None:
                    key = base64.b64encode(f"/services/{tag}-{w}-{n}".encode()).decode()
                    r = client.post("/v3/kv/put", json={"key": key, "value": value})
                    r.raise_for_status()

                return write

            return make

        run_writers(writer_on(li, "warm"), 50, 1)
        return {
            "leader_1_writer": run_writers(writer_on(li, "l1"), writes, 1),
            "non_leader_1_writer": run_writers(writer_on(fi, "f1"), writes, 1),
            "leader_16_writers": run_writers(writer_on(li, "l16"), concurrent_writes, 16),
        }
    finally:
        etcd.close()


def ratio(a: float | None, b: float | None) -> float | None:
    return None if not a or not b else round(a / b, 3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writes", type=int, default=500, help="writes per single-writer phase")
    parser.add_argument("--concurrent-writes", type=int, default=3000, help="writes in the 16-writer phase")
    parser.add_argument("--skip-etcd", action="store_true")
    parser.add_argument("--spaced", default="", help="gaps in ms: writes one at a time after that quiet")
    parser.add_argument("--spaced-writes", type=int, default=20, help="writes per --spaced gap and node")
    args = parser.parse_args()
    try:
        spaced = [int(ms) for ms in args.spaced.split(",") if ms]
    except ValueError:
        parser.error(f"--spaced: {args.spaced!r} is not a list of milliseconds")
    root = Path(tempfile.mkdtemp(prefix="p2rf-bench-"))
    try:
        ours = bench_p2porch(root, args.writes, args.concurrent_writes, spaced, args.spaced_writes)
        result: dict[str, Any] = {
            "benchmark": "raft_commit",
            "machine": {"cpus": os.cpu_count(), "loadavg_1m": os.getloadavg()[0]},
            "p2porch": ours,
            "notes": "client = this process over loopback for both; p2porch groups concurrent proposals into "
            "one Raft entry (group commit), as etcd does; both fsync every entry before acknowledging",
        }
        if not args.skip_etcd and shutil.which("etcd"):
            theirs = bench_etcd(root, args.writes, args.concurrent_writes)
            result["etcd"] = theirs
            result["ratios_p2porch_over_etcd"] = {
                phase: {
                    "p50_latency": ratio(ours[phase]["p50_ms"], theirs[phase]["p50_ms"]),
                    "p99_latency": ratio(ours[phase]["p99_ms"], theirs[phase]["p99_ms"]),
                    "commits_per_s": ratio(ours[phase]["commits_per_s"], theirs[phase]["commits_per_s"]),
                }
                for phase in ("leader_1_writer", "non_leader_1_writer", "leader_16_writers")
            }
        else:
            result["etcd"] = None
        result["machine"]["loadavg_1m_end"] = os.getloadavg()[0]
        print(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
