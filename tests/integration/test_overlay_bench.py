"""Smoke test: bench/overlay.py runs end to end with tiny parameters and prints its JSON."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, dockerd)"),
    pytest.mark.skipif(
        shutil.which("dockerd", path="/usr/sbin:/usr/bin:/sbin:/bin") is None,
        reason="docker.io is not installed",
    ),
    pytest.mark.skipif(shutil.which("iperf3") is None, reason="iperf3 is not installed"),
]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_overlay_bench_smoke():
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "bench", "overlay.py"),
            "--seconds",
            "1",
            "--repeats",
            "1",
            "--join-trials",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    tp = result["throughput"]
    assert set(tp["gbit_s"]) == {"underlay", "p2porch", "hand_vxlan"}
    assert all(v > 0 for v in tp["gbit_s"].values())
    assert tp["ratio_p2porch_to_hand_vxlan"] > 0
    assert 0 < result["time_to_reachable"]["seconds_max"] < 30
    assert "p2ovb" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
