"""What wakes a trio thread, and what each wakeup costs: an opt-in profiling aid (dev and bench tool).

``P2PORCH_PROFILE=/path/{pid}.json p2porch daemon ...`` installs :class:`WakeupProfiler` as a trio
instrument: every task step is counted under its task and the place it was suspended at (the innermost
p2porch frame of its await chain: what it waited for, so what woke it), with the thread CPU the step took;
the run loop's I/O waits and the CPU spent between steps (trio's own scheduling, timers, epoll) are counted
apart. The totals (and the collector's figures, ``gc_freeze.figures``) are written as JSON (``{pid}`` in
the path is replaced by the process id) every ``P2PORCH_PROFILE_EVERY_S`` seconds (default 5) and when the
run ends; ``bench/idle.py --profile`` reads them at both ends of its window and reports the difference.

:class:`WakeupTally` owns the counts (pure: it is fed names and CPU seconds); the profiler is its shell and
must never change what the tasks do (it only reads their frames).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import trio
from trio.abc import Instrument

from . import gc_freeze
from .reportfile import write_report

__all__ = ["ENV_PATH", "WakeupProfiler", "WakeupTally", "diff_reports", "profiler_from_env", "suspended_at"]

ENV_PATH = "P2PORCH_PROFILE"
ENV_EVERY = "P2PORCH_PROFILE_EVERY_S"
PACKAGE_MARK = f"{os.sep}p2porch{os.sep}"
MAX_KEYS = 2000  # bounded memory: wakeups past this many distinct sites are counted under "(other)"


@dataclass
class WakeupTally:
    """Steps and CPU seconds per wakeup site, I/O waits of the run loop and the CPU between steps."""

    steps: dict[str, int] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)
    io_waits: int = 0
    io_waits_zero: int = 0  # polls that did not sleep (a task was runnable)
    loop_cpu_s: float = 0.0  # the run loop's own CPU: everything outside task steps

    def add_step(self, key: str, cpu_s: float) -> None:
        if key not in self.steps and len(self.steps) >= MAX_KEYS:
            key = "(other)"
        self.steps[key] = self.steps.get(key, 0) + 1
        self.cpu_s[key] = self.cpu_s.get(key, 0.0) + cpu_s

    def add_io_wait(self, timeout_s: float) -> None:
        self.io_waits += 1
        if timeout_s <= 0:
            self.io_waits_zero += 1

    def report(self, at: float) -> dict[str, Any]:
        """The totals as JSON-ready data, busiest site first."""
        sites = sorted(self.steps, key=lambda k: (-self.cpu_s[k], k))
        return {
            "at": at,
            "io_waits": self.io_waits,
            "io_waits_zero": self.io_waits_zero,
            "loop_cpu_s": self.loop_cpu_s,
            "step_cpu_s": sum(self.cpu_s.values()),
            "sites": {k: {"steps": self.steps[k], "cpu_s": self.cpu_s[k]} for k in sites},
        }


def diff_reports(first: dict[str, Any], last: dict[str, Any]) -> dict[str, Any]:
    """What happened between two reports of one process, per second of wall time, busiest site first."""
    span = max(last["at"] - first["at"], 1e-9)
    before = first["sites"]
    sites = {}
    for key, now in last["sites"].items():
        was = before.get(key, {"steps": 0, "cpu_s": 0.0})
        steps, cpu = now["steps"] - was["steps"], now["cpu_s"] - was["cpu_s"]
        if steps:
            sites[key] = {
                "wakeups_per_s": round(steps / span, 2),
                "cpu_pct": round(100 * cpu / span, 4),
                "us_per_wakeup": round(1e6 * cpu / steps, 1),
            }
    ordered = dict(sorted(sites.items(), key=lambda kv: -kv[1]["cpu_pct"]))
    return {
        "seconds": round(span, 2),
        "io_waits_per_s": round((last["io_waits"] - first["io_waits"]) / span, 2),
        "io_waits_zero_per_s": round((last["io_waits_zero"] - first["io_waits_zero"]) / span, 2),
        "loop_cpu_pct": round(100 * (last["loop_cpu_s"] - first["loop_cpu_s"]) / span, 4),
        "step_cpu_pct": round(100 * (last["step_cpu_s"] - first["step_cpu_s"]) / span, 4),
        "sites": ordered,
    }


def suspended_at(task: trio.lowlevel.Task) -> str:
    """``task name @ module:function:line`` of the innermost p2porch frame the task is suspended in."""
    frame: FrameType | None = None
    awaitable: Any = task.coro
    for _ in range(64):  # an await chain is short; bounded in any case
        if awaitable is None:
            break
        current = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
        if current is not None and PACKAGE_MARK in current.f_code.co_filename:
            frame = current
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None)
    if frame is None:
        return task.name
    module = frame.f_globals.get("__name__", "?")
    return f"{task.name} @ {module}:{frame.f_code.co_name}:{frame.f_lineno}"


class WakeupProfiler(Instrument):
    """Counts every task step under :func:`suspended_at` with its thread CPU; writes the totals to ``path``.

    ``cpu_clock`` and ``wall_clock`` are injected (tests pass fakes)."""

    def __init__(
        self,
        path: str,
        every_s: float = 5.0,
        cpu_clock: Callable[[], float] = time.thread_time,
        wall_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path.replace("{pid}", str(os.getpid())))
        self.every_s = every_s
        self.tally = WakeupTally()
        self._cpu = cpu_clock
        self._wall = wall_clock
        self._site = ""
        self._step_started = 0.0
        self._loop_started = cpu_clock()
        self._next_write = wall_clock() + every_s

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.tally.loop_cpu_s += self._cpu() - self._loop_started
        self._site = suspended_at(task)  # between the clocks: the frame walk is the profiler's own cost
        self._step_started = self._cpu()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        now = self._cpu()
        self.tally.add_step(self._site, now - self._step_started)
        self._loop_started = self._cpu()

    def before_io_wait(self, timeout: float) -> None:
        self.tally.add_io_wait(timeout)
        now = self._cpu()
        self.tally.loop_cpu_s += now - self._loop_started
        self._loop_started = now  # the wait itself sleeps: its (tiny) CPU counts as the loop's
        if self._wall() >= self._next_write:
            self._next_write = self._wall() + self.every_s
            self.write()

    def after_run(self) -> None:
        self.write()

    def write(self) -> None:
        """The report to its file (``reportfile.write_report``: a regular file replaced whole, never a
        device); a failed write is dropped (profiling never stops the run)."""
        report = self.tally.report(self._wall()) | {"gc": gc_freeze.figures()}
        try:
            write_report(str(self.path), json.dumps(report))
        except OSError:
            pass


def profiler_from_env(env: dict[str, str] | None = None) -> list[Instrument]:
    """The instruments to pass to ``trio.run``: a profiler when ``P2PORCH_PROFILE`` is set, else none."""
    env = dict(os.environ) if env is None else env
    path = env.get(ENV_PATH)
    if not path:
        return []
    try:
        every_s = float(env.get(ENV_EVERY, "5"))
    except ValueError:
        every_s = 5.0
    return [WakeupProfiler(path, every_s=max(every_s, 0.5))]
