"""Smoke test: bench/dns.py runs end to end with tiny parameters and prints its JSON report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "dns.py"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("dnsperf") is None or not os.path.exists("/usr/sbin/dnsmasq"),
        reason="needs dnsperf and dnsmasq-base",
    ),
]


def test_bench_smoke() -> None:
    cmd = [sys.executable, str(BENCH), "--duration", "0.5", "--rounds", "1", "--rate", "500"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
    report = json.loads(out)
    for name in ("p2porch", "dnsmasq"):
        assert report[name]["qps"] > 0
        assert report[name]["lost"] == 0
        assert report[name]["latency"]["samples"] > 0
    counters = report["p2porch"]["counters"]["resolver"]
    assert counters["cache_hits"] > 0.99 * counters["queries"]  # the hot path is the cache
    assert counters["internal_errors"] == 0
    assert set(report["ratios"]) >= {"qps_p2porch_over_dnsmasq", "p99_p2porch_over_dnsmasq"}
