"""Flow control per follower (raft/flow.py, pure): what a follower may be sent in a round, and whether an
acknowledgement may move its next index back."""

from __future__ import annotations

from collections.abc import Callable

from p2porch.raft.flow import (
    FlowLimits,
    FlowStats,
    hold_entries,
    inflight_entries,
    keep_next_index,
    send_through,
)

LIMITS = FlowLimits(max_buffered_bytes=1000, max_inflight_entries=10)


def size(n: int) -> Callable[[int], int]:
    return lambda index: n


def test_inflight_counts_entries_sent_past_the_match_index() -> None:
    assert inflight_entries(next_index=11, match_index=10) == 0
    assert inflight_entries(next_index=21, match_index=10) == 10
    assert inflight_entries(next_index=5, match_index=10) == 0  # a stale answer raced a reset


def test_a_follower_over_either_bound_is_held() -> None:
    assert not hold_entries(buffered=999, next_index=20, match_index=10, limits=LIMITS)
    assert hold_entries(buffered=1000, next_index=12, match_index=10, limits=LIMITS)
    assert hold_entries(buffered=0, next_index=21, match_index=10, limits=LIMITS)
    off = FlowLimits(max_buffered_bytes=0, max_inflight_entries=0)
    assert not hold_entries(buffered=10**9, next_index=10**6, match_index=0, limits=off)


def test_a_held_or_late_follower_gets_only_a_heartbeat() -> None:
    args = {"next_index": 21, "match_index": 10, "last_index": 50, "entry_size": size(1), "limits": LIMITS}
    assert send_through(buffered=0, **args) == 20  # 10 in flight: nothing new
    assert send_through(buffered=0, late=True, **{**args, "next_index": 12}) == 11
    assert send_through(buffered=5000, **{**args, "next_index": 12}) == 11


def test_entries_fill_what_the_buffer_has_left_and_at_least_one_goes() -> None:
    common = {"match_index": 0, "last_index": 100, "limits": FlowLimits(max_buffered_bytes=1000)}
    # 300-byte entries, 400 bytes already queued: 600 left -> the entry that crosses the bound is the last
    assert send_through(next_index=1, buffered=400, entry_size=size(300), **common) == 2
    assert send_through(next_index=1, buffered=999, entry_size=size(300), **common) == 1
    assert send_through(next_index=1, buffered=0, entry_size=size(5000), **common) == 1  # one big entry
    assert send_through(next_index=1, buffered=0, entry_size=size(1), **common) == 100  # all of them


def test_the_inflight_bound_caps_a_round() -> None:
    limits = FlowLimits(max_buffered_bytes=0, max_inflight_entries=10)
    through = send_through(
        next_index=15, match_index=10, last_index=100, buffered=0, entry_size=size(1), limits=limits
    )
    assert through == 20  # 10 past the match index


def test_a_follower_with_nothing_to_learn_gets_a_heartbeat() -> None:
    assert send_through(51, 50, 50, 0, size(1), LIMITS) == 50


def test_only_a_success_on_an_intact_connection_keeps_the_next_index() -> None:
    assert keep_next_index(before=100, after=40, success=True, reset=False, pipe_intact=True)
    assert not keep_next_index(before=100, after=40, success=False, reset=True, pipe_intact=True)
    assert not keep_next_index(before=100, after=40, success=True, reset=True, pipe_intact=True)
    assert not keep_next_index(before=100, after=40, success=True, reset=False, pipe_intact=False)
    assert not keep_next_index(before=40, after=100, success=True, reset=False, pipe_intact=True)


def test_stats_keep_maxima_per_kind_until_taken() -> None:
    stats = FlowStats()
    assert not stats.busy()
    stats.saw("voter", buffered=10, inflight=3)
    stats.saw("voter", buffered=5, inflight=7)
    stats.held_back("voter")
    stats.rewound(entries=4, kept=True)
    assert stats.busy()
    text = stats.take()
    assert (
        "voters: buffered max 10 B, in flight max 7, held 1" in text
        and "rewinds 1 (4 entries, 1 kept)" in text
    )
    assert not stats.busy() and stats.largest_buffered == 10 and stats.held_ever == 1  # kept past take()
