"""What a daemon's memory is made of: import cost by top-level package and a live process's RSS (JSON).

    python bench/daemon_rss.py [--module p2porch.daemon] [--top 25]      # no root needed
    python bench/daemon_rss.py --pid PID [--pid PID ...]                 # live daemons (root for others')

Import mode runs ``import MODULE`` (default ``p2porch.daemon``, plus the CLI modules that
``python -m p2porch daemon`` loads) in a fresh interpreter with ``builtins.__import__`` wrapped, after
registering the modules the daemon's entry point leaves unexecuted (``lazyimport.defer_daemon_modules``,
as ``p2porch daemon`` does first) and with the daemon's interpreter flags (``launch.DAEMON_PYTHON_FLAGS``);
``--plain``: neither, the figure of the rounds before the twenty-second:
each module's first import is timed by VmRSS (``/proc/self/status``) before and after, and the
growth is charged to its top-level package *exclusive* of the nested imports of other packages
(so ``docker``'s figure does not include ``requests``, which is reported on its own). Modules
loaded by ``importlib.import_module`` inside a package are charged to that package. Reports the
interpreter's own RSS before the import, the total after, and per package: MB, modules, import ms.

Pid mode reads ``/proc/PID/smaps_rollup`` (RSS, PSS, anonymous, shared) and groups
``/proc/PID/smaps`` by mapping (heap, anonymous: malloc arenas of threads and Python's obmalloc
arenas, thread stacks, each shared library) with the thread count, so what the running process
added over its imports can be told apart. The issue 19 target is <= 60 MB RSS per idle daemon.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from p2porch.launch import DAEMON_PYTHON_FLAGS  # noqa: E402

DAEMON_MODULES = ("p2porch.cli.main", "p2porch.daemon")

# Run in the child interpreter: wraps __import__ and prints one JSON line.
_CHILD = r"""
import builtins, json, sys, time

def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

start_kb = rss_kb()
start_modules = set(sys.modules)
charge = {}
stack = []
real_import = builtins.__import__

DETAIL = set(json.loads(sys.argv[1]))
if json.loads(sys.argv[2]):  # what `p2porch daemon` does before its imports
    from p2porch.lazyimport import defer_daemon_modules
    defer_daemon_modules()

def account(name, kb, ms, modules):
    top = name.split(".")[0]
    entry = charge.setdefault(name if top in DETAIL else top, [0, 0.0, 0])
    entry[0] += kb
    entry[1] += ms
    entry[2] += modules

def tracing_import(name, globals=None, locals=None, fromlist=(), level=0):
    target = name
    if level:  # relative: resolve against the importer's package
        package = (globals or {}).get("__package__") or ""
        base = package.rsplit(".", level - 1)[0] if level > 1 else package
        target = f"{base}.{name}" if name else base
    missing = [f"{target}.{f}" for f in fromlist or () if f != "*" and f"{target}.{f}" not in sys.modules]
    if target in sys.modules and not missing:
        return real_import(name, globals, locals, fromlist, level)
    label = target if target not in sys.modules else missing[0]
    frame = [0, 0.0, 0]  # nested first imports' kb, ms, modules (charged to their own packages)
    stack.append((label, frame))
    before_kb, before_n, t0 = rss_kb(), len(sys.modules), time.perf_counter()
    try:
        return real_import(name, globals, locals, fromlist, level)
    finally:
        stack.pop()
        kb = rss_kb() - before_kb
        ms = (time.perf_counter() - t0) * 1000
        n = len(sys.modules) - before_n
        account(label, kb - frame[0], ms - frame[1], n - frame[2])  # exclusive of nested imports
        if stack:
            parent = stack[-1][1]
            parent[0] += kb
            parent[1] += ms
            parent[2] += n

builtins.__import__ = tracing_import
for module in sys.argv[3:]:
    __import__(module)
builtins.__import__ = real_import
print(json.dumps({
    "start_kb": start_kb,
    "end_kb": rss_kb(),
    "modules": len(sys.modules),
    "new_modules": len(set(sys.modules) - start_modules),
    "charge": charge,
}))
"""


def import_cost(modules: list[str], top: int, detail: list[str], as_daemon: bool = True) -> dict[str, Any]:
    """RSS and module count that importing ``modules`` costs, by top-level package (child interpreter);
    packages named in ``detail`` are listed module by module."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    flags = list(DAEMON_PYTHON_FLAGS) if as_daemon else []
    done = subprocess.run(
        [sys.executable, *flags, "-c", _CHILD, json.dumps(detail), json.dumps(as_daemon), *modules],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    raw = json.loads(done.stdout.strip().splitlines()[-1])
    packages = sorted(raw["charge"].items(), key=lambda kv: kv[1][0], reverse=True)
    rows = {
        name: {"mb": round(kb / 1024, 2), "modules": n, "import_ms": round(ms, 1)}
        for name, (kb, ms, n) in packages
    }
    shown = dict(list(rows.items())[:top])
    rest = list(rows.values())[top:]
    return {
        "modules_imported": modules,
        "as_daemon": as_daemon,
        "interpreter_rss_mb": round(raw["start_kb"] / 1024, 1),
        "after_import_rss_mb": round(raw["end_kb"] / 1024, 1),
        "import_mb": round((raw["end_kb"] - raw["start_kb"]) / 1024, 1),
        "modules_total": raw["modules"],
        "modules_new": raw["new_modules"],
        "by_package": shown,
        "others": {
            "packages": len(rest),
            "mb": round(sum(r["mb"] for r in rest), 2),
            "modules": sum(r["modules"] for r in rest),
        },
    }


def smaps_rollup(pid: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[-1] == "kB":
            out[key.strip()] = int(parts[0]) / 1024
    return out


def mapping_kind(name: str, perms: str) -> str:
    if name == "[heap]":
        return "heap (brk: main thread malloc)"
    if name.startswith("[stack"):
        return "main stack"
    if name.startswith("["):
        return name
    if not name:
        return "anonymous (thread arenas, stacks, obmalloc, mmap'd malloc)"
    base = os.path.basename(name)
    if ".so" in base or base.startswith("python"):
        return base.split(".cpython")[0] if ".cpython" in base else base
    return "other files"


def smaps_by_mapping(pid: int) -> dict[str, dict[str, float]]:
    """RSS and PSS (MB) by mapping kind (anonymous, heap, each shared object)."""
    groups: dict[str, dict[str, float]] = {}
    current: dict[str, float] | None = None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and len(fields) >= 5 and not fields[0].endswith(":"):
            name = fields[5] if len(fields) > 5 else ""
            current = groups.setdefault(mapping_kind(name, fields[1]), {"rss_mb": 0.0, "pss_mb": 0.0})
        elif current is not None and fields and fields[0] in ("Rss:", "Pss:"):
            current["rss_mb" if fields[0] == "Rss:" else "pss_mb"] += int(fields[1]) / 1024
    rows = sorted(groups.items(), key=lambda kv: kv[1]["rss_mb"], reverse=True)
    return {k: {m: round(v, 2) for m, v in g.items()} for k, g in rows if g["rss_mb"] >= 0.1}


def live(pid: int) -> dict[str, Any]:
    """RSS/PSS breakdown of one running process."""
    rollup = smaps_rollup(pid)
    threads = len(list(Path(f"/proc/{pid}/task").iterdir()))
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    keep = (
        "Rss",
        "Pss",
        "Pss_Anon",
        "Pss_File",
        "Shared_Clean",
        "Private_Clean",
        "Private_Dirty",
        "Anonymous",
    )
    return {
        "pid": pid,
        "cmdline": cmdline.strip()[:200],
        "threads": threads,
        "rollup_mb": {k: round(rollup[k], 1) for k in keep if k in rollup},
        "by_mapping": smaps_by_mapping(pid),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--module", action="append", help="module(s) to import (default: the daemon's)")
    parser.add_argument("--top", type=int, default=25, help="packages listed by name (the rest summed)")
    parser.add_argument("--detail", action="append", default=[], help="list this package by module")
    parser.add_argument("--pid", type=int, action="append", default=[], help="live process(es) instead")
    parser.add_argument("--plain", action="store_true", help="without the daemon's deferrals and flags")
    args = parser.parse_args()
    result: dict[str, Any] = {"benchmark": "daemon_rss", "targets": {"rss_mb_max": 60.0}}
    if args.pid:
        result["processes"] = [live(pid) for pid in args.pid]
    else:
        modules = list(args.module or DAEMON_MODULES)
        result["imports"] = import_cost(modules, args.top, args.detail, as_daemon=not args.plain)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
