"""Idle cost of a daemon: CPU % of a core, RSS and wakeups per second per idle process (JSON).

    python bench/idle.py [--nodes 20] [--seconds 60] [--name p2sc] [--subnet 10.39.0.0/16] [--keep]
                         [--parallel 8] [--strace-seconds 5]
    python bench/idle.py --raft-only [--seconds 30] [--tick-period-s 0.005]      # no root needed
    python bench/idle.py --nodes 3 --profile                   # + what wakes each daemon's trio thread

Sandbox mode (root): a sandbox of N hosts (own dockerd and daemon each), ``init`` + ``join`` over the
API sockets, ``--parallel`` joins at a time (0: one ``p2porch join`` CLI after another; per-join
latencies are reported), a settle period once every node is ready, then each daemon's CPU time
(``/proc/PID/stat`` utime+stime of all its threads), RSS and context switches are read at the start
and at the end of ``--seconds`` of idling.
The dockerd and containerd of every node are sampled in the same window and reported apart
(``engines``); ``--strace-seconds`` counts blocking syscalls per thread of n1 and of a replica.
Context switches per second per thread say what wakes the process (a thread that sleeps in a poll
with a timeout wakes once per timeout). ``--raft-only`` measures three bare store processes
(``python -m p2porch.raft.node``, the Raft part of a daemon) the same way on loopback.
``--profile`` runs the daemons with ``P2PORCH_PROFILE`` (``p2porch/wakeups.py``, a trio instrument) and
adds, per daemon, the wakeups per second and CPU % of each trio wakeup site in the window (the profiler
costs CPU of its own: measure the idle cost without it).
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
    rss_kb = anon_kb = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
        elif line.startswith("RssAnon:"):
            anon_kb = int(line.split()[1])
    pss_kb = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss_kb = int(line.split()[1])
    except OSError:
        pass
    threads: dict[str, int] = {}
    thread_cpu: dict[str, float] = {}
    names: dict[str, str] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
            stat = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        thread_cpu[task.name] = (int(stat[11]) + int(stat[12])) / TICKS
        # the thread's name (comm): trio names a worker thread after its job
        names[task.name] = status.split("\n", 1)[0].removeprefix("Name:").strip()
        # a voluntary switch is a sleep that ended: one wakeup
        voluntary = [line for line in status.splitlines() if line.startswith("voluntary_ctxt_switches:")]
        threads[task.name] = int(voluntary[0].split()[1]) if voluntary else 0
    return {
        "cpu_s": cpu_s,
        "rss_mb": rss_kb / 1024,
        "rss_anon_mb": anon_kb / 1024,
        "pss_mb": pss_kb / 1024,
        "threads": threads,
        "thread_cpu_s": thread_cpu,
        "thread_names": names,
        "at": time.monotonic(),
    }


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
        thread_pct = {
            tid: round(100 * (cpu - start["thread_cpu_s"].get(tid, 0.0)) / wall, 2)
            for tid, cpu in end["thread_cpu_s"].items()
        }
        per[name] = {
            "pid": pid,
            "cpu_pct_of_core": round(100 * (end["cpu_s"] - start["cpu_s"]) / wall, 2),
            "rss_mb": round(end["rss_mb"], 1),
            "rss_anon_mb": round(end["rss_anon_mb"], 1),
            "pss_mb": round(end["pss_mb"], 1),
            "threads": len(end["threads"]),
            "wakeups_per_s": round(sum(wakeups.values()), 1),
            "wakeups_per_s_by_thread": dict(sorted(wakeups.items(), key=lambda kv: -kv[1])[:6]),
            "cpu_pct_by_thread": dict(sorted(thread_pct.items(), key=lambda kv: -kv[1])[:6]),
            "thread_names": {
                tid: end["thread_names"].get(tid, "?") for tid in sorted(end["threads"], key=int)
            },
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


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (dockerd's containerd)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def strace_wakeups(pid: int, seconds: float) -> dict[str, Any]:
    """Blocking syscalls per thread of ``pid`` over ``seconds`` (what returns from a sleep = a wakeup)."""
    import re
    import shutil
    import subprocess

    strace = shutil.which("strace")
    if strace is None:
        return {"error": "strace not installed"}
    calls = "epoll_wait,epoll_pwait,poll,ppoll,select,pselect6,futex,clock_nanosleep,nanosleep,recvfrom,prctl"
    with tempfile.NamedTemporaryFile("r", prefix="p2sc-strace-") as out:
        proc = subprocess.Popen(
            [strace, "-f", "-qq", "-e", f"trace={calls}", "-o", out.name, "-p", str(pid)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(seconds)
        proc.terminate()
        proc.wait(timeout=10)
        counts: dict[str, int] = {}
        jobs: dict[str, int] = {}  # a trio worker thread names itself after each job it runs (prctl)
        for line in out.read().splitlines():
            match = re.match(r"^(\d+)\s+(\w+)\(", line)
            if match and "resumed" not in line:
                key = f"{match.group(1)}:{match.group(2)}"
                counts[key] = counts.get(key, 0) + 1
                named = re.search(r'PR_SET_NAME, "([^"]*)"', line)
                if named:
                    job = f"{match.group(1)}:{named.group(1)}"
                    jobs[job] = jobs.get(job, 0) + 1
    out_counts = {k: round(v / seconds, 1) for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:12]}
    return {**out_counts, "thread_names_set": dict(sorted(jobs.items(), key=lambda kv: -kv[1])[:20])}


def read_profiles(profile_dir: str, daemons: dict[str, int]) -> dict[str, Any]:
    """The wakeup profile each daemon last wrote (see p2porch/wakeups.py), by node name."""
    out = {}
    for node_name, pid in daemons.items():
        try:
            out[node_name] = json.loads(Path(profile_dir, f"{pid}.json").read_text())
        except (OSError, ValueError):
            continue
    return out


def run_sandbox(
    nodes: int,
    seconds: float,
    name: str,
    subnet: str,
    keep: bool,
    parallel: int,
    strace_s: float,
    profile_dir: str | None = None,
) -> dict[str, Any]:
    import benchkit

    from p2porch.sandbox.cluster import wait_ready
    from p2porch.sandbox.sandbox import Sandbox
    from p2porch.wakeups import ENV_EVERY, ENV_PATH, diff_reports

    if profile_dir is not None:  # inherited by every daemon the sandbox starts
        os.environ[ENV_PATH] = os.path.join(profile_dir, "{pid}.json")
        os.environ[ENV_EVERY] = "1"
    sb = Sandbox(name, subnet=subnet)
    out: dict[str, Any] = {}
    try:
        t0 = time.monotonic()
        hosts = sb.up(nodes)
        up_s = time.monotonic() - t0
        if parallel > 0:
            formation = benchkit.init_and_join(sb, hosts, parallel=parallel)
        else:
            formation = benchkit.init_and_join_cli(sb, hosts)
        ready_s = wait_ready(hosts[0], nodes, timeout_s=180)
        with benchkit.client(hosts[0]) as api:
            rows = {r["name"]: r for r in api.get("/nodes").json()}
            leader = (api.get("/status").json().get("cluster") or {}).get("leader")
        time.sleep(10.0)  # settle: gossip converged, agents' first reconcile done
        status = sb.ls()
        daemons = {s.node: s.daemon_pid for s in status if s.daemon_pid is not None}
        engines: dict[str, int] = {}
        for s in status:
            if s.dockerd_pid is not None:
                engines[f"{s.node}/dockerd"] = s.dockerd_pid
                for child in children_of(s.dockerd_pid):
                    engines[f"{s.node}/containerd-{child}"] = child
        if profile_dir is not None:
            time.sleep(1.5)  # one fresh report from every daemon
            profiles = read_profiles(profile_dir, daemons)
        both = idle_cost({**daemons, **engines}, seconds)
        if profile_dir is not None:
            time.sleep(1.5)
            ends = read_profiles(profile_dir, daemons)
            out["profiles"] = {n: diff_reports(profiles[n], ends[n]) for n in sorted(ends) if n in profiles}
        daemon_part = {k: v for k, v in both["processes"].items() if k in daemons}
        for node_name, figures in daemon_part.items():
            figures["role"] = rows.get(node_name, {}).get("raft_role")
        out = {**summarise(daemon_part), **out}
        out["seconds"] = seconds
        engine_part = {k: v for k, v in both["processes"].items() if k not in daemons}
        out["engines"] = summarise(engine_part)["summary"]
        if strace_s > 0:
            replica = next((n for n, r in rows.items() if r.get("raft_role") == "replica"), None)
            out["strace_wakeups_per_s"] = {
                n: strace_wakeups(daemons[n], strace_s) for n in ("n1", replica) if n in daemons
            }
        out["formation"] = {**formation.to_dict(), "ready_after_joins_s": round(ready_s, 2)}
        out["sandbox_up_s"] = round(up_s, 1)
        out["leader"] = leader
    finally:
        if not keep:
            sb.down()
    out["mode"] = "sandbox"
    out["nodes"] = nodes
    return out


def summarise(per: dict[str, Any]) -> dict[str, Any]:
    cpu = [p["cpu_pct_of_core"] for p in per.values()]
    rss = [p["rss_mb"] for p in per.values()]
    pss = [p.get("pss_mb", 0.0) for p in per.values()]
    return {
        "processes": per,
        "summary": {
            "cpu_pct_mean": round(statistics.fmean(cpu), 2),
            "cpu_pct_max": max(cpu),
            "cpu_pct_sum": round(sum(cpu), 2),
            "rss_mb_mean": round(statistics.fmean(rss), 1),
            "rss_mb_max": max(rss),
            "rss_mb_sum": round(sum(rss), 1),
            "pss_mb_mean": round(statistics.fmean(pss), 1),
            "targets": {"cpu_pct_max": 1.0, "rss_mb_max": 60.0},
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--name", default="p2sc")
    parser.add_argument("--subnet", default="10.39.0.0/16")
    parser.add_argument(
        "--parallel", type=int, default=8, help="joins in flight at once (0: sequential `p2porch join` CLIs)"
    )
    parser.add_argument("--strace-seconds", type=float, default=0.0, help="also strace n1 and a replica")
    parser.add_argument("--keep", action="store_true", help="leave the sandbox up")
    parser.add_argument("--raft-only", action="store_true", help="three bare store processes, no root")
    parser.add_argument("--tick-period-s", type=float, default=None, help="--raft-only: the Raft tick")
    parser.add_argument("--profile", action="store_true", help="profile each daemon's trio wakeups")
    args = parser.parse_args()
    if args.raft_only:
        result = run_raft_only(args.seconds, args.tick_period_s)
    else:
        with tempfile.TemporaryDirectory(prefix="p2sc-profile-") as profile_dir:
            result = run_sandbox(
                args.nodes,
                args.seconds,
                args.name,
                args.subnet,
                args.keep,
                args.parallel,
                args.strace_seconds,
                profile_dir if args.profile else None,
            )
    result["benchmark"] = "idle"
    result["machine"] = {"cpus": os.cpu_count(), "loadavg_1m": os.getloadavg()[0]}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
