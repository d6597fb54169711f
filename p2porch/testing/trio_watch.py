"""Where a store process's threads are while its trio thread does not run (benchmark diagnostics; off unless
``P2PORCH_TRIO_WATCH_S`` is set).

A new leader that is elected at once but answers a write seconds later (issue 19, failover at 100,000
tasks) spends the time on its trio thread (the control port, the store's submissions, the leader loop)
or waiting for the GIL another thread holds. With the variable set to ``s`` seconds, :class:`TrioWatch`
beats on the trio thread every ``s / 8`` seconds and a daemon thread of its own, while a beat is ``s``,
``2s``, ``4s``, ... late, logs every thread's innermost frames once per step (WARNING). It never changes
what the other threads do; without the variable nothing runs. The last ``KEPT`` late beats are also kept
(:attr:`TrioWatch.lates`: wall time, lateness, each thread's innermost frames) for a benchmark to read.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import sys
import threading
import time
import traceback

import trio

from ..raft.tick_watch import watch_threshold

log = logging.getLogger(__name__)
ENV = "P2PORCH_TRIO_WATCH_S"
FRAMES = 6  # innermost frames logged per thread
KEPT = 64  # late beats kept for :attr:`TrioWatch.lates`
KEPT_FRAMES = 4  # innermost frames kept per thread and late beat


@dataclasses.dataclass(frozen=True)
class LateBeat:
    """One late beat as logged: when (wall clock), how late, and each thread's innermost frames."""

    at: float
    late_s: float
    threads: dict[str, list[str]]


def trio_watch_threshold() -> float:
    """The threshold from ``P2PORCH_TRIO_WATCH_S``; 0: off."""
    return watch_threshold(ENV)


class TrioWatch:
    """Beats on the trio thread (:meth:`run`); a thread of its own logs every thread's stack when late."""

    def __init__(self, threshold_s: float) -> None:
        self.threshold_s = threshold_s
        self._beat_at = time.monotonic()
        self._beats = 0
        self._trio_ident = 0
        self.lates: collections.deque[LateBeat] = collections.deque(maxlen=KEPT)

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._trio_ident = threading.get_ident()
        stopped = threading.Event()
        threading.Thread(target=self._watch, args=(stopped,), name="trio-watch", daemon=True).start()
        task_status.started()
        try:
            while True:
                self._beats += 1
                self._beat_at = time.monotonic()
                await trio.sleep(self.threshold_s / 8)
        finally:
            stopped.set()  # the watching thread ends with the beats (a cancelled run is no late beat)

    def _watch(self, stopped: threading.Event) -> None:
        reported: tuple[int, float] = (-1, 0.0)
        while not stopped.wait(self.threshold_s / 4):
            beats, late = self._beats, time.monotonic() - self._beat_at - self.threshold_s / 8
            step = reported[1] * 2 if reported[0] == beats else self.threshold_s
            if late < step:
                continue
            names = {t.ident: t.name for t in threading.enumerate()}
            stacks, kept = [], dict[str, list[str]]()
            for ident, frame in sys._current_frames().items():
                if ident == threading.get_ident():
                    continue
                inner = "".join(traceback.format_stack(frame)[-FRAMES:])
                name = "trio" if ident == self._trio_ident else str(names.get(ident, ident))
                stacks.append(f"-- thread {name}:\n{inner}")
                kept[name] = [
                    f"{os.path.basename(f.filename)}:{f.lineno} {f.name}"
                    for f in traceback.extract_stack(frame)[-KEPT_FRAMES:]
                ]
            self.lates.append(LateBeat(round(time.time(), 3), round(late, 3), kept))
            log.warning("trio thread %.2f s late (beat %d); threads:\n%s", late, beats, "".join(stacks))
            reported = (beats, step)
