"""Smoke test: bench/scheduler.py runs with tiny parameters and its two schedulers agree."""

from __future__ import annotations

from p2porch.testing.bench_module import load_bench


def test_bench_small_run_agrees_with_naive() -> None:
    module = load_bench("scheduler")
    result = module.run(n_nodes=30, n_tasks=300, per_service=30, naive_tasks=60, seed=3)
    assert result["placed"] + result["unschedulable"] == 300
    assert result["agrees_with_naive_on_prefix"] is True
