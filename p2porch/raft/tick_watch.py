"""Where a long Raft tick is (diagnostics for benchmarks; off unless ``P2PORCH_RAFT_TICK_WATCH_S`` is set).

A leader silent for seconds while its followers tick on time (issue 19) is a Raft thread stuck
somewhere for seconds; a sampling profiler has no timestamps, so it cannot say where. With the variable
set to ``s`` seconds, :class:`TickWatch` runs a daemon thread that looks at the Raft thread every
``s / 4`` seconds and, while one tick has lasted at least ``s``, ``2s``, ``4s``, ... logs its stack once
per step (WARNING). It never changes what the Raft thread does; without the variable nothing runs.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import traceback

log = logging.getLogger(__name__)
ENV = "P2PORCH_RAFT_TICK_WATCH_S"


def watch_threshold(variable: str = ENV) -> float:
    """The threshold from the environment ``variable``; 0: off."""
    try:
        value = float(os.environ.get(variable, "0") or 0)
    except ValueError:
        return 0.0
    return value if value > 0 else 0.0


class TickWatch:
    """The Raft thread calls :meth:`tick_started` at each tick; a thread of its own logs long ones."""

    def __init__(self, threshold_s: float, role: object) -> None:
        self.threshold_s = threshold_s
        self._role = role  # called for a label ("leader", "follower", ...) when a stack is logged
        self._started = time.monotonic()
        self._tick = 0
        self._ident: int | None = None
        self._stop = False

    def tick_started(self) -> None:
        self._ident = threading.get_ident()
        self._tick += 1
        self._started = time.monotonic()

    def start(self) -> None:
        threading.Thread(target=self._run, name="raft-tick-watch", daemon=True).start()

    def stop(self) -> None:
        self._stop = True

    def _run(self) -> None:
        reported: tuple[int, float] = (-1, 0.0)
        while not self._stop:
            time.sleep(self.threshold_s / 4)
            tick, started, ident = self._tick, self._started, self._ident
            took = time.monotonic() - started
            step = reported[1] * 2 if reported[0] == tick else self.threshold_s
            if ident is None or took < step:
                continue
            frame = sys._current_frames().get(ident)
            stack = "".join(traceback.format_stack(frame, limit=14)) if frame is not None else "?"
            role = self._role() if callable(self._role) else self._role
            log.warning("raft tick %d (%s) running for %.2f s, at:\n%s", tick, role, took, stack)
            reported = (tick, step)
