import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gossip_sim_bench_quick_prints_json():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gossip_sim.py"), "--quick", "--sizes", "20"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    data = json.loads(proc.stdout)
    (result,) = data["results"]
    assert result["nodes"] == 20
    assert result["detect_dead_everywhere_s"] is not None
    assert result["detect_dead_everywhere_s"] <= result["detect_bound_s"]
    assert result["loss10_false_dead"] == 0
    assert "baseline_plain_swim" in data["lifeguard_vs_plain_swim"]
