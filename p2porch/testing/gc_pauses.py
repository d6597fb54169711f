"""How long the garbage collector's collections hold a process (measurement for benchmarks; shell hook
over a pure tally).

A full (generation 2) collection walks every tracked container object; a voter holding 100,000 task
records has millions of them, and the collection holds the GIL the whole time, Raft thread included
(issue 19, the tenth round). :class:`GcPauses` is the pure tally (callers pass ``now``): per generation,
the number of collections, the total and the longest duration; :func:`install` feeds it from
``gc.callbacks`` and logs every generation-2 collection of at least ``log_s`` seconds. It never changes
what the collector does.
"""

from __future__ import annotations

import gc
import logging
import time
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

LOG_S = 0.05  # a generation-2 collection this long or longer is logged


@dataclass
class GcPauses:
    """Collections per generation: count, total and longest seconds; the collection in progress."""

    count: list[int] = field(default_factory=lambda: [0, 0, 0])
    total_s: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    longest_s: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    started_at: float | None = None

    def start(self, now: float) -> None:
        self.started_at = now

    def stop(self, generation: int, now: float) -> float | None:
        """The collection that started at :meth:`start` ended; its duration (None without a start)."""
        if self.started_at is None or not 0 <= generation <= 2:
            return None
        took = max(0.0, now - self.started_at)
        self.started_at = None
        self.count[generation] += 1
        self.total_s[generation] += took
        self.longest_s[generation] = max(self.longest_s[generation], took)
        return took

    def summary(self) -> dict[str, Any]:
        return {
            f"gen{g}": {
                "count": self.count[g],
                "total_s": round(self.total_s[g], 3),
                "longest_s": round(self.longest_s[g], 3),
            }
            for g in range(3)
        }


def install(pauses: GcPauses, log_s: float = LOG_S) -> None:
    """Feed ``pauses`` from every collection of this process from now on."""

    def callback(phase: str, info: dict[str, Any]) -> None:
        now = time.perf_counter()
        if phase == "start":
            pauses.start(now)
            return
        generation = int(info.get("generation", -1))
        took = pauses.stop(generation, now)
        if generation == 2 and took is not None and took >= log_s:
            log.info("gc: generation-2 collection took %.3f s (%d collected)", took, info.get("collected", 0))

    gc.callbacks.append(callback)
