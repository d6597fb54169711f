"""Smoke test: bench/scheduler.py runs with tiny parameters and its two schedulers agree."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def test_bench_small_run_agrees_with_naive() -> None:
    path = Path(__file__).resolve().parents[3] / "bench" / "scheduler.py"
    spec = importlib.util.spec_from_file_location("bench_scheduler", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.run(n_nodes=30, n_tasks=300, per_service=30, naive_tasks=60, seed=3)
    assert result["placed"] + result["unschedulable"] == 300
    assert result["agrees_with_naive_on_prefix"] is True
