"""How long the garbage collector's collections hold a process (measurement for benchmarks; an observer of
the daemon's gc hook over a pure tally).

A full (generation 2) collection walks every tracked container object; a voter holding 100,000 task
records has millions of them, and the collection holds the GIL the whole time, Raft thread included
(issue 19, the tenth round). :class:`GcPauses` is the pure tally: per generation, the number of
collections, the total and the longest duration. :func:`install` makes it the observer of the process's
gc freeze hook (``p2porch/gc_freeze.py``, which times every collection: one timer, not two) and logs
every generation-2 collection of at least ``log_s`` seconds. It never changes what the collector does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from .. import gc_freeze

log = logging.getLogger(__name__)

LOG_S = 0.05  # a generation-2 collection this long or longer is logged


@dataclass
class GcPauses:
    """Collections per generation: count, total and longest seconds."""

    count: list[int] = field(default_factory=lambda: [0, 0, 0])
    total_s: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    longest_s: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])

    def record(self, generation: int, took_s: float) -> bool:
        """A collection of ``generation`` took ``took_s``; False (nothing counted) for no generation."""
        if not 0 <= generation <= 2:
            return False
        took_s = max(0.0, took_s)
        self.count[generation] += 1
        self.total_s[generation] += took_s
        self.longest_s[generation] = max(self.longest_s[generation], took_s)
        return True

    def summary(self) -> dict[str, Any]:
        return {
            f"gen{g}": {
                "count": self.count[g],
                "total_s": round(self.total_s[g], 3),
                "longest_s": round(self.longest_s[g], 3),
            }
            for g in range(3)
        }


def install(pauses: GcPauses, log_s: float = LOG_S) -> gc_freeze.Observer:
    """Feed ``pauses`` from every collection of this process from now on: the observer of the process's
    gc freeze hook (installed here if the entry point has not; it replaces an earlier observer).
    Returns the observer (``gc_freeze.install().observer = None`` takes it out)."""

    def observe(generation: int, took_s: float, info: dict[str, Any]) -> None:
        if pauses.record(generation, took_s) and generation == 2 and took_s >= log_s:
            collected = info.get("collected", 0)
            log.info("gc: generation-2 collection took %.3f s (%d collected)", took_s, collected)

    gc_freeze.install().observer = observe
    return observe
