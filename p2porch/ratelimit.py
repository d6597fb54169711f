"""Token buckets (pure): how many events per second a source may cause, with a burst allowance.

Owns only counting; the caller passes ``now`` (seconds, any monotonic clock) and decides what a refusal
means (drop, slip a truncated reply, skip a log line). It never reads the clock or does I/O.
"""

from __future__ import annotations

from collections.abc import Hashable


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; ``take(now)`` spends one if there is one."""

    __slots__ = ("rate", "burst", "tokens", "stamp", "refused")

    def __init__(self, rate: float, burst: float, now: float = 0.0) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now
        self.refused = 0

    def take(self, now: float) -> bool:
        elapsed = now - self.stamp
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
            self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        self.refused += 1
        return False


class KeyedBuckets:
    """One :class:`TokenBucket` per key (e.g. a client's /24), at most ``max_keys`` of them.

    When full, the bucket touched least recently is forgotten (a forgotten key starts again with a full
    burst, so ``max_keys`` must exceed the number of sources expected to be limited at once).
    """

    def __init__(self, rate: float, burst: float, max_keys: int = 65536) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[Hashable, TokenBucket] = {}

    def take(self, key: Hashable, now: float) -> bool:
        buckets = self._buckets
        bucket = buckets.pop(key, None)
        if bucket is None:
            bucket = TokenBucket(self.rate, self.burst, now)
            if len(buckets) >= self.max_keys:
                del buckets[next(iter(buckets))]
        buckets[key] = bucket
        return bucket.take(now)

    def __len__(self) -> int:
        return len(self._buckets)
