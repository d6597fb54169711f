"""Smoke test: the commit benchmark runs end to end with tiny parameters and prints its JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_bench_smoke() -> None:
    args = ["--writes", "10", "--concurrent-writes", "32", "--skip-etcd"]
    bench = str(ROOT / "bench" / "raft_commit.py")
    out = subprocess.run(
        [sys.executable, bench, *args], capture_output=True, timeout=120, check=True, cwd=ROOT
    )
    result = json.loads(out.stdout)
    ours = result["p2porch"]
    assert ours["leader_1_writer"]["writes"] == 10 and ours["leader_16_writers"]["writes"] == 32
    assert ours["leader_16_writers"]["errors"] == 0 and ours["state_version"] >= 1 + 10 + 10 + 32
