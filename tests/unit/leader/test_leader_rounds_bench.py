"""Smoke test: bench/leader_rounds.py plans one small sequence both ways to the same end."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path


def test_both_sequences_run_every_task_in_the_same_rounds() -> None:
    path = Path(__file__).resolve().parents[3] / "bench" / "leader_rounds.py"
    spec = importlib.util.spec_from_file_location("bench_leader_rounds", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = argparse.Namespace(nodes=12, services=9, replicas=5, per_round=2)
    full, incremental = module.sequence("full", args), module.sequence("incremental", args)
    assert full["running"] == incremental["running"] == 45
    assert full["rounds"] == incremental["rounds"] > 5
