"""Where a process's CPU goes, by thread and stack: an opt-in profiling aid (dev and bench tool).

``P2PORCH_CPU_PROFILE=/path/{pid}.txt p2porch daemon ...`` starts :class:`CpuSampler`: a thread that
every ``P2PORCH_CPU_PROFILE_EVERY_S`` (default 0.005 s) reads each thread's own CPU clock and charges
the CPU it spent since the last look to the stack it is at now (``sys._current_frames``), so a waiting
thread costs nothing and a busy one is seen in proportion to its CPU (py-spy's samples count threads
blocked in a poll or a connect as busy). The totals, as collapsed stacks with microseconds (``thread
name;frame;frame... us``, one line each, prefixed by the wall-clock half-second bucket ``@T`` so a bench can
split them by phase), are written when the process exits and every 5 s (``{pid}`` is replaced by the
process id). Native threads (none here) and the sampler itself are not seen. It never changes what
the threads do: it only reads their frames and clocks.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from collections import Counter
from types import FrameType

__all__ = ["ENV_PATH", "CpuSampler", "start_from_env"]

ENV_PATH = "P2PORCH_CPU_PROFILE"
ENV_EVERY = "P2PORCH_CPU_PROFILE_EVERY_S"
WRITE_EVERY_S = 5.0
BUCKET_S = 0.5  # the wall-clock resolution of the totals
MAX_DEPTH = 40


def _stack(frame: FrameType | None) -> str:
    names: list[str] = []
    while frame is not None and len(names) < MAX_DEPTH:
        code = frame.f_code
        names.append(f"{code.co_qualname} ({os.path.basename(code.co_filename)}:{frame.f_lineno})")
        frame = frame.f_back
    return ";".join(reversed(names))


class CpuSampler:
    """Owns one daemon thread that charges each thread's CPU to its current stack; ``write`` dumps."""

    def __init__(self, path: str, every_s: float = 0.005) -> None:
        self.path, self.every_s = path, every_s
        self.totals: Counter[str] = Counter()  # "@bucket thread;stack" -> microseconds
        self._last: dict[int, int] = {}  # thread ident -> its CPU clock at the last look (ns)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def start(self) -> CpuSampler:
        self._thread.start()
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        self._stop.set()
        self.write()

    def _run(self) -> None:
        next_write = time.monotonic() + WRITE_EVERY_S
        while not self._stop.wait(self.every_s):
            self.look()
            if time.monotonic() >= next_write:
                self.write()
                next_write = time.monotonic() + WRITE_EVERY_S

    def look(self) -> None:
        """One look at every thread but the caller: the CPU each spent since the last, to its stack."""
        own = threading.get_ident()
        names = {t.ident: t.name for t in threading.enumerate()}
        bucket = round(time.time() // BUCKET_S * BUCKET_S, 1)
        for ident, frame in sys._current_frames().items():
            if ident == own:
                continue
            try:
                spent = time.clock_gettime_ns(time.pthread_getcpuclockid(ident))
            except (OSError, OverflowError):
                continue
            before = self._last.get(ident)
            self._last[ident] = spent
            if before is None or spent <= before:
                continue
            self.totals[f"@{bucket} {names.get(ident, '?')};{_stack(frame)}"] += (spent - before) // 1000

    def write(self) -> None:
        lines = [f"# {' '.join(sys.argv)}\n"] + [f"{key} {us}\n" for key, us in list(self.totals.items())]
        tmp = f"{self.path}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.writelines(lines)
        os.replace(tmp, self.path)


def start_from_env(env: dict[str, str] | None = None) -> CpuSampler | None:
    """A started sampler when ``P2PORCH_CPU_PROFILE`` is set, else None."""
    env = dict(os.environ) if env is None else env
    path = env.get(ENV_PATH, "")
    if not path:
        return None
    every = float(env.get(ENV_EVERY, "0.005"))
    return CpuSampler(path.replace("{pid}", str(os.getpid())), every).start()
