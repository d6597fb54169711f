"""Idle cost of a daemon: CPU % of a core, RSS and wakeups per second per idle process (JSON).

    python bench/idle.py [--nodes 20] [--seconds 60] [--name p2sc] [--subnet 10.39.0.0/16] [--keep]
                         [--parallel 8] [--strace-seconds 5] [--serf]
    python bench/idle.py --raft-only [--seconds 30] [--tick-period-s 0.005]      # no root needed
                         [--voters 3] [--replicas 0] [--write-every-ms MS] [--strace-seconds 5]
    python bench/idle.py --nodes 3 --profile                   # + what wakes each daemon's trio thread

Sandbox mode (root): a sandbox of N hosts (own dockerd and daemon each), ``init`` + ``join`` over the
API sockets, ``--parallel`` joins at a time (0: one ``p2porch join`` CLI after another; per-join
latencies are reported), a settle period once every node is ready, then each daemon's CPU time
(``/proc/PID/stat`` utime+stime of all its threads), RSS and context switches are read at the start
and at the end of ``--seconds`` of idling.
The dockerd and containerd of every node are sampled in the same window and reported apart
(``engines``); ``--strace-seconds`` counts blocking syscalls per thread of n1 and of a replica.
Context switches per second per thread say what wakes the process (a thread that sleeps in a poll
with a timeout wakes once per timeout). ``--raft-only`` measures bare store processes
(``python -m p2porch.raft.node``, the Raft part of a daemon: ``--voters``, ``--replicas``) the same way on
loopback; ``--write-every-ms`` adds a second window of ``--seconds`` under a steady write load (one
``create_service`` on the leader every MS), and ``--strace-seconds`` counts the leader's blocking syscalls
per thread in the idle window's last seconds (its Raft thread's ``poll`` returns are its ticks).
Each process's CPU and wakeups are also summed by thread name (``cpu_pct_by_name``: the Raft thread,
started from a trio worker, is named ``RaftStore from``; the trio thread is the process's own name),
and ``by_role`` gives leader / voter / replica figures.
The baseline measured in the same window is every node's Docker engine (``engines``: dockerd and its
containerd), and with ``--serf`` a HashiCorp Serf agent per sandbox host (``serf agent -profile=lan``,
encrypted, joined to n1's, on port 17946 of the host's address: gossip only, where a daemon gossips at
the faster ``fast_lan`` rate and also runs Raft, DNS and an agent). ``baseline`` names what was measured.
``--profile`` runs the daemons with ``P2PORCH_PROFILE`` (``p2porch/wakeups.py``, a trio instrument) and
adds, per daemon, the wakeups per second and CPU % of each trio wakeup site in the window (the profiler
costs CPU of its own: measure the idle cost without it).
Prints one JSON object; the targets of issue 19 are <= 1 % of a core and <= 60 MB RSS per daemon.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TICKS = os.sysconf("SC_CLK_TCK")
RAFT_THREAD = "RaftStore"  # the Raft thread's name: it inherits the trio worker's that opened the store
SERF_PORT, SERF_RPC = 17946, "127.0.0.1:17373"  # beside the daemon's gossip on 7946


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
        names = end["thread_names"]
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
            "thread_names": {tid: names.get(tid, "?") for tid in sorted(end["threads"], key=int)},
            # by thread name: the Raft thread is "RaftStore from", the trio thread the process's name
            "cpu_pct_by_name": by_name(thread_pct, names),
            "wakeups_per_s_by_name": by_name(wakeups, names),
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


def by_name(per_thread: dict[str, float], names: dict[str, str]) -> dict[str, float]:
    """Per-thread figures summed by thread name, largest first."""
    out: dict[str, float] = {}
    for tid, value in per_thread.items():
        out[names.get(tid, "?")] = out.get(names.get(tid, "?"), 0.0) + value
    return {k: round(v, 2) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}


def by_role(per: dict[str, Any]) -> dict[str, Any]:
    """CPU % of a core, wakeups/s and RSS per Raft role (each process's ``role``): mean, min, max, and
    the Raft thread's CPU and wakeups (its ``RaftStore from`` entries) averaged over the role."""
    roles: dict[str, list[dict[str, Any]]] = {}
    for figures in per.values():
        roles.setdefault(figures.get("role") or "unknown", []).append(figures)
    out: dict[str, Any] = {}
    for role, procs in sorted(roles.items()):
        cpu = [p["cpu_pct_of_core"] for p in procs]
        raft_cpu = [
            sum(v for k, v in p["cpu_pct_by_name"].items() if k.startswith(RAFT_THREAD)) for p in procs
        ]
        raft_wake = [
            sum(v for k, v in p["wakeups_per_s_by_name"].items() if k.startswith(RAFT_THREAD)) for p in procs
        ]
        out[role] = {
            "processes": len(procs),
            "cpu_pct_mean": round(statistics.fmean(cpu), 2),
            "cpu_pct_min": min(cpu),
            "cpu_pct_max": max(cpu),
            "wakeups_per_s_mean": round(statistics.fmean(p["wakeups_per_s"] for p in procs), 1),
            "raft_thread_cpu_pct_mean": round(statistics.fmean(raft_cpu), 2),
            "raft_thread_wakeups_per_s_mean": round(statistics.fmean(raft_wake), 1),
            "rss_mb_max": max(p["rss_mb"] for p in procs),
        }
    return out


def write_steadily(
    call: Callable[..., dict[str, Any]], every_s: float, stop: threading.Event
) -> dict[str, Any]:
    """``create_service`` through ``call`` every ``every_s`` (on a fixed schedule) until ``stop``;
    how many, and their latency."""
    latencies: list[float] = []
    failed = 0
    due = time.monotonic()
    while not stop.wait(max(0.0, due - time.monotonic())):
        due += every_s
        t0 = time.perf_counter()
        try:
            ok = bool(call(op="create", id=f"idle-w{len(latencies) + failed}")["ok"])
        except (OSError, ValueError, KeyError):  # a timeout or a dropped control connection
            ok = False
        if ok:
            latencies.append(time.perf_counter() - t0)
        else:
            failed += 1
    return {
        "writes": len(latencies),
        "failed": failed,
        "every_ms": round(every_s * 1000, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 2) if latencies else None,
        "max_ms": round(1000 * max(latencies), 2) if latencies else None,
    }


def run_raft_only(
    seconds: float,
    tick_period_s: float | None,
    voters: int = 3,
    replicas: int = 0,
    write_every_ms: float = 0.0,
    strace_s: float = 0.0,
) -> dict[str, Any]:
    from p2porch.testing.raftprocs import LocalCluster

    extra = () if tick_period_s is None else ("--tick-period-s", str(tick_period_s))
    with tempfile.TemporaryDirectory(prefix="p2sc-idle-") as root:
        cluster = LocalCluster(Path(root), voters=voters, replicas=replicas, extra_args=extra)
        try:
            cluster.start_all()
            leader = cluster.leader()
            assert leader.call(op="init")["ok"]
            commit = leader.call(op="status")["status"]["commit_index"]
            deadline = time.monotonic() + 60.0
            while time.monotonic() < deadline:  # settle: every store holds init and the configuration
                if all(n.call(op="status")["status"]["last_applied"] >= commit for n in cluster.nodes):
                    break
                time.sleep(0.2)
            time.sleep(3.0)  # and the commit's own traffic is over
            pids = {n.name: n.proc.pid for n in cluster.nodes if n.proc is not None}
            roles = {
                n.name: "leader" if n is leader else "voter" if n.raft_addr else "replica"
                for n in cluster.nodes
            }
            out = idle_cost(pids, seconds)
            for name, figures in out["processes"].items():
                figures["role"] = roles[name]
            out["by_role"] = by_role(out["processes"])
            if strace_s > 0:
                out["strace_wakeups_per_s"] = {leader.name: strace_wakeups(pids[leader.name], strace_s)}
            if write_every_ms > 0:
                stop = threading.Event()
                writes: dict[str, Any] = {}
                writer = threading.Thread(
                    target=lambda: writes.update(write_steadily(leader.call, write_every_ms / 1000, stop))
                )
                writer.start()
                try:
                    time.sleep(1.0)  # the load is steady before the window
                    loaded = idle_cost(pids, seconds)
                finally:
                    stop.set()
                    writer.join()
                for name, figures in loaded["processes"].items():
                    figures["role"] = roles[name]
                loaded["by_role"] = by_role(loaded["processes"])
                out["under_writes"] = {**loaded, "writes": writes}
        finally:
            cluster.close()
    out["mode"] = "raft-only"
    out["tick_period_s"] = tick_period_s
    out["baseline"] = "none: the stores alone (compare --tick-period-s runs, or another tree's)"
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


STRACE_CALL = re.compile(r"^(\d+)\s+(\w+)\(")
# a poll-like call that returned 0: its timeout ran out (strace adds "(Timeout)" for some of them)
STRACE_END = re.compile(
    r"^(\d+)\s+(?:<\.\.\. (\w*poll\w*|\w*select\d*) resumed>|(\w*poll\w*|\w*select\d*)\()"
    r".*\)\s+=\s+0(?: \(Timeout\))?$"
)


def count_strace(lines: list[str]) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """From ``strace -f`` lines: calls per ``TID:call``, those that returned at their timeout (a timer
    woke the thread, not an event), and the names trio workers gave themselves (``TID:name``)."""
    counts: dict[str, int] = {}
    timeouts: dict[str, int] = {}
    jobs: dict[str, int] = {}  # a trio worker thread names itself after each job it runs (prctl)
    for line in lines:
        match = STRACE_CALL.match(line)
        if match and "resumed" not in line:
            key = f"{match.group(1)}:{match.group(2)}"
            counts[key] = counts.get(key, 0) + 1
            named = re.search(r'PR_SET_NAME, "([^"]*)"', line)
            if named:
                job = f"{match.group(1)}:{named.group(1)}"
                jobs[job] = jobs.get(job, 0) + 1
        ended = STRACE_END.match(line)
        if ended:
            key = f"{ended.group(1)}:{ended.group(2) or ended.group(3)}"
            timeouts[key] = timeouts.get(key, 0) + 1
    return counts, timeouts, jobs


def strace_wakeups(pid: int, seconds: float) -> dict[str, Any]:
    """Blocking syscalls per thread of ``pid`` over ``seconds`` (what returns from a sleep = a wakeup), and
    how many of them per second ended at their timeout (``timeouts_per_s``)."""
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
        counts, timeouts, jobs = count_strace(out.read().splitlines())

    def per_s(found: dict[str, int], top: int) -> dict[str, float]:
        return {k: round(v / seconds, 1) for k, v in sorted(found.items(), key=lambda kv: -kv[1])[:top]}

    return {
        **per_s(counts, 12),
        "timeouts_per_s": per_s(timeouts, 8),
        "thread_names_set": dict(sorted(jobs.items(), key=lambda kv: -kv[1])[:20]),
    }


def read_profiles(profile_dir: str, daemons: dict[str, int]) -> dict[str, Any]:
    """The wakeup profile each daemon last wrote (see p2porch/wakeups.py), by node name."""
    out = {}
    for node_name, pid in daemons.items():
        try:
            out[node_name] = json.loads(Path(profile_dir, f"{pid}.json").read_text())
        except (OSError, ValueError):
            continue
    return out


class SerfAgents:
    """A Serf agent per sandbox host, the idle baseline beside the daemons: owns their processes (started
    in the hosts' namespaces, joined to the first host's, stopped by pid); never touches a daemon."""

    def __init__(self, hosts: list[Any], secrets_dir: Path) -> None:
        import base64
        import secrets

        self.hosts = hosts
        self.config = secrets_dir / "serf.json"  # encrypted, as the daemons' gossip always is
        self.config.write_text(
            json.dumps({"encrypt_key": base64.b64encode(secrets.token_bytes(32)).decode()})
        )
        self.config.chmod(0o600)
        self.procs: dict[str, Any] = {}

    def start(self) -> None:
        import subprocess

        seed = f"{self.hosts[0].address}:{SERF_PORT}"
        for host in self.hosts:
            cmd = [
                "ip", "netns", "exec", host.netns, "serf", "agent", f"-node={host.name}",
                f"-bind={host.address}:{SERF_PORT}", f"-rpc-addr={SERF_RPC}", "-profile=lan",
                "-log-level=err", f"-config-file={self.config}", f"-retry-join={seed}", "-retry-interval=1s",
            ]  # fmt: skip
            self.procs[host.name] = subprocess.Popen(
                cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )

    def alive_seen_by(self, host: Any) -> int:
        import subprocess

        argv = ["ip", "netns", "exec", host.netns, "serf", "members", "-format=json", f"-rpc-addr={SERF_RPC}"]
        out = subprocess.run(argv, capture_output=True, text=True, check=False)
        if out.returncode:
            return 0
        return sum(m["status"] == "alive" for m in json.loads(out.stdout).get("members", []))

    def wait_converged(self, timeout_s: float) -> float | None:
        """Seconds until every agent sees every host alive; None on timeout."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            if all(self.alive_seen_by(h) == len(self.hosts) for h in self.hosts):
                return round(time.monotonic() - t0, 1)
            time.sleep(1.0)
        return None

    def pids(self) -> dict[str, int]:
        return {f"{name}/serf": proc.pid for name, proc in self.procs.items()}

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except Exception:  # noqa: BLE001 (a stuck agent: kill it by its pid)
                proc.kill()
                proc.wait()
        self.procs.clear()


def run_sandbox(
    nodes: int,
    seconds: float,
    name: str,
    subnet: str,
    keep: bool,
    parallel: int,
    strace_s: float,
    profile_dir: str | None = None,
    serf: bool = False,
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
    serf_dir = tempfile.TemporaryDirectory(prefix="p2sc-serf-")
    agents: SerfAgents | None = None
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
        if serf:
            agents = SerfAgents(hosts, Path(serf_dir.name))
            agents.start()
            out["serf_converged_s"] = agents.wait_converged(60.0)
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
        serf_pids = agents.pids() if agents is not None else {}
        both = idle_cost({**daemons, **engines, **serf_pids}, seconds)
        if profile_dir is not None:
            time.sleep(1.5)
            ends = read_profiles(profile_dir, daemons)
            out["profiles"] = {n: diff_reports(profiles[n], ends[n]) for n in sorted(ends) if n in profiles}
        daemon_part = {k: v for k, v in both["processes"].items() if k in daemons}
        for node_name, figures in daemon_part.items():
            figures["role"] = rows.get(node_name, {}).get("raft_role")
        out = {**summarise(daemon_part), **out}
        out["by_role"] = by_role(daemon_part)
        out["seconds"] = seconds
        engine_part = {k: v for k, v in both["processes"].items() if k in engines}
        out["engines"] = summarise(engine_part)["summary"]
        out["baseline"] = "engines: every node's dockerd and containerd in the same window"
        if serf_pids:
            serf_part = {k: v for k, v in both["processes"].items() if k in serf_pids}
            out["serf"] = summarise(serf_part)["summary"]
            out["baseline"] += (
                "; serf: a Serf agent per host (-profile=lan, encrypted), idle in the same window"
            )
        if strace_s > 0:
            replica = next((n for n, r in rows.items() if r.get("raft_role") == "replica"), None)
            out["strace_wakeups_per_s"] = {
                n: strace_wakeups(daemons[n], strace_s) for n in ("n1", replica) if n in daemons
            }
        out["formation"] = {**formation.to_dict(), "ready_after_joins_s": round(ready_s, 2)}
        out["sandbox_up_s"] = round(up_s, 1)
        out["leader"] = leader
    finally:
        if agents is not None:
            agents.stop()
        serf_dir.cleanup()
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
    parser.add_argument("--raft-only", action="store_true", help="bare store processes, no root")
    parser.add_argument("--tick-period-s", type=float, default=None, help="--raft-only: the Raft tick")
    parser.add_argument("--profile", action="store_true", help="profile each daemon's trio wakeups")
    parser.add_argument("--serf", action="store_true", help="sandbox: a Serf agent per host, the baseline")
    parser.add_argument("--voters", type=int, default=3, help="--raft-only: voter stores")
    parser.add_argument("--replicas", type=int, default=0, help="--raft-only: read-only replica stores")
    parser.add_argument(
        "--write-every-ms",
        type=float,
        default=0.0,
        help="--raft-only: a second window under a write every MS",
    )
    args = parser.parse_args()
    if args.serf and shutil.which("serf") is None:
        parser.error("--serf: the serf binary is not installed (Debian package serf)")
    if args.voters < 1 or args.replicas < 0 or args.write_every_ms < 0:
        parser.error("--voters must be >= 1, --replicas and --write-every-ms >= 0")
    if args.raft_only:
        result = run_raft_only(
            args.seconds,
            args.tick_period_s,
            args.voters,
            args.replicas,
            args.write_every_ms,
            args.strace_seconds,
        )
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
                args.serf,
            )
    result["benchmark"] = "idle"
    result["machine"] = {"cpus": os.cpu_count(), "loadavg_1m": os.getloadavg()[0]}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
