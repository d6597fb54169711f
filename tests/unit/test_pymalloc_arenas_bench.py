"""bench/pymalloc_arenas.py reads a live child's obmalloc arenas and finds its objects by type (root)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from p2porch.testing.bench_module import load_bench

CHILD = """
import sys
class Marker:
    pass
keep = [Marker() for _ in range(3000)]
sys._debugmallocstats()
sys.stderr.flush()
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nm"), reason="reads /proc/PID/mem (root) and nm")
def test_the_arenas_and_the_objects_of_a_child_are_read_without_stopping_it() -> None:
    module = load_bench("pymalloc_arenas")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        path, base = module.interpreter_image(child.pid)
        try:
            offsets = module.symbol_offsets(path)
        except SystemExit:
            pytest.skip(f"{path} is stripped")
        record = module.sample(child.pid, offsets, base)
        type_type = base + offsets["PyType_Type"]
        markers = sum(
            pool["kinds"].get("Marker", 0)
            for arena in record["arenas"]
            for pool in module.census(child.pid, arena, type_type, top=1000)
        )
    finally:
        child.stdin.close()  # type: ignore[union-attr]
        stderr = child.stderr.read().decode()  # type: ignore[union-attr]
        child.wait(timeout=10)
    current = next(line for line in stderr.splitlines() if line.startswith("# arenas allocated current"))
    assert record["allocated"] == len(record["arenas"]) == int(current.split("=")[1])
    assert all(0 < a["carved"] <= a["total"] and 0 <= a["free"] <= a["total"] for a in record["arenas"])
    assert sum(a["kb"] for a in record["arenas"]) == record["arenas_kb"] > 0
    assert markers == 3000
