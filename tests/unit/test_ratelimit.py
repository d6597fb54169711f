import pytest

from p2porch.ratelimit import KeyedBuckets, TokenBucket


def test_bucket_allows_a_burst_then_the_rate():
    bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.5) and not bucket.take(0.5)  # one token per 0.5 s
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]  # capped at the burst
    assert bucket.refused == 3
    with pytest.raises(ValueError):
        TokenBucket(0, 1)


def test_keyed_buckets_are_independent_and_bounded():
    buckets = KeyedBuckets(rate=1.0, burst=1, max_keys=2)
    assert buckets.take("a", 0.0) and not buckets.take("a", 0.0)
    assert buckets.take("b", 0.0)
    assert buckets.take("c", 0.0)
    assert len(buckets) == 2  # "a" was forgotten
