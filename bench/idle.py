"""Idle cost of a daemon: CPU % of a core, RSS and wakeups per second per idle process (JSON).

    python bench/idle.py [--nodes 5] [--seconds 60] [--name p2sc] [--subnet 10.39.0.0/24] [--keep]
    python bench/idle.py --raft-only [--seconds 30] [--tick-period-s 0.005]      # no root needed

Sandbox mode (root): a sandbox of N hosts (own dockerd and daemon each), ``init`` + ``join``, a settle
period until every node is ready, then each daemon's CPU time (``/proc/PID/stat`` utime+stime of all
its threads), RSS and context switches are read at the start and at the end of ``--seconds`` of idling.
Context switches per second per thread say what wakes the process (a thread that sleeps in a poll
with a timeout wakes once per timeout). ``--raft-only`` measures three bare store processes
(``python -m p2porch.raft.node``, the Raft part of a daemon) the same way on loopback.
Prints one JSON object; the targets of issue 19 are <= 1 % of a core and <= 60 MB RSS per daemon.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TICKS = os.sysconf("SC_CLK_TCK")


def proc_sample(pid: int) -> dict[str, Any]:
    """CPU seconds, RSS and per-thread context switches of one process, now."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu_s = (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14, 15 of stat(5))
    rss_kb = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
    threads: dict[str, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except OSError:
            continue
        # a voluntary switch is a sleep that ended: one wakeup
        voluntary = [line for line in status.splitlines() if line.startswith("voluntary_ctxt_switches:")]
        threads[task.name] = int(voluntary[0].split()[1]) if voluntary else 0
    return {"cpu_s": cpu_s, "rss_mb": rss_kb / 1024, "threads": threads, "at": time.monotonic()}


def idle_cost(pids: dict[str, int], seconds: float) -> dict[str, Any]:
    """Sample every pid, idle ``seconds``, sample again; per-process and summary figures."""
    first = {name: proc_sample(pid) for name, pid in pids.items()}
    time.sleep(seconds)
    per: dict[str, Any] = {}
    for name, pid in pids.items():
        end, start = proc_sample(pid), first[name]
        wall = end["at"] - start["at"]
        wakeups = {
            tid: round((n - start["threads"].get(tid, 0)) / wall, 1) for tid, n in end["threads"].items()
        }
        per[name] = {
            "pid": pid,
            "cpu_pct_of_core": round(100 * (end["cpu_s"] - start["cpu_s"]) / wall, 2),
            "rss_mb": round(end["rss_mb"], 1),
            "threads": len(end["threads"]),
            "wakeups_per_s": round(sum(wakeups.values()), 1),
            "wakeups_per_s_by_thread": dict(sorted(wakeups.items(), key=lambda kv: -kv[1])[:6]),
        }
    cpu = [p["cpu_pct_of_core"] for p in per.values()]
    rss = [p["rss_mb"] for p in per.values()]
    return {
        "seconds": seconds,
        "processes": per,
        "summary": {
            "cpu_pct_mean": round(statistics.fmean(cpu), 2),
            "cpu_pct_max": max(cpu),
            "rss_mb_mean": round(statistics.fmean(rss), 1),
            "rss_mb_max": max(rss),
            "targets": {"cpu_pct_max": 1.0, "rss_mb_max": 60.0},
        },
    }


def run_raft_only(seconds: float, tick_period_s: float | None) -> dict[str, Any]:
    from p2porch.testing.raftprocs import LocalCluster

    extra = () if tick_period_s is None else ("--tick-period-s", str(tick_period_s))
    with tempfile.TemporaryDirectory(prefix="p2sc-idle-") as root:
        cluster = LocalCluster(Path(root), voters=3, extra_args=extra)
        try:
            cluster.start_all()
            assert cluster.leader().call(op="init")["ok"]
            time.sleep(2.0)  # settle: elections, first heartbeats
            pids = {n.name: n.proc.pid for n in cluster.nodes if n.proc is not None}
            out = idle_cost(pids, seconds)
        finally:
            cluster.close()
    out["mode"] = "raft-only"
    out["tick_period_s"] = tick_period_s
    return out


def run_sandbox(nodes: int, seconds: float, name: str, subnet: str, keep: bool) -> dict[str, Any]:
    import benchkit

    from p2porch.sandbox.sandbox import Sandbox

    sb = Sandbox(name, subnet=subnet)
    try:
        hosts = sb.up(nodes)
        t0 = time.monotonic()
        benchkit.init_and_join(sb, hosts)
        formed_s = time.monotonic() - t0
        with benchkit.client(hosts[0]) as api:

            def ready() -> bool:
                rows = api.get("/nodes").json()
                return len(rows) == nodes and all(r["status"] == "ready" and r["subnet"] for r in rows)

            benchkit.wait_until(ready, 120, "every node ready", 0.2)
        time.sleep(10.0)  # settle: gossip converged, agents' first reconcile done
        pids = {s.node: s.daemon_pid for s in sb.ls() if s.daemon_pid is not None}
        out = idle_cost(pids, seconds)
        out["formed_s"] = round(formed_s, 2)
    finally:
        if not keep:
            sb.down()
    out["mode"] = "sandbox"
    out["nodes"] = nodes
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--name", default="p2sc")
    parser.add_argument("--subnet", default="10.39.0.0/24")
    parser.add_argument("--keep", action="store_true", help="leave the sandbox up")
    parser.add_argument("--raft-only", action="store_true", help="three bare store processes, no root")
    parser.add_argument("--tick-period-s", type=float, default=None, help="--raft-only: the Raft tick")
    args = parser.parse_args()
    if args.raft_only:
        result = run_raft_only(args.seconds, args.tick_period_s)
    else:
        result = run_sandbox(args.nodes, args.seconds, args.name, args.subnet, args.keep)
    result["benchmark"] = "idle"
    result["machine"] = {"cpus": os.cpu_count(), "loadavg_1m": os.getloadavg()[0]}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
