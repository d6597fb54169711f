"""Idle daemons' memory over an hour, several trees side by side, with heap snapshots (root; JSON lines).

    python bench/idle_rss_arms.py --arm before:p2rsa:10.51.0.0/24:/work/main \\
        --arm after:p2rsb:10.51.1.0/24: [--trace before] [--snap-min 5,25,45] [--minutes 45] [--out F]

Each ``--arm NAME:SANDBOX:SUBNET:TREE`` is a 3-node sandbox (own dockerd and daemon per node) whose
daemons run the p2porch of ``TREE`` (``PYTHONPATH``; empty: this checkout), formed one arm after the
other under the shared lock (``/tmp/p2porch-integration.lock``); then the lock is released and every
arm idles in the same window. Every ``--sample-s`` each daemon's RSS, PSS, anonymous MB, brk heap MB
(``[heap]``: the main arena) and CPU seconds are printed as one JSON line (and appended to ``--out``).
The daemons of a ``--trace`` arm run with the heap tracing aid (``P2PORCH_TRACEMALLOC``,
``p2porch/memtrace.py``; it costs memory of its own, so a traced arm's RSS is not a baseline): at each
``--snap-min`` minute every one gets ``SIGUSR2`` and its snapshot is kept; the last lines compare each
daemon's first snapshot with every later one by traceback (top ``--top`` growths) and the summary per
daemon (first, last and max RSS, slopes after ``--warmup-s``, MB per hour). Sandboxes are removed at
the end (also on failure), under the lock again.

Each sample also splits every daemon's resident memory by mapping (``maps``: the brk heap, file-backed,
the main stack, anonymous in all, and each anonymous mapping of at least 64 KB resident by its start
address, so that two samples tell which one grew) and counts its threads. ``--env NAME:KEY=VALUE``
adds a variable to one arm's daemons (``PYTHONMALLOC=malloc``: no obmalloc arenas, every object from
glibc). Every daemon runs with ``P2PORCH_MALLOC_STATS`` (``p2porch/memtrace.py``; the arm's tree must
have it): at each ``--stats-min`` minute and at the end it gets ``SIGUSR2`` and its glibc ``malloc_info``
and ``sys._debugmallocstats()`` totals are printed (``mallocstats`` lines).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchkit  # noqa: E402
from raft_rss_hours import LOCK, emit, memory, series  # noqa: E402

from p2porch.memtrace import ENV_FRAMES, ENV_PATH, ENV_STATS  # noqa: E402
from p2porch.sandbox.cluster import wait_ready  # noqa: E402
from p2porch.sandbox.sandbox import Sandbox  # noqa: E402

NODES = 3


@dataclass
class Arm:
    name: str
    sandbox: str
    subnet: str
    tree: str
    traced: bool = False
    env: dict[str, str] = field(default_factory=dict)
    daemons: dict[str, int] = field(default_factory=dict)  # node -> daemon pid


def parse_arm(text: str) -> Arm:
    name, sandbox, subnet, tree = text.split(":", 3)
    return Arm(name, sandbox, subnet, tree)


def brk_heap_mb(pid: int) -> float:
    """RSS of the process's ``[heap]`` mapping (glibc's main arena, grown by brk), MB."""
    rss_kb, in_heap = 0, False
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and not fields[0].endswith(":"):
            in_heap = len(fields) > 5 and fields[5] == "[heap]"
        elif in_heap and fields and fields[0] == "Rss:":
            rss_kb += int(fields[1])
    return round(rss_kb / 1024, 1)


def mappings(pid: int) -> dict[str, Any]:
    """Resident KB of ``pid`` by kind of mapping (``smaps``) and each anonymous mapping >= 64 KB resident
    (``anon_by_start``: start address -> KB), with the thread count."""
    kinds = {"heap": 0, "file": 0, "stack": 0, "anon": 0}
    big: dict[str, int] = {}
    start, kind = "", "anon"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and not fields[0].endswith(":"):
            start = fields[0].split("-")[0]
            name = fields[5] if len(fields) > 5 else ""
            default = "file" if name.startswith("/") else "anon"
            kind = {"[heap]": "heap", "[stack]": "stack"}.get(name, default)
        elif fields and fields[0] == "Rss:":
            kb = int(fields[1])
            kinds[kind] += kb
            if kind == "anon" and kb >= 64:
                big[start] = kb
    threads = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            threads = int(line.split()[1])
    return {"kb": kinds, "threads": threads, "anon_by_start": big}


def malloc_stats_all(arm: Arm, snap_dir: Path, label: str, out: Path | None) -> None:
    """SIGUSR2 to every daemon of ``arm``; prints its allocators' totals once written (``memtrace.py``)."""
    from p2porch.memtrace import malloc_totals, pymalloc_totals

    for node, pid in arm.daemons.items():
        prefix = snap_dir / arm.name / f"{pid}.stats"
        text = Path(f"{prefix}.pymalloc.txt")
        before = text.stat().st_mtime_ns if text.exists() else 0
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGUSR2)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (text.exists() and text.stat().st_mtime_ns != before):
            time.sleep(0.2)
        if not text.exists() or text.stat().st_mtime_ns == before:
            emit({"mallocstats": f"{arm.name}/{node}", "at": label, "error": "not written"}, out)
            continue
        shutil.copy(text, f"{text}.{label}")
        xml = Path(f"{prefix}.malloc.xml")
        glibc = malloc_totals(xml.read_text()) if xml.exists() else {}
        if xml.exists():
            shutil.copy(xml, f"{xml}.{label}")
        record = {
            "mallocstats": f"{arm.name}/{node}",
            "at": label,
            "glibc": glibc,
            "pymalloc": pymalloc_totals(text.read_text()),
            "maps": mappings(pid),
        }
        census = Path(f"{prefix}.garbage.json")  # P2PORCH_GC_CENSUS=1 (``--env``): written right after
        deadline = time.monotonic() + 30
        while "P2PORCH_GC_CENSUS" in arm.env and time.monotonic() < deadline:
            after = Path(f"{prefix}.after.pymalloc.txt")
            if after.exists() and after.stat().st_mtime_ns >= text.stat().st_mtime_ns:
                record["census"] = json.loads(census.read_text())
                record["pymalloc_after"] = pymalloc_totals(after.read_text())
                shutil.copy(census, f"{census}.{label}")
                break
            time.sleep(0.2)
        emit(record, out)


def take_down(sb: Sandbox, kept: Any) -> None:
    """``sb.down()`` unless ``kept()``."""
    if not kept():
        sb.down()


def arm_environment(arm: Arm, snap_dir: Path, frames: int) -> dict[str, str]:
    """The variables the arm's daemons start with (restored by the caller)."""
    env = {"PYTHONPATH": arm.tree} if arm.tree else {}
    env |= {ENV_STATS: str(snap_dir / arm.name / "{pid}.stats")} | arm.env
    if arm.traced:
        env |= {ENV_PATH: str(snap_dir / arm.name / "{pid}.snap"), ENV_FRAMES: str(frames)}
    return env


def bring_up(sb: Sandbox, arm: Arm, snap_dir: Path, frames: int) -> None:
    """Form the arm's 3-node cluster with its tree (and tracing) in the daemons' environment."""
    (snap_dir / arm.name).mkdir(parents=True, exist_ok=True)
    saved, cwd = dict(os.environ), os.getcwd()
    os.environ.update(arm_environment(arm, snap_dir, frames))
    if arm.tree:
        os.chdir(arm.tree)  # ``python -m`` puts the working directory before PYTHONPATH on sys.path
    try:
        hosts = sb.up(NODES)
        benchkit.init_and_join(sb, hosts)
        wait_ready(hosts[0], NODES, timeout_s=180)
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(saved)
    arm.daemons = {s.node: s.daemon_pid for s in sb.ls() if s.daemon_pid is not None}


def snapshot_all(arm: Arm, snap_dir: Path, label: str) -> None:
    """SIGUSR2 to every traced daemon; its snapshot is copied to ``PID.snap.LABEL`` once written."""
    for pid in arm.daemons.values():
        path = snap_dir / arm.name / f"{pid}.snap"
        before = path.stat().st_mtime_ns if path.exists() else 0
        os.kill(pid, signal.SIGUSR2)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if path.exists() and path.stat().st_mtime_ns != before:
                time.sleep(0.5)  # the module list is written right after the snapshot
                shutil.copy(path, f"{path}.{label}")
                break
            time.sleep(0.2)


def compare(first: Path, later: Path, top: int) -> list[dict[str, Any]]:
    """The ``top`` largest growths from ``first`` to ``later``, by traceback (innermost frames last)."""
    import tracemalloc

    old, new = tracemalloc.Snapshot.load(str(first)), tracemalloc.Snapshot.load(str(later))
    total = sum(s.size for s in new.statistics("filename")) - sum(s.size for s in old.statistics("filename"))
    rows: list[dict[str, Any]] = [{"traced_growth_kb": round(total / 1024, 1)}]
    for stat in new.compare_to(old, "traceback")[:top]:
        frames = [f"{f.filename.rsplit('site-packages/', 1)[-1]}:{f.lineno}" for f in stat.traceback]
        rows.append({"kb": round(stat.size_diff / 1024, 1), "count": stat.count_diff, "where": frames[-6:]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--arm", action="append", type=parse_arm, required=True, help="NAME:SANDBOX:SUBNET:TREE"
    )
    parser.add_argument("--trace", action="append", default=[], help="an arm whose daemons are traced")
    parser.add_argument("--snap-min", default="5,25,45", help="minutes of the traced arms' snapshots")
    parser.add_argument("--stats-min", default="5,20,35", help="minutes of every daemon's malloc statistics")
    parser.add_argument("--env", action="append", default=[], help="NAME:KEY=VALUE for one arm's daemons")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--minutes", type=float, default=45.0)
    parser.add_argument("--sample-s", type=float, default=60.0)
    parser.add_argument("--warmup-s", type=float, default=300.0, help="left out of the slopes")
    parser.add_argument("--end-by", type=float, default=None, help="stop sampling by this Unix time")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--no-lock", action="store_true")
    parser.add_argument("--keep", action="store_true", help="leave the sandboxes up (take them down later)")
    args = parser.parse_args()
    for arm in args.arm:
        arm.traced = arm.name in args.trace
    for text in args.env:
        name, _, assignment = text.partition(":")
        key, _, value = assignment.partition("=")
        next(a for a in args.arm if a.name == name).env[key] = value
    stats_minutes = sorted(float(m) for m in args.stats_min.split(",") if m)
    snap_minutes = sorted(float(m) for m in args.snap_min.split(",") if m) if args.trace else []
    snap_dir = Path(tempfile.mkdtemp(prefix="p2rs-snaps-"))
    formed = False
    with contextlib.ExitStack() as stack:
        lock = None if args.no_lock else stack.enter_context(open(LOCK, "a"))  # noqa: SIM115
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        for arm in args.arm:
            sb = Sandbox(arm.sandbox, subnet=arm.subnet)
            stack.callback(take_down, sb, lambda: args.keep and formed)
            bring_up(sb, arm, snap_dir, args.frames)
        formed = True  # from here on ``--keep`` leaves them up
        if lock is not None and not args.keep:  # first on the way out: the sandboxes come down under the lock
            stack.callback(fcntl.flock, lock, fcntl.LOCK_EX)
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_UN)  # from here on the sandboxes idle: no lock
        emit({"formed": {a.name: a.daemons for a in args.arm}, "snapshots": str(snap_dir)}, args.out)
        t0 = time.monotonic()
        minutes = args.minutes
        if args.end_by is not None:
            minutes = min(minutes, (args.end_by - time.time()) / 60)
        samples: list[dict[str, Any]] = []
        taken: list[str] = []
        while (now := time.monotonic()) - t0 <= minutes * 60:
            sample: dict[str, Any] = {"t_s": round(now - t0, 1), "load": os.getloadavg()[0]}
            for arm in args.arm:
                sample[arm.name] = {}
                for node, pid in arm.daemons.items():
                    with contextlib.suppress(OSError):
                        sample[arm.name][node] = memory(pid) | {"heap_mb": brk_heap_mb(pid)}
                        sample[arm.name][node]["maps"] = mappings(pid)
            samples.append(sample)
            emit(sample, args.out)
            while snap_minutes and now - t0 >= snap_minutes[0] * 60:
                label = f"{snap_minutes.pop(0):g}m"
                for arm in args.arm:
                    if arm.traced:
                        snapshot_all(arm, snap_dir, label)
                taken.append(label)
            while stats_minutes and now - t0 >= stats_minutes[0] * 60:
                label = f"{stats_minutes.pop(0):g}m"
                for arm in args.arm:
                    malloc_stats_all(arm, snap_dir, label, args.out)
            time.sleep(max(0.0, t0 + len(samples) * args.sample_s - time.monotonic()))
        for arm in args.arm:
            malloc_stats_all(arm, snap_dir, "end", args.out)
        for arm in args.arm:
            for node, pid in arm.daemons.items() if arm.traced else ():
                base = snap_dir / arm.name / f"{pid}.snap"
                for label in taken[1:]:
                    rows = compare(Path(f"{base}.{taken[0]}"), Path(f"{base}.{label}"), args.top)
                    emit(
                        {"compare": f"{arm.name}/{node}", "from": taken[0], "to": label, "top": rows},
                        args.out,
                    )
        summary = {
            arm.name: {
                node: series(
                    [(s["t_s"], s[arm.name][node]) for s in samples if node in s[arm.name]], args.warmup_s
                )
                for node in arm.daemons
            }
            for arm in args.arm
        }
        emit({"summary": summary, "samples": len(samples)}, args.out)


if __name__ == "__main__":
    main()
