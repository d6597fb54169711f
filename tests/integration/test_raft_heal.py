"""Every node catches up within 5 s of the last heal, with no acknowledged write lost (issue 24; root).

Short form of ``bench/raft_heal.py``: store processes in p2rf-h* namespaces, partitions by iptables,
pauses and kills, every fourth write over 64 KiB. Seeds 2 and 5 left a follower behind for good before
the fix (its log ended in entries of an older term). ``P2RF_HEAL_SEEDS=1-20`` runs the long form.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import raft_heal  # noqa: E402

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("iptables") is None,
        reason="needs root, iproute2 and iptables",
    ),
]

SEEDS = raft_heal.parse_seeds(os.environ.get("P2RF_HEAL_SEEDS", "2,5"))


def test_followers_converge_after_partitions_heal() -> None:
    with raft_heal.namespaces(3) as netns:
        runs = [raft_heal.run_seed(seed, netns, fault_s=20.0, bound_s=5.0, wait_s=15.0) for seed in SEEDS]
    for run in runs:
        print({k: v for k, v in run.items() if k not in ("status", "logs")})
    assert sum(r["lost"] for r in runs) == 0
    assert all(r["acked"] > 50 and r["large_acked"] > 10 for r in runs)
    slow = [r for r in runs if not r["ok"]]
    assert not slow, [{k: r[k] for k in ("seed", "converge_s", "behind", "status")} for r in slow]
