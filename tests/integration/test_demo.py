"""The README's demo command runs end to end; its own checks fail it when a step does not work."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from p2porch.sandbox.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[2]


def test_demo_script_runs_end_to_end():
    name = "p2dm"
    env = {**os.environ, "P2PORCH_DEMO_SKIP_INSTALL": "1", "P2PORCH_DEMO_SANDBOX": name}
    try:
        result = subprocess.run(
            ["bash", str(ROOT / "scripts" / "demo.sh")],
            capture_output=True,
            text=True,
            env=env,
            timeout=900,
            cwd=ROOT,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "Done. Explore" in result.stdout
        assert "0% packet loss" in result.stdout
    finally:
        Sandbox(name).down()
