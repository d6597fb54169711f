"""pysyncobj replaces socket.inet_ntop with a Windows-only version when first imported; the store puts
the real one back whichever p2porch module imported pysyncobj first."""

from __future__ import annotations

import subprocess
import sys

import pytest

FIRST_IMPORTS = ["pysyncobj", "p2porch.raft.dumps", "p2porch.leader.autopilot", "p2porch.raft.store"]


@pytest.mark.parametrize("first", FIRST_IMPORTS)
def test_inet_ntop_works_after_the_store_is_imported(first: str) -> None:
    code = (
        f"import {first}, p2porch.raft.store, socket\n"
        "print(socket.inet_ntop(socket.AF_INET6, bytes(15) + b'\\x01'),"
        " socket.inet_ntop(socket.AF_INET, bytes([10, 0, 0, 1])))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["::1", "10.0.0.1"]
