"""Smoke test: the control-plane benchmark's short form runs end to end and prints its JSON (no timing)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def run_bench(args: list[str], timeout_s: float) -> bytes:
    """Run a benchmark in its own session; on timeout kill the whole group (its member processes too)."""
    proc = subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err.decode(errors="replace")[-3000:]
    return out


@pytest.mark.parametrize("mode", ["daemons", "direct"])
def test_control_plane_bench_short_form(mode: str) -> None:
    bench = str(ROOT / "bench" / "control_plane.py")
    # starts of 1.5 s: longer than the agents' STARTING hold (1 s, agent/report_window.py), so each node
    # still reports STARTING before RUNNING (a shorter start is reported once, as RUNNING)
    result = json.loads(run_bench([bench, "--short", "--mode", mode, "--start-s", "1.5"], 120))
    assert result["benchmark"] == "control_plane" and result["mode"] == mode
    (point,) = result["points"]
    # every task of the 2 services of 100 replicas was placed on the 10 nodes and reported running
    assert (point["nodes"], point["tasks"], point["placed"], point["running"]) == (10, 200, 200, 200)
    size_key = "journal_bytes_per_task" if mode == "daemons" else "raft_bytes_per_task"
    for key in ("placed_per_s", "end_to_end_running_per_s", "leader_cpu_ms_per_task", size_key):
        assert point[key] > 0, key
    if mode == "daemons":  # the leader's own state says so too (its leader loop placed them)
        assert point["running_in_leader_state"] == 200 and point["leader"] not in point["agents_via"]
        # the agents live on 2 read-only replica stores the leader replicates to; each node reported
        # STARTING then RUNNING in batches of its own (at least one command per node and state)
        assert point["replicas"] == 2 and point["leader_replicas_connected"] >= 2
        assert point["raft_term_changes"] >= 0 and isinstance(point["leader_kept"], bool)
        assert point["starting_reports_applied"] > 0 and point["report_commands"] >= 10
        views = point["leader_views"]  # the leader rebuilt a node's views on commits during the phase
        assert (
            views["bursts"]["dns"] > 0 and views["bursts"]["traffic"] > 0 and views["bursts"]["overlay"] > 0
        )
        assert point["replica_host_rss_mb"] and all(v > 0 for v in point["replica_host_rss_mb"].values())
    else:
        assert point["report_commands"] >= 10  # at least one report batch per node
    assert point["snapshot_bytes"] > 200 * 100  # every task record is in the snapshot
    assert len(point["voter_rss_mb"]) == 3 and point["replica_rss_mb"] > 0
    assert sorted(point["compaction_s"]) == ["v0", "v1", "v2"]  # every voter wrote its dump
    assert isinstance(point["compaction_leader_kept"], bool)
    assert point["replica_catch_up_s"] > 0 and point["failover_s"] > 0
    assert point["killed"] != point["new_leader"]
    views = point["views_rebuild"]
    assert views["overlay_peers"] == 9 and views["zone_names"] > 200  # every node's peers, every task's name
    assert all(views[k] >= 0 for k in ("dns_zone_ms", "dns_zone_incremental_ms", "overlay_plan_ms"))


def test_control_plane_bench_seeded_short_form() -> None:
    """--seed-state: every store starts on the final state (its Raft dump); failovers on it, each voter
    (restarted ones too) running its node's views, each failover's API write placed by the new leader."""
    bench = str(ROOT / "bench" / "control_plane.py")
    result = json.loads(run_bench([bench, "--short", "--seed-state", "--failovers", "2"], 120))
    assert result["seeded"] is True
    (point,) = result["points"]
    assert (point["nodes"], point["tasks"], point["tasks_running"]) == (10, 200, 200)
    assert point["seeded_stores"] == 3 + 2  # the voters and the 2 replica stores the agents write through
    runs = point["failovers"]
    assert len(runs) == 2 and runs[0]["killed"] != runs[1]["killed"]
    # the live voters at the end: the one the first failover killed (restarted) and one never killed
    views = point["voter_views_bursts"]
    assert len(views) == 2 and runs[0]["killed"] in views and runs[1]["killed"] not in views
    assert all(b and b["dns"] > 0 for b in views.values())
    for run in runs:
        assert run["killed"] != run["new_leader"] and run["failover_s"] > 0
        at = run["from_kill_s"]
        assert 0 < at["became_leader"] <= at["epoch_claimed"]
        assert 0 < at["api_write_answered"] <= at["task_placed"] <= at["task_running"]
        assert run["new_leader_gen2_since_kill"]["count"] >= 0
    # the services the failovers created: the seeded state's version grew by more than their writes
    assert point["state_version_at_end"] > point["state_version"] + 2


def test_idle_bench_raft_only_short_form() -> None:
    bench = str(ROOT / "bench" / "idle.py")
    result = json.loads(run_bench([bench, "--raft-only", "--seconds", "2"], 120))
    assert result["benchmark"] == "idle" and len(result["processes"]) == 3
    for proc in result["processes"].values():
        assert proc["rss_mb"] > 0 and proc["threads"] >= 2 and proc["wakeups_per_s"] >= 0
