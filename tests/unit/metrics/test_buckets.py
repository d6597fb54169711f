"""Bucketed counts for histograms: ``le`` semantics, cumulative output, the +Inf slot, bad bounds."""

from __future__ import annotations

import pytest

from p2porch.buckets import BucketCounts


def test_values_land_in_the_first_bound_they_do_not_exceed():
    counts = BucketCounts((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 1.0, 7.0):
        counts.observe(value)
    assert counts.counts == [2, 2, 1]
    assert counts.cumulative() == [(0.1, 2), (1.0, 4), (float("inf"), 5)]
    assert counts.count == 5 and counts.total == pytest.approx(8.65)


def test_bounds_must_increase():
    with pytest.raises(ValueError, match="strictly increasing"):
        BucketCounts((1.0, 0.5))
