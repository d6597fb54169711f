"""Join latency of a real sandbox: per join over the API and per phase from the daemons' logs (JSON).

    python bench/joins.py [--runs 10x1,20x8,10x1c] [--name p2jn] [--subnet 10.29.0.0/16]

Each run ``NxP`` brings up a fresh sandbox of N hosts (own dockerd and daemon each), runs ``init`` on n1
and joins the others through it, P at a time, over each host's API socket (``sandbox.cluster``); a run
``NxPc`` joins with one ``p2porch join`` CLI process per node instead (inside the node's namespace, as a
user runs it: interpreter start, the CLI's imports, the daemon check and the API call; each in a session
of its own, as a user's shell on its own node: see ``cli_formation``), P at a time, and reports the
CLI's wall time per join and its overhead over the daemon's own join time. ``--trace`` times each phase
of a CLI join (``bench/cli_trace.py``, lined up with the joiner's log); every run reports the CPU
seconds of the daemons, their children, the dockerds, the CLIs and the machine during the formation. Then it
reads every joiner's log line ``joined cluster ... in T s (admitted A, member services S, own record R)``
and, where the member logs it, its ``admission of NAME took ...`` line (queue and commit), and takes the
sandbox down. Reported per run: the API time of each join (p50 / max), each phase's p50 / max, the
formation time, the load average before it and every daemon's gossip packets and push/pulls (``gossip``,
from ``GET /status`` once the voters are in). Root; uses the sandbox name and subnet given (never
another helper's). The target of issue 19 is <= 0.5 s per join, joins in parallel.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import journal_entries
import proc_cpu

JOINED = re.compile(
    r"joined cluster \S+ as (?P<role>\w+) in (?P<total>[\d.]+) s \(admitted (?P<admitted>[\d.]+), "
    r"member services (?P<services>[\d.]+), own record (?P<record>[\d.]+)"
    r"(?:; before the handshake (?P<prepared>[\d.]+))?"
)
#: the log line's time (the daemon's human format, local time, ms)
LOG_TIME = re.compile(r"(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(?P<ms>\d{3}) ")
ADMISSION = re.compile(
    r"admission of (?P<name>\S+) took (?P<total>[\d.]+) s \(queued (?P<queued>[\d.]+), "
    r"commit (?P<commit>[\d.]+), batch of (?P<batch>\d+)\)"
)


def spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 3),
        "max": round(ordered[-1], 3),
        "min": round(ordered[0], 3),
    }


def p95(values: list[float]) -> float | None:
    """The nearest-rank 95th percentile (19 joins: the 19th value, i.e. the max)."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, -(-95 * len(ordered) // 100) - 1)], 3)


def read_log(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def phases_from_logs(logs: dict[str, str]) -> dict[str, Any]:
    """Per joiner: role and phases from its own log; per admission: the member's figures."""
    joiners: dict[str, dict[str, Any]] = {}
    admissions: dict[str, dict[str, Any]] = {}
    for name, text in logs.items():
        for match in JOINED.finditer(text):
            joiner: dict[str, Any] = {
                k: (v if k == "role" else float(v)) for k, v in match.groupdict().items() if v is not None
            }
            line_start = text.rfind("\n", 0, match.start()) + 1
            stamp = LOG_TIME.match(text, line_start)
            if stamp:  # wall clock of the "joined" line, to line up with the CLI's own marks
                when = time.mktime(time.strptime(stamp["ts"], "%Y-%m-%d %H:%M:%S"))
                joiner["t_joined"] = when + int(stamp["ms"]) / 1000
            joiners[name] = joiner
        for match in ADMISSION.finditer(text):
            admissions[match["name"]] = {k: float(v) for k, v in match.groupdict().items() if k != "name"}
    out: dict[str, Any] = {"joiners": joiners}
    for phase in ("total", "admitted", "services", "record"):
        out[phase] = spread([j[phase] for j in joiners.values()])
    for role in ("voter", "replica"):
        out[f"{role}_total"] = spread([j["total"] for j in joiners.values() if j["role"] == role])
    if admissions:
        out["member"] = {
            "queued": spread([a["queued"] for a in admissions.values()]),
            "commit": spread([a["commit"] for a in admissions.values()]),
            "batch": spread([a["batch"] for a in admissions.values()]),
        }
    return out


def cli_formation(
    sb: Any, hosts: list[Any], parallel: int, traces: dict[str, Any] | None = None, own_session: bool = True
) -> Any:
    """``init`` over n1's socket, then one ``p2porch join`` CLI per other node, ``parallel`` at a time;
    ``join_s`` is each CLI process's wall time (start to exit). With ``traces`` (a dict to fill) the CLI
    runs through ``bench/cli_trace.py`` and its marks land there per node, with the spawn and exit.

    ``own_session``: each CLI runs in a session of its own (``setsid``), as a user's shell on its own
    node would; the kernel's autogroup scheduling then gives it a share of the CPU of its own, as each
    sandbox daemon and dockerd has (they run in their own sessions). Without it the P CLIs share the
    bench's one share against 2N daemons and dockerds (the fifth round's figures)."""
    from concurrent.futures import ThreadPoolExecutor

    from p2porch.sandbox.cluster import Formation, _post

    started = time.monotonic()
    token = str(_post(hosts[0], "/cluster/init", {})["token"])
    formation = Formation(token=token, init_s=time.monotonic() - started)
    entry = ["-m", "p2porch"] if traces is None else [os.path.join(os.path.dirname(__file__), "cli_trace.py")]
    argv = [*(["setsid", "-w"] if own_session else []), sys.executable, *entry, "join", hosts[0].address]
    argv += ["--token", token]

    def join(host: Any) -> None:
        t0 = time.monotonic()
        spawned = time.time()
        done = sb.exec(host.name, argv, capture=True)
        exited = time.time()
        if done.returncode != 0:
            formation.failed[host.name] = done.stderr.decode(errors="replace").strip()[-300:]
            return
        formation.join_s[host.name] = time.monotonic() - t0
        if traces is not None:
            lines = [
                ln for ln in done.stderr.decode(errors="replace").splitlines() if ln.startswith('{"trace"')
            ]
            marks = json.loads(lines[-1])["trace"] if lines else {}
            traces[host.name] = {"t_spawn": spawned, "t_reaped": exited, **marks}

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        list(pool.map(join, hosts[1:]))
    formation.formed_s = time.monotonic() - started
    return formation


def api_formation(hosts: list[Any], parallel: int, marks: dict[str, Any]) -> Any:
    """``init`` over n1's socket, then every other node's join over its own API socket, ``parallel`` at a
    time (as ``sandbox.cluster.form_cluster``, without its pacing and retries); ``join_s`` is the time from
    the request's send to its answer, the client built before (not in it). ``marks`` gets each join's
    wall times ``t_send`` and ``t_recv``, to line up with the joiner's log (:func:`api_phases`)."""
    from concurrent.futures import ThreadPoolExecutor

    from p2porch.sandbox.cluster import Formation, _client, _post

    started = time.monotonic()
    token = str(_post(hosts[0], "/cluster/init", {})["token"])
    formation = Formation(token=token, init_s=time.monotonic() - started)

    def join(host: Any) -> None:
        with _client(host, 60.0) as client:
            t0, sent = time.monotonic(), time.time()
            response = client.post("/cluster/join", json={"peer": hosts[0].address, "token": token})
            received = time.time()
            if response.status_code >= 400:
                formation.failed[host.name] = response.text[-300:]
                return
            formation.join_s[host.name] = time.monotonic() - t0
            marks[host.name] = {"t_send": sent, "t_recv": received}

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        list(pool.map(join, hosts[1:]))
    formation.formed_s = time.monotonic() - started
    return formation


def joiner_role(phases: dict[str, Any], name: str) -> str | None:
    """The role ``name`` was admitted with, from its ``joined cluster ... as ROLE`` line."""
    role = phases["joiners"].get(name, {}).get("role")
    return str(role) if role is not None else None


def wait_voters(seed: Any, target: int, since: float, timeout_s: float = 60.0) -> float | None:
    """Seconds from ``since`` (monotonic) until ``seed``'s Raft configuration holds ``target`` voters
    (``GET /status``, every 0.1 s), or None if it did not within ``timeout_s``."""
    from p2porch.sandbox.cluster import _client

    deadline = time.monotonic() + timeout_s
    with _client(seed, 5.0) as client:
        while time.monotonic() < deadline:
            cluster = client.get("/status").json().get("cluster") or {}
            if len(cluster.get("voters") or ()) >= target:
                return round(time.monotonic() - since, 2)
            time.sleep(0.1)
    return None


GOSSIP_TALLY = ("udp_packets_in", "udp_packets_out", "udp_bytes_out", "pushpull_in", "pushpull_out")


def gossip_tally(hosts: list[Any]) -> dict[str, Any]:
    """Every daemon's gossip transport counters (``GET /status``), summed: what the formation (and the
    members' start before it) sent and received; a daemon that does not answer is left out."""
    from p2porch.sandbox.cluster import _client

    total: dict[str, Any] = dict.fromkeys(GOSSIP_TALLY, 0)
    pushpulls: dict[str, int] = {}
    for host in hosts:
        try:
            with _client(host, 5.0) as client:
                metrics = ((client.get("/status").json().get("cluster") or {}).get("gossip") or {}).get(
                    "metrics"
                ) or {}
        except Exception:  # a bench figure, never a failed run
            continue
        for key in GOSSIP_TALLY:
            total[key] += int(metrics.get(key, 0))
        pushpulls[host.name] = int(metrics.get("pushpull_out", 0))
    total["pushpull_out_by_node"] = pushpulls
    return total


def api_phases(
    marks: dict[str, Any], joiners: dict[str, Any], series: dict[str, list[tuple[float, int]]]
) -> dict[str, Any]:
    """Per phase of an API join (s, p50 / max over the joins), from the bench's send/receive marks and
    the joiner's "joined" line (ms): the request's way to the daemon's join handler (``to_handler``:
    the socket, hypercorn, the route; the log's ms rounding in it), the handler's work before the join
    handshake (``prepared``), the daemon's join (``daemon_join``: handshake and admission, member
    services, own record), and the answer's way back (``answer``: the rest of the handler, the
    response through hypercorn, the bench's read); with the joiner daemon's own CPU seconds in each
    (``*_cpu``, from the 50 ms samples: coarse)."""
    phases: dict[str, list[float]] = {}
    for name, m in marks.items():
        j = joiners.get(name, {})
        if "t_joined" not in j:
            continue
        joined = j["t_joined"] + 0.0005  # the log's ms truncated: its mid-point
        received = joined - j["total"] - j.get("prepared", 0.0)
        windows = {
            "to_handler": (m["t_send"], received),
            "prepared": (received, received + j.get("prepared", 0.0)),
            "daemon_join": (joined - j["total"], joined),
            "answer": (joined, m["t_recv"]),
        }
        samples = series.get(name, [])
        for phase, (start, end) in windows.items():
            phases.setdefault(phase, []).append(end - start)
            if samples:
                ticks = proc_cpu.ticks_between(samples, start, end)
                phases.setdefault(f"{phase}_cpu", []).append(ticks / proc_cpu.TICK)
    return {phase: spread(values) for phase, values in phases.items()}


def cpu_ticks(pid: int | None) -> tuple[int, int]:
    """(own, reaped children) CPU ticks of ``pid`` from /proc (0, 0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rpartition(")")[2].split()
    except (OSError, TypeError):
        return 0, 0
    return int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def machine_busy_ticks() -> int:
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    return sum(values) - values[3] - values[4]  # all but idle and iowait


def cpu_sample(sb: Any, hosts: list[Any]) -> dict[str, int]:
    """CPU ticks so far: the sandbox daemons (own; their reaped children: ip, iptables, ...), the
    dockerds, this bench's reaped children (the CLIs with nsenter) and the whole machine."""
    import resource

    from p2porch.sandbox.system import read_pid

    sample = {"daemons": 0, "daemon_children": 0, "dockerds": 0}
    for host in hosts:
        own, children = cpu_ticks(read_pid(host.p2porch_pidfile))
        sample["daemons"] += own
        sample["daemon_children"] += children
        sample["dockerds"] += sum(cpu_ticks(read_pid(host.dockerd.pidfile)))
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    sample["bench_children"] = round((usage.ru_utime + usage.ru_stime) * os.sysconf("SC_CLK_TCK"))
    sample["machine"] = machine_busy_ticks()
    return sample


def cpu_spent(before: dict[str, int], after: dict[str, int]) -> dict[str, float]:
    """CPU seconds per consumer between two samples; ``other``: the rest of the machine (containerd,
    the kernel's softirqs, other users)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {k: round((after[k] - before[k]) / tick, 2) for k in before}
    out["other"] = round(out["machine"] - sum(v for k, v in out.items() if k != "machine"), 2)
    return out


def process_roles(hosts: list[Any]) -> tuple[dict[int, str], dict[str, int]]:
    """Roles by pid for :func:`proc_cpu.attribute` (each node's daemon and dockerd, this bench) and
    the daemons' pids by node."""
    from p2porch.sandbox.system import read_pid

    roles: dict[int, str] = {os.getpid(): "bench"}
    daemons: dict[str, int] = {}
    for host in hosts:
        if pid := read_pid(host.p2porch_pidfile):
            roles[pid] = f"daemon {host.name}"
            daemons[host.name] = pid
        if pid := read_pid(host.dockerd.pidfile):
            roles[pid] = f"dockerd {host.name}"
    return roles, daemons


def by_kind(by_process: dict[str, float]) -> dict[str, float]:
    """Per-process CPU summed over the nodes (``daemon n7`` -> ``daemon``), n1's daemon kept apart
    (it is the leader and admits every join)."""
    out: dict[str, float] = {}
    for role, seconds in by_process.items():
        kind = role if role.startswith("daemon n1 ") or role == "daemon n1" else re.sub(r" n\d+\b", "", role)
        out[kind] = round(out.get(kind, 0.0) + seconds, 2)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def daemon_split(by_node: dict[str, dict[str, float]]) -> dict[str, Any]:
    """The daemons' CPU by part: before their own join (idle), while joining (the joiner's own work,
    from the API call's arrival to its "joined" line), after it (a member reacting to later joins; n1
    all member), summed, and per node."""
    totals = {
        part: round(sum(n[part] for n in by_node.values()), 2) for part in ("before", "joining", "member")
    }
    return {"total": totals, "nodes": by_node}


def trace_phases(traces: dict[str, Any], joiners: dict[str, Any]) -> dict[str, Any]:
    """Per phase of a CLI join (s, p50 / max over the joins): spawn to the script's first line
    (nsenter, interpreter, site), the CLI's imports, argument parsing and body to the request, the
    daemon's API and lock before its join clock starts, the daemon's join, the answer back to the CLI,
    the CLI's exit; and the CLI process's own CPU."""
    phases: dict[str, list[float]] = {}
    for name, t in traces.items():
        j = joiners.get(name, {})
        if not {"t_main", "t_imported", "t_send", "t_recv", "t_exit"} <= t.keys() or "t_joined" not in j:
            continue
        received = j["t_joined"] - j["total"] - j.get("prepared", 0.0)
        for phase, value in (
            ("start", t["t_main"] - t["t_spawn"]),
            ("imports", t["t_imported"] - t["t_main"]),
            ("to_request", t["t_send"] - t["t_imported"]),
            ("to_handler", received - t["t_send"]),
            ("prepared", j.get("prepared", 0.0)),
            ("daemon_join", j["total"]),
            ("answer", t["t_recv"] - j["t_joined"]),
            ("exit", t["t_reaped"] - t["t_recv"]),
            ("cli_cpu", t["cpu_s"]),
        ):
            phases.setdefault(phase, []).append(value)
    return {phase: spread(values) for phase, values in phases.items()}


class Profiled:
    """With a directory: py-spy on the daemons of n1 (the member every join goes through), n2 (an
    early joiner: a member for the rest) and the last node (a late joiner), or the nodes ``SPY_NODES``
    names (comma-separated), and ``strace -f -e
    trace=execve`` on n3's daemon (its children per join), from enter to exit; nothing without one."""

    def __init__(self, sb: Any, hosts: list[Any], out_dir: str, run: str) -> None:
        self.sb, self.hosts, self.out = sb, hosts, os.path.join(out_dir, run) if out_dir else ""
        self.spy: Any = None
        self.strace: Any = None

    def __enter__(self) -> Profiled:
        if not self.out:
            return self
        import subprocess

        from spy_profile import PhaseProfile

        from p2porch.sandbox.system import read_pid

        os.makedirs(self.out, exist_ok=True)
        pids = {h.name: read_pid(h.p2porch_pidfile) for h in self.hosts}
        chosen = set(filter(None, os.environ.get("SPY_NODES", "").split(","))) or {
            "n1",
            "n2",
            self.hosts[-1].name,
        }
        picked = {n: pid for n, pid in pids.items() if n in chosen and pid}
        self.spy = PhaseProfile(Path(self.out), picked).__enter__()
        traced = pids.get("n3")
        if traced:
            log = os.path.join(self.out, "n3.execve")
            cmd = ["strace", "-f", "-qq", "-e", "trace=execve", "-o", log, "-p", str(traced)]
            self.strace = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.strace is not None:
            self.strace.terminate()
            self.strace.wait(timeout=10)
        if self.spy is not None:
            self.spy.__exit__(*exc)


JOURNAL_SETTLE_S = 2.0  # after the last join: its ready mark and voter change commit


def leader_journal(host: Any, joins: int) -> dict[str, Any]:
    """The entries of ``host``'s Raft journal (n1: it initialised the cluster and leads it), per join
    (``bench/journal_entries.py``); empty when it is not found."""
    import glob

    found = glob.glob(os.path.join(host.p2porch_data_dir, "**", "raft.journal"), recursive=True)
    if not found:
        return {}
    with open(found[0], "rb") as handle:
        return journal_entries.summary(handle.read(), joins)


def one_run(
    name: str,
    subnet: str,
    nodes: int,
    parallel: int,
    logs_dir: str = "",
    cli: bool = False,
    trace: bool = False,
    own_session: bool = True,
    profile_dir: str = "",
    linger_s: float = 0.0,
) -> dict[str, Any]:
    from p2porch.sandbox.sandbox import Sandbox

    sb = Sandbox(name, subnet=subnet)
    try:
        t0 = time.monotonic()
        hosts = sb.up(nodes)
        up_s = time.monotonic() - t0
        time.sleep(3.0)  # the daemons' own start-up settles before the clock starts
        load = os.getloadavg()[0]
        roles, daemons = process_roles(hosts)
        procs_before = proc_cpu.snapshot(daemons.values())
        cpu_before = cpu_sample(sb, hosts)
        traces: dict[str, Any] | None = {} if trace else None
        marks: dict[str, Any] = {}  # API joins: each one's send and answer (wall clock)
        with Profiled(sb, hosts, profile_dir, f"{nodes}x{parallel}{'c' if cli else ''}"):
            formation_started = time.monotonic()
            with proc_cpu.Sampler(daemons) as sampler:
                formation = (
                    cli_formation(sb, hosts, parallel, traces, own_session)
                    if cli
                    else api_formation(hosts, parallel, marks)
                )
            formed_at = time.time()
            load_after = os.getloadavg()[0]
            cpu = cpu_spent(cpu_before, cpu_sample(sb, hosts))
            procs_after = proc_cpu.snapshot(daemons.values())
            # the configured voters (raft.voters 3, voters_large 5 from large_cluster_nodes 7 nodes)
            target_voters = min(5 if nodes >= 7 else 3, nodes)
            voters_s = wait_voters(hosts[0], target_voters, formation_started)
            gossip = gossip_tally(hosts)  # right after the formation, before the settle
            time.sleep(max(linger_s, JOURNAL_SETTLE_S))  # e.g. past the members' heap trim (20 s)
            raft_log = leader_journal(hosts[0], len(hosts) - 1)
        logs = {h.name: read_log(h.p2porch_log) for h in hosts}
        if logs_dir:
            run_dir = os.path.join(logs_dir, f"{nodes}x{parallel}{'c' if cli else ''}")
            os.makedirs(run_dir, exist_ok=True)
            for host, text in logs.items():
                with open(os.path.join(run_dir, f"{host}.log"), "w", encoding="utf-8") as handle:
                    handle.write(text)
    finally:
        sb.down()
    if formation.failed:
        raise RuntimeError(f"{nodes} nodes, {parallel} at a time: joins failed: {formation.failed}")
    api = formation.to_dict()
    phases = phases_from_logs(logs)
    over = [api["join_s"][n] - j["total"] for n, j in phases["joiners"].items() if n in api["join_s"]]
    by_process = proc_cpu.attribute(procs_before, procs_after, roles)
    # processes that started and exited in between whose parent is gone too, interrupts: the machine's rest
    by_process["unattributed"] = round(cpu["machine"] - sum(by_process.values()), 2)
    windows = {
        n: (j["t_joined"] - j["total"] - j.get("prepared", 0.0), j["t_joined"])
        for n, j in phases["joiners"].items()
        if "t_joined" in j
    }
    by_node = proc_cpu.split_by_join(sampler.series, windows, formed_at)
    return {
        "nodes": nodes,
        "parallel": parallel,
        "via": ("cli" + ("" if own_session else ", one shared session")) if cli else "api",
        "load_before": round(load, 2),
        "load_after": round(load_after, 2),
        "sandbox_up_s": round(up_s, 1),
        "formed_s": api["formed_s"],
        "target_voters": target_voters,
        "voters_s": voters_s,  # from init's start until n1's Raft configuration had them all
        "cpu_s": cpu,  # CPU seconds during the formation, per consumer
        "cpu_by_kind_s": by_kind(by_process),  # the same per process kind (n1 apart), whole machine
        "cpu_by_process_s": by_process,  # per process (by pid; a daemon/dockerd by node), whole machine
        "cpu_by_thread_s": proc_cpu.thread_cpu(procs_before, procs_after),  # the daemons' threads, by name
        "daemon_cpu_by_join_s": daemon_split(by_node),  # each daemon before/while/after its own join
        "retries": api["retries"],
        "join_api_s": spread(list(formation.join_s.values())),
        "join_p95_s": p95(list(formation.join_s.values())),
        "join_api_by_role_s": {  # the role each joiner was admitted with (its own log line)
            role: spread([s for n, s in api["join_s"].items() if joiner_role(phases, n) == role])
            for role in ("voter", "replica")
        },
        "join_api_each_s": api["join_s"],
        "caller_overhead_s": spread(over),  # the caller's wall time above the daemon's own join time
        "phases": phases,
        "gossip": gossip,  # every daemon's gossip packets and push/pulls until the voters were in
        "raft_log": raft_log,  # n1's journal after the formation: entries and bytes, per join, by command
        **({"cli_phases": trace_phases(traces, phases["joiners"]), "cli_traces": traces} if traces else {}),
        **({"api_phases": api_phases(marks, phases["joiners"], sampler.series)} if marks else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--runs", default="10x1,20x8", help="NODESxPARALLEL[c],... (one fresh sandbox each; c: CLI joins)"
    )
    parser.add_argument("--name", default="p2jn")
    parser.add_argument("--subnet", default="10.29.0.0/16")
    parser.add_argument("--label", default="", help="a name for this tree in the output")
    parser.add_argument("--logs", default="", help="keep every daemon's log here (DIR/NODESxPARALLEL/)")
    parser.add_argument(
        "--trace", action="store_true", help="CLI runs: time each phase of a join (bench/cli_trace.py)"
    )
    parser.add_argument(
        "--shared-session",
        action="store_true",
        help="CLI runs: all CLIs in the bench's session (one CPU share between them), as before",
    )
    parser.add_argument(
        "--profile",
        default="",
        help="py-spy n1, n2 and the last node, strace n3's children, into DIR/NODESxPARALLEL/",
    )
    parser.add_argument(
        "--linger", type=float, default=0.0, help="keep the sandbox up this long after the formation"
    )
    args = parser.parse_args()
    runs = []
    for spec in args.runs.split(","):
        nodes_text, _, parallel_text = spec.partition("x")
        cli = parallel_text.endswith("c")
        parallel_text = parallel_text.removesuffix("c")
        if not nodes_text.isdigit() or not parallel_text.isdigit():
            parser.error(f"--runs: {spec!r} is not NODESxPARALLEL[c]")
        runs.append((int(nodes_text), int(parallel_text), cli))
    import p2porch

    out = {
        "label": args.label,
        "code": os.path.dirname(os.path.dirname(p2porch.__file__)),
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "runs": [
            one_run(
                args.name,
                args.subnet,
                n,
                p,
                args.logs,
                cli,
                args.trace,
                not args.shared_session,
                args.profile,
                args.linger,
            )
            for n, p, cli in runs
        ],
    }
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
