"""A voter's memory over an hour: RSS, PSS and the collector, with and without gc_freeze (JSON lines).

    python bench/raft_rss_hours.py [--nodes 500] [--tasks 50000] [--minutes 50] [--out FILE]

Two 3-voter clusters of store processes (``python -m p2porch.raft.node`` on loopback), started at the
same time: ``freeze`` runs the daemon's settings (``gc_freeze.py``: the survivors of a full collection
that took >= 50 ms are frozen), ``no_freeze`` the same with ``--no-gc-freeze``. Both get the same state
through Raft and the real FSM (``gc_state.build_commands``: nodes joined with leases, services of 100
replicas placed by the leader's pure round and reported RUNNING), under the shared lock
(``/tmp/p2porch-integration.lock``, ``flock``) while it is written; then the lock is released and the
clusters idle with a light churn: every ``--churn-s`` one node's tasks reported RUNNING again (every
record of that node replaced) and every ``--compact-min`` minutes a log compaction on every voter.
Every ``--sample-s`` each voter's ``/proc/PID/smaps_rollup`` (RSS, PSS, anonymous), its CPU seconds and
its collector (``{"op": "gc"}``: objects per generation, frozen objects, freezes, collections) are
printed as one JSON line (and appended to ``--out``); the last line is a summary per arm: RSS first,
last, max and the slope after the warm-up (MB per hour, least squares over the samples).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import gc_state  # noqa: E402

from p2porch.model import TaskState  # noqa: E402
from p2porch.raft import commands as C  # noqa: E402
from p2porch.testing.raftprocs import LocalCluster  # noqa: E402

LOCK = "/tmp/p2porch-integration.lock"
ARMS = {"freeze": (), "no_freeze": ("--no-gc-freeze",)}


def memory(pid: int) -> dict[str, float]:
    """RSS, PSS and anonymous MB of ``pid`` (smaps_rollup) and its CPU seconds (utime + stime)."""
    out: dict[str, float] = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss", "Anonymous"):
                out[key.lower() + "_mb"] = round(int(rest.split()[0]) / 1024, 1)
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    out["cpu_s"] = round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 2)
    return out


def replay(cluster: LocalCluster, cmds: list[C.Command]) -> None:
    """Every command through the leader's control port, in order; each must commit and be accepted."""
    leader = cluster.leader()
    for cmd in cmds:
        if isinstance(cmd, C.PutTasks) and cmd.expected_version is not None:
            cmd = C.PutTasks(at=cmd.at, items=cmd.items)  # the store's own writes moved the version
        answer = leader.call(op="propose", cmd=cmd.encode().hex(), timeout_s=30)
        if not answer.get("ok") or not answer["result"].get("ok"):
            raise RuntimeError(f"{type(cmd).__name__} refused: {answer}")


def churn_command(by_node: dict[str, list[str]], rng: random.Random, at: float) -> C.ReportTaskStates:
    """One node's tasks reported RUNNING as of ``at``: every record of that node replaced."""
    node_id = rng.choice(sorted(by_node))
    reports = tuple(
        C.TaskStatusReport(t, state=TaskState.RUNNING, state_at=at, container_id=t) for t in by_node[node_id]
    )
    return C.ReportTaskStates(at=at, node_id=node_id, reports=reports)


def slope_mb_per_h(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MB) points, in MB per hour."""
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    if sxx == 0:
        return None
    return round(sum((p[0] - mx) * (p[1] - my) for p in points) / sxx * 3600, 2)


def series(points: list[tuple[float, dict[str, Any]]], warmup_s: float) -> dict[str, Any]:
    """One process's samples ``(t_s, figures)``: RSS first, last and max, the RSS and PSS slopes after
    ``warmup_s``, and its last CPU seconds and collector figures."""
    rss = [(t, f["rss_mb"]) for t, f in points]
    pss = [(t, f["pss_mb"]) for t, f in points]
    return {
        "rss_first_mb": rss[0][1],
        "rss_last_mb": rss[-1][1],
        "rss_max_mb": max(r for _, r in rss),
        "rss_slope_mb_h": slope_mb_per_h([p for p in rss if p[0] >= warmup_s]),
        "pss_slope_mb_h": slope_mb_per_h([p for p in pss if p[0] >= warmup_s]),
        "cpu_s": points[-1][1]["cpu_s"],
        "gc": points[-1][1].get("gc"),
    }


def summary(samples: list[dict[str, Any]], warmup_s: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for arm in ARMS:
        names = sorted(samples[0]["arms"][arm]) if samples else []
        out[arm] = {
            name: series(
                [(s["t_s"], s["arms"][arm][name]) for s in samples if name in s["arms"][arm]], warmup_s
            )
            for name in names
        }
    return out


def emit(record: dict[str, Any], out: Path | None) -> None:
    line = json.dumps(record)
    print(line, flush=True)
    if out is not None:
        with open(out, "a") as f:
            f.write(line + "\n")


def sampling_parser() -> argparse.ArgumentParser:
    """The arguments both RSS benchmarks take: how long, how often, the warm-up, the output, the lock."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=50.0)
    parser.add_argument("--sample-s", type=float, default=60.0)
    parser.add_argument("--warmup-s", type=float, default=300.0, help="left out of the slopes")
    parser.add_argument("--out", type=Path, default=None, help="append every JSON line here too")
    parser.add_argument("--no-lock", action="store_true", help="start without the shared lock")
    return parser


def main() -> None:
    parser = sampling_parser()
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--tasks", type=int, default=50000)
    parser.add_argument("--churn-s", type=float, default=10.0)
    parser.add_argument("--compact-min", type=float, default=10.0)
    args = parser.parse_args()

    cmds, state = gc_state.build_commands(args.nodes, args.tasks)
    by_node: dict[str, list[str]] = {}
    for task in state.tasks.values():
        if task.node_id is not None:
            by_node.setdefault(task.node_id, []).append(task.task_id)
    del state
    rng = random.Random(1)
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="p2el-rss-")))
        lock = None if args.no_lock else stack.enter_context(open(LOCK, "a"))  # noqa: SIM115
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        t_built = time.monotonic()
        clusters: dict[str, LocalCluster] = {}
        for arm, extra in ARMS.items():
            cluster = LocalCluster(tmp / arm, voters=3, extra_args=extra, die_with_parent=True)
            stack.callback(cluster.close)
            cluster.start_all()
            clusters[arm] = cluster
        for cluster in clusters.values():
            replay(cluster, cmds)
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_UN)  # from here on the clusters idle: no lock
        emit(
            {
                "built": True,
                "commands": len(cmds),
                "tasks": args.tasks,
                "build_s": time.monotonic() - t_built,
            },
            args.out,
        )
        t0 = time.monotonic()
        samples: list[dict[str, Any]] = []
        next_sample = next_churn = next_compact = t0
        while (now := time.monotonic()) - t0 <= args.minutes * 60:
            if now >= next_churn:
                cmd = churn_command(by_node, rng, at=time.time()).encode().hex()
                for cluster in clusters.values():
                    cluster.leader().call(op="propose", cmd=cmd, timeout_s=30)
                next_churn += args.churn_s
            if now >= next_compact and now > t0:
                for cluster in clusters.values():
                    for node in cluster.voters():
                        node.call(op="compact")
            if now >= next_compact:
                next_compact += args.compact_min * 60
            if now >= next_sample:
                sample: dict[str, Any] = {"t_s": round(now - t0, 1), "load": os.getloadavg()[0], "arms": {}}
                for arm, cluster in clusters.items():
                    sample["arms"][arm] = {
                        node.name: memory(node.proc.pid) | {"gc": node.call(op="gc")["gc"]}
                        for node in cluster.voters()
                        if node.proc is not None
                    }
                samples.append(sample)
                emit(sample, args.out)
                next_sample += args.sample_s
            time.sleep(max(0.0, min(next_churn, next_sample) - time.monotonic()))
        emit({"summary": summary(samples, args.warmup_s), "samples": len(samples)}, args.out)


if __name__ == "__main__":
    main()
