"""Sample processes with py-spy for one phase of a benchmark, and summarise the samples (text).

    with PhaseProfile(out_dir, {"v0": pid0, "v1": pid1}):   # py-spy record on each pid meanwhile
        ...
    python bench/spy_profile.py out_dir/v0.spy [FRAME ...]   # shares by thread, top frames

py-spy (``pip install py-spy``) is optional: without it ``PhaseProfile`` says so on stderr and samples
nothing. Its raw output is one line per distinct stack (``frame;frame;... count``); the summary gives
each thread's share of the process's samples, the frames with the most samples on top of the stack
("self") and those on the stack at all ("inclusive"), or the inclusive share of the frames named.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType

RATE_HZ = int(os.environ.get("SPY_RATE_HZ", "50"))  # samples per second per process


class PhaseProfile:
    """Owns one ``py-spy record`` process per sampled pid between enter and exit; never raises when
    py-spy is missing or a process has exited (the figures of the run matter more than its profile)."""

    def __init__(self, out_dir: Path | None, pids: dict[str, int]) -> None:
        self.out_dir, self.pids = out_dir, pids
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> PhaseProfile:
        if self.out_dir is None:
            return self
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(spy).exists():
            print("py-spy not found: the phase is not profiled", file=sys.stderr)
            return self
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for name, pid in self.pids.items():
            cmd = [spy, "record", "--pid", str(pid), "-r", str(RATE_HZ), "-f", "raw", "--threads"]
            cmd += ["--nonblocking", "-o", str(self.out_dir / f"{name}.spy")]
            self.procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def summarise(path: Path, frames: list[str], top: int = 15) -> str:
    """Thread shares, top self and inclusive frames (or the inclusive share of ``frames``) of one file."""
    threads: collections.Counter[str] = collections.Counter()
    self_n: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        parts = [p for p in stack.split(";") if not p.startswith("process ")]
        thread = re.sub(r"thread \(\d+\): ", "", parts[0]) if parts and parts[0].startswith("thread") else "?"
        code = [re.sub(r" \(.*?:\d+\)$", "", p) for p in parts[1:]]
        total += n
        threads[thread] += n
        if code:
            self_n[code[-1]] += n
        for f in set(code):
            incl[f] += n
    if not total:
        return f"{path.name}: no samples"
    pct = lambda k: f"{100 * k / total:.1f} %"  # noqa: E731
    lines = [f"{path.name}: {total} samples"]
    lines += [f"  thread {t}: {pct(k)}" for t, k in threads.most_common() if k >= total / 50]
    lines.append("  self: " + "; ".join(f"{f} {pct(k)}" for f, k in self_n.most_common(top)))
    chosen = [(f, incl[f]) for f in frames] if frames else incl.most_common(3 * top)
    lines.append("  inclusive: " + "; ".join(f"{f} {pct(k)}" for f, k in chosen))
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarise(Path(sys.argv[1]), sys.argv[2:]))
