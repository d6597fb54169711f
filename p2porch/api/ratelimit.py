"""Per-source limits on failed authentication attempts, in bounded memory (pure: time is passed in).

Each source address has a token bucket of ``burst`` failures refilled at ``per_s``; a source with an
empty bucket is refused before its token is even checked, until the bucket refills. At most
``max_sources`` sources are tracked (least recently failed evicted first), so a flood of addresses
costs bounded memory; a forgotten source just starts again with a full bucket. Successful requests
cost nothing here.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class FailureLimiter:
    """Counts failed attempts per source; never grows beyond ``max_sources`` entries."""

    def __init__(self, *, burst: int = 10, per_s: float = 0.2, max_sources: int = 4096) -> None:
        self.burst = float(burst)
        self.per_s = per_s
        self.max_sources = max_sources
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self.refused = 0  # requests refused because their source was over its limit
        self.failures = 0  # failed attempts counted

    def _refilled(self, source: str, now: float) -> _Bucket | None:
        bucket = self._buckets.get(source)
        if bucket is not None:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.per_s)
            bucket.at = now
            if bucket.tokens >= self.burst:
                del self._buckets[source]  # back to full: nothing to remember
                return None
        return bucket

    def retry_after(self, source: str, now: float) -> float:
        """0 if ``source`` may try now, else the seconds until it may (and counts the refusal)."""
        bucket = self._refilled(source, now)
        if bucket is None or bucket.tokens >= 1.0:
            return 0.0
        self.refused += 1
        return (1.0 - bucket.tokens) / self.per_s

    def failed(self, source: str, now: float) -> None:
        """Record one failed attempt of ``source``."""
        self.failures += 1
        bucket = self._refilled(source, now) or _Bucket(self.burst, now)
        bucket.tokens = max(0.0, bucket.tokens - 1.0)
        self._buckets[source] = bucket
        self._buckets.move_to_end(source)
        while len(self._buckets) > self.max_sources:
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)
