"""Smoke test: bench/leader_rounds.py plans one small sequence both ways to the same end."""

from __future__ import annotations

import argparse

from p2porch.testing.bench_module import load_bench


def test_both_sequences_run_every_task_in_the_same_rounds() -> None:
    module = load_bench("leader_rounds")
    args = argparse.Namespace(nodes=12, services=9, replicas=5, per_round=2)
    full, incremental = module.sequence("full", args), module.sequence("incremental", args)
    assert full["running"] == incremental["running"] == 45
    assert full["rounds"] == incremental["rounds"] > 5
