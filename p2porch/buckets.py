"""Bucketed counts of observed durations, kept by components for Prometheus histograms (pure).

A component on a hot or pure path (the SWIM core, the overlay reconciler) keeps a :class:`BucketCounts`
and calls :meth:`~BucketCounts.observe`: one bisect and two additions, no locks, no library. The
``/metrics`` view reads it at scrape time as a histogram (cumulative ``le`` buckets, count and sum).
It owns only numbers: no clock, no I/O, no exposition format.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

__all__ = ["PROBE_RTT_BUCKETS", "RECONCILE_BUCKETS", "BucketCounts"]

#: gossip probe round trips: LAN sub-millisecond up to the probe timeout's order
PROBE_RTT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
#: overlay reconcile passes: a netlink read (milliseconds) up to a slow full reprogramming
RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class BucketCounts:
    """Counts per upper bound (``value <= bound``; the last slot is +Inf) and the sum of the values."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        if list(self.bounds) != sorted(set(self.bounds)):
            raise ValueError("bucket bounds must be strictly increasing")
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, observations <= it)`` for every bound, then ``(inf, count)``."""
        out: list[tuple[float, int]] = []
        running = 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out
