"""drain_verdict: a load-balanced task stops once every live node applied its stop commit (pure)."""

from __future__ import annotations

import random

from p2porch.agent.drain_gate import ACKNOWLEDGED, BOUND, DrainBounds, drain_verdict

BOUNDS = DrainBounds(grace_s=0.25, max_s=10.0)
LIVE = {"a", "b", "c"}


def test_waits_for_every_live_node_then_the_grace() -> None:
    behind = drain_verdict(1.0, 0.0, None, 7, {"a": 7, "b": 7, "c": 6}, LIVE, BOUNDS)
    assert not behind.done and behind.laggards == ("c",) and behind.acked_at is None
    assert behind.wake_at == 10.0  # at the latest: the bound
    acked = drain_verdict(1.5, 0.0, None, 7, {"a": 7, "b": 8, "c": 7}, LIVE, BOUNDS)
    assert not acked.done and acked.acked_at == 1.5 and acked.wake_at == 1.75
    later = drain_verdict(1.75, 0.0, acked.acked_at, 7, {"a": 7, "b": 8, "c": 7}, LIVE, BOUNDS)
    assert later.done and later.reason == ACKNOWLEDGED


def test_a_node_that_is_not_live_does_not_block_and_a_missing_index_is_nothing_applied() -> None:
    assert drain_verdict(0.0, 0.0, None, 7, {"a": 7, "b": 7, "c": 0}, {"a", "b"}, BOUNDS).acked_at == 0.0
    assert drain_verdict(0.0, 0.0, None, 7, {"a": 7}, {"a", "b"}, BOUNDS).laggards == ("b",)


def test_the_bound_stops_a_task_a_hung_node_holds_and_names_it() -> None:
    verdict = drain_verdict(10.0, 0.0, None, 7, {"a": 7, "b": 3, "c": 7}, LIVE, BOUNDS)
    assert verdict.done and verdict.reason == BOUND and verdict.laggards == ("b",)


def test_the_grace_never_goes_past_the_bound_and_zero_bounds_stop_at_once() -> None:
    late = drain_verdict(9.9, 0.0, None, 7, {"a": 7, "b": 7, "c": 7}, LIVE, BOUNDS)
    assert late.wake_at == 10.0
    assert drain_verdict(10.0, 0.0, late.acked_at, 7, {}, LIVE, BOUNDS).done  # acknowledged stays so
    assert drain_verdict(0.0, 0.0, None, 7, {}, LIVE, DrainBounds(0.0, 0.0)).done


def test_random_walks_stop_exactly_at_the_grace_after_the_last_node_or_at_the_bound() -> None:
    rng = random.Random(19)
    for _ in range(200):
        commit = rng.randint(1, 50)
        reach = {n: rng.choice([rng.uniform(0, 12), None]) for n in LIVE}  # when each node applies it
        live = {n for n in LIVE if rng.random() < 0.8}
        now, acked_at, step = 0.0, None, 0.05
        while True:
            applied = {n: commit if t is not None and t <= now else commit - 1 for n, t in reach.items()}
            verdict = drain_verdict(now, 0.0, acked_at, commit, applied, live, BOUNDS)
            if verdict.done:
                break
            assert verdict.wake_at > now
            acked_at, now = verdict.acked_at, round(now + step, 10)
        times = [reach[n] for n in live]
        if all(t is not None for t in times):
            last = max((t for t in times if t is not None), default=0.0)
            expected = min(last + BOUNDS.grace_s, BOUNDS.max_s)
            assert expected - 1e-9 <= now <= expected + step + 1e-9, (now, expected)
        else:
            assert verdict.reason == BOUND and now >= BOUNDS.max_s - 1e-9
