"""Where a process's CPU goes, by thread and stack: an opt-in profiling aid (dev and bench tool).

``P2PORCH_CPU_PROFILE=/path/{pid}.txt p2porch daemon ...`` starts :class:`CpuSampler`: a thread that
every ``P2PORCH_CPU_PROFILE_EVERY_S`` (default 0.005 s) reads each thread's own CPU clock and charges
the CPU it spent since the last look to the stack it is at now (``sys._current_frames``), so a waiting
thread costs nothing and a busy one is seen in proportion to its CPU (py-spy's samples count threads
blocked in a poll or a connect as busy). The totals, as collapsed stacks with microseconds (``thread
name;frame;frame... us``, one line each, prefixed by the wall-clock half-second bucket ``@T`` so a bench can
split them by phase), are written when the process exits and every 5 s (``{pid}`` is replaced by the
process id). A thread's clock is the kernel's per-thread CPU clock by its native id (an exited
thread's read fails; ``pthread_getcpuclockid`` would read its freed pthread struct); threads are keyed
by (ident, native id), the first look is every thread's baseline, a thread started later is charged
its whole CPU at its first look, and an exited one is forgotten. At most ``MAX_KEYS`` distinct lines
are kept (the rest counted as dropped). Native threads (none here) and the sampler itself are not
seen. It never changes what the threads do: it only reads their frames and clocks.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import sys
import threading
import time
from collections import Counter
from types import FrameType

from .reportfile import write_report

__all__ = ["ENV_PATH", "CpuSampler", "start_from_env", "thread_cpu_ns"]

ENV_PATH = "P2PORCH_CPU_PROFILE"
ENV_EVERY = "P2PORCH_CPU_PROFILE_EVERY_S"
DEFAULT_EVERY_S = 0.005
WRITE_EVERY_S = 5.0
BUCKET_S = 0.5  # the wall-clock resolution of the totals
MAX_DEPTH = 40
MAX_KEYS = 200_000  # distinct "@bucket thread;stack" lines kept; the CPU of any more is counted as dropped
JOIN_TIMEOUT_S = 2.0  # stop() waits this long for the sampler's last look
log = logging.getLogger(__name__)


def thread_cpu_ns(native_id: int) -> int:
    """The CPU time of this process's thread ``native_id`` (its kernel thread id): the kernel's
    per-thread clock (clockid ``(~tid << 3) | 6``: CPUCLOCK_PERTHREAD | CPUCLOCK_SCHED). OSError
    (EINVAL) when no such thread of this process runs any more."""
    return time.clock_gettime_ns(((~native_id) << 3) | 6)


def _stack(frame: FrameType | None) -> str:
    names: list[str] = []
    while frame is not None and len(names) < MAX_DEPTH:
        code = frame.f_code
        names.append(f"{code.co_qualname} ({os.path.basename(code.co_filename)}:{frame.f_lineno})")
        frame = frame.f_back
    return ";".join(reversed(names))


class CpuSampler:
    """Owns one daemon thread that charges each thread's CPU to its current stack; ``write`` dumps."""

    def __init__(self, path: str, every_s: float = DEFAULT_EVERY_S, max_keys: int = MAX_KEYS) -> None:
        self.path, self.every_s, self.max_keys = path, every_s, max_keys
        self.totals: Counter[str] = Counter()  # "@bucket thread;stack" -> microseconds
        self.dropped_us = 0  # CPU of lines over ``max_keys``
        # (ident, native id) -> its CPU clock at the last look (ns); None: no look yet
        self._last: dict[tuple[int, int], int] | None = None
        self._lock = threading.Lock()  # totals, _last and the file: one look or write at a time
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def start(self) -> CpuSampler:
        self._thread.start()
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        """Stop the thread (its last look done) and write the totals; again: writes only."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(JOIN_TIMEOUT_S)
        atexit.unregister(self.stop)
        self.write()

    @property
    def tracked(self) -> int:
        """How many threads the last look saw."""
        return len(self._last or ())

    def _run(self) -> None:
        self.look()  # every thread's baseline
        next_write = time.monotonic() + WRITE_EVERY_S
        while not self._stop.wait(self.every_s):
            self.look()
            if time.monotonic() >= next_write:
                self.write()
                next_write = time.monotonic() + WRITE_EVERY_S

    def look(self) -> None:
        """One look at every thread but the caller: the CPU each spent since the last, to its stack (the
        first look: a baseline only; a thread new since the last: all its CPU)."""
        own = threading.get_ident()
        threads = {t.ident: t for t in threading.enumerate()}
        bucket = round(time.time() // BUCKET_S * BUCKET_S, 1)
        with self._lock:
            last, seen = self._last, {}
            for ident, frame in sys._current_frames().items():
                thread = threads.get(ident)
                if ident == own or thread is None or thread.native_id is None:
                    continue
                try:
                    spent = thread_cpu_ns(thread.native_id)
                except OSError:  # it exited since the frames were taken
                    continue
                key = (ident, thread.native_id)
                seen[key] = spent
                before = None if last is None else last.get(key, 0)
                if before is not None and spent > before:
                    self._charge(f"@{bucket} {thread.name};{_stack(frame)}", (spent - before) // 1000)
            self._last = seen  # exited threads forgotten (their ident and id may be reused)

    def _charge(self, line: str, us: int) -> None:
        if line in self.totals or len(self.totals) < self.max_keys:
            self.totals[line] += us
        else:
            self.dropped_us += us

    def write(self) -> None:
        """The totals to ``path`` (``reportfile.write_report``: a regular file replaced, never a device)."""
        with self._lock:
            lines = [f"# {' '.join(sys.argv)}\n"] + [f"{key} {us}\n" for key, us in self.totals.items()]
            if self.dropped_us:
                lines.append(f"# dropped {self.dropped_us} us (over {self.max_keys} lines)\n")
            write_report(self.path, "".join(lines))


def start_from_env(env: dict[str, str] | None = None) -> CpuSampler | None:
    """A started sampler when ``P2PORCH_CPU_PROFILE`` is set, else None; a malformed
    ``P2PORCH_CPU_PROFILE_EVERY_S`` is logged and the default used (a debug aid never stops a start)."""
    env = dict(os.environ) if env is None else env
    path = env.get(ENV_PATH, "")
    if not path:
        return None
    text = env.get(ENV_EVERY, "")
    try:
        every = float(text) if text else DEFAULT_EVERY_S
    except ValueError:
        every = math.nan
    if not (math.isfinite(every) and every > 0):
        log.warning("%s=%r is not a positive number of seconds: %s used", ENV_EVERY, text, DEFAULT_EVERY_S)
        every = DEFAULT_EVERY_S
    return CpuSampler(path.replace("{pid}", str(os.getpid())), every).start()
