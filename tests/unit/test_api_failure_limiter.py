"""The remote API's per-source failure limiter: burst, refill, refusal and bounded memory."""

from __future__ import annotations

from p2porch.api.ratelimit import FailureLimiter


def test_a_source_is_refused_after_its_burst_until_the_bucket_refills():
    limiter = FailureLimiter(burst=3, per_s=1.0)
    for _ in range(3):
        assert limiter.retry_after("1.2.3.4", 0.0) == 0
        limiter.failed("1.2.3.4", 0.0)
    wait = limiter.retry_after("1.2.3.4", 0.0)
    assert wait > 0 and limiter.refused == 1
    assert limiter.retry_after("5.6.7.8", 0.0) == 0  # other sources are not affected
    assert limiter.retry_after("1.2.3.4", wait + 0.01) == 0
    assert limiter.retry_after("1.2.3.4", 100.0) == 0 and len(limiter) == 0  # full again: forgotten


def test_memory_is_bounded_by_max_sources():
    limiter = FailureLimiter(burst=2, per_s=0.01, max_sources=100)
    for i in range(10_000):
        limiter.failed(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", 0.0)
    assert len(limiter) == 100 and limiter.failures == 10_000
