"""Real pysyncobj voters ticked by a test (``RaftBridge`` with ``autoTick=False``): the owner they need,
one tick of each, and waiting for a leader (shell; never used by the daemon).

Owns no voters: the test builds, ticks and destroys them. It never sleeps longer than 10 ms at a time and
never decides anything about the cluster beyond "one leader, known to every node".
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from p2porch.raft.bridge import RaftBridge


class BridgeTestOwner:
    """A store stand-in for a bare ``RaftBridge``: the settings it reads, an apply that applies nothing."""

    config = SimpleNamespace(replica_beat_s=1.0, heartbeat_answer_period_s=0.5, election_timeout_min_s=1.0)

    def _apply_on_raft_thread(self, batch: bytes) -> list[Any]:
        return []


def tick(nodes: Sequence[RaftBridge], rounds: int = 1) -> None:
    """Tick every node once per round, in order (the test's thread is their Raft thread)."""
    for _ in range(rounds):
        for so in nodes:
            so._onTick(0.0)


def elect_leader(nodes: Sequence[RaftBridge], timeout_s: float = 15.0) -> RaftBridge:
    """Tick ``nodes`` until one leads and every node knows a leader; AssertionError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        tick(nodes)
        leaders = [so for so in nodes if so._isLeader()]
        if leaders and all(so._getLeader() is not None for so in nodes):
            return leaders[0]
        time.sleep(0.01)
    raise AssertionError("no leader elected")
