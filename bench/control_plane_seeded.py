"""The control-plane benchmark's seeded mode (``--seed-state``): failovers at a large state, not placed first.

Placing 100,000 tasks through the scheduler takes ~7 minutes (docs/performance.md), which leaves a locked
run no time to repeat failovers. Here the state a ``--bulk`` run ends with is built in this process with
the real FSM (``p2porch.testing.seed_state``: the same commands, made by the same code, as the API, the
leader's rounds and the simulated agents commit; ``tests/unit/testing/test_seed_state.py`` compares it
with a real run's) and written as each store's Raft dump before it starts: the 3 voters and the 20 replica
stores load it at start, as a store restarted after a compaction loads its own (a real run compacts every
voter before its failovers too). Every voter is the same process as in ``--mode daemons``, started the same
way each time, restarts included: the store, the leader loop, the service API and one simulated node's
member views (DNS zone, ingress/VIP, overlay and policy plans) from the process's start; the simulated
nodes' agents run on the replica stores as in a real run (all their tasks already RUNNING). Then
``--failovers N`` kills the leader N times. Each failover reports, besides the bench's Noop write
(``failover_s``): the new leader's Raft role change and epoch claim from its log, a service of one replica
created through the new leader's API (answered), its task placed by the new leader's round and reported
RUNNING by its node's agent, each in seconds from the kill; the new leader's late trio beats in that
window with every thread's innermost frames (``P2PORCH_TRIO_WATCH_S``: where the trio thread was) and its
generation-2 collections since the kill.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import time
from pathlib import Path
from typing import Any

from control_plane_daemons import (
    api_socket,
    daemons_cluster,
    is_host,
    keep_logs,
    start_agents,
)
from control_plane_phases import failovers, status, wait_version
from control_plane_procs import rss_mb

from p2porch.api.client import ApiClient
from p2porch.model import TaskState
from p2porch.raft.store import DUMP_NAME
from p2porch.testing.raftprocs import LocalCluster, NodeProc
from p2porch.testing.seed_state import IMAGE, seed_state, write_seed_dump

# the member's log format (raft/node.py): "2026-12-05 06:20:49,123 p2porch.raft.store raft role ..."
_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\S+) (.*)$")


def log_marks(log_path: Path | None, since: float) -> dict[str, float]:
    """Wall-clock times after ``since`` of the member's first role change to leader and epoch claim."""
    out: dict[str, float] = {}
    if log_path is None or not log_path.exists():
        return out
    for line in log_path.read_text(errors="replace").splitlines():
        m = _LOG_TIME.match(line)
        if m is None:
            continue
        at = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if at < since:
            continue
        text = m.group(3)
        if text.startswith("raft role") and text.endswith("-> leader"):
            out.setdefault("became_leader", at)
        elif text.startswith("leading under epoch"):
            out.setdefault("epoch_claimed", at)
    return out


class WriteProbe:
    """Per failover: the new leader's API write, the round that places it, its agent's report, its trio
    watch and full collections (the module docstring)."""

    def __init__(self, timeout_s: float = 60.0) -> None:
        self.timeout_s = timeout_s
        self.count = 0
        self.gen2: dict[str, tuple[int, float]] = {}

    def before_kill(self, cluster: LocalCluster) -> None:
        self.gen2 = {}
        for n in cluster.voters():
            if n.alive:
                gc = n.call(op="sim_status")["gc"]["gen2"]
                self.gen2[n.name] = (gc["count"], gc["total_s"])

    def after(self, new: NodeProc, marks: dict[str, float]) -> dict[str, Any]:
        kill = marks["kill"]
        self.count += 1
        name = f"failover{self.count}"
        client = ApiClient(f"unix://{api_socket(new)}", timeout_s=self.timeout_s)
        times: dict[str, float] = {}
        try:
            times["api_write_sent"] = time.time()
            client.post("/services", {"name": name, "image": IMAGE, "replicas": 1})
            times["api_write_answered"] = time.time()
            deadline = time.monotonic() + self.timeout_s
            while "task_running" not in times and time.monotonic() < deadline:
                rows = client.get(f"/services/{name}/tasks", stale="true")  # what the new leader applied
                if rows and rows[0].get("node") and "task_placed" not in times:
                    times["task_placed"] = time.time()
                if rows and rows[0].get("state") == "running":
                    times["task_running"] = time.time()
                time.sleep(0.02)
        finally:
            client.close()
        sim = new.call(op="sim_status")
        times |= log_marks(new.log_path, kill)
        gc = sim["gc"]["gen2"]
        count0, total0 = self.gen2.get(new.name, (gc["count"], gc["total_s"]))
        lates = [b for b in sim.get("trio_watch") or [] if b["at"] >= kill]
        return {
            "from_kill_s": {k: round(v - kill, 3) for k, v in sorted(times.items(), key=lambda kv: kv[1])},
            "new_leader_gen2_since_kill": {
                "count": gc["count"] - count0,
                "s": round(gc["total_s"] - total0, 3),
            },
            "new_leader_trio_late": lates,
            "new_leader_trio_late_max_s": max((b["late_s"] for b in lates), default=0.0),
        }


def seed_dumps(cluster: LocalCluster, stores: dict[str, int], nodes: int, tasks: int) -> dict[str, Any]:
    """Build the state and write it as the dump of every voter and replica store; figures."""
    c0 = time.process_time()
    state = seed_state(nodes, tasks, time.time())
    built_s = time.process_time() - c0
    paths = [n.data_dir / DUMP_NAME for n in cluster.voters()]
    paths += [
        cluster.node(h).data_dir / f"s{k}" / DUMP_NAME for h, count in stores.items() for k in range(count)
    ]
    size = 0
    for path in paths:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        size = write_seed_dump(path, state, cluster.voter_addrs)
    return {
        "seed_build_cpu_s": round(built_s, 1),
        "seed_dump_bytes": size,
        "seeded_stores": len(paths),
        "state_version": state.version,
        "tasks_running": sum(1 for t in state.tasks.values() if t.state == TaskState.RUNNING),
    }


def run_seeded_point(
    root: Path, nodes: int, tasks: int, args: argparse.Namespace, full: bool
) -> dict[str, Any]:
    cluster, stores = daemons_cluster(root, args)
    try:
        row: dict[str, Any] = {"nodes": nodes, "tasks": tasks, "seeded": True, "replicas": args.replicas}
        row |= seed_dumps(cluster, stores, nodes, tasks)
        t0 = time.monotonic()
        for node in cluster.voters():
            cluster.start(node, wait=False)
        for node in cluster.voters():
            cluster.wait_ready(node, timeout_s=300)
        leader = cluster.leader(timeout_s=120)
        for node in cluster.voters():
            wait_version(node, row["state_version"], 120)
        row["voters_loaded_s"] = round(time.monotonic() - t0, 1)
        agent_hosts = start_agents(cluster, leader, nodes, args)
        row["stores_loaded_s"] = round(time.monotonic() - t0, 1)
        row["agents_via"] = [h.name for h in agent_hosts]
        time.sleep(5.0)  # the first leader's round and the views' first builds settle before the first kill
        row["loadavg_1m_at_start"] = os.getloadavg()[0]
        row["voter_rss_mb"] = {n.name: rss_mb(n.proc.pid) for n in cluster.voters() if n.proc is not None}
        row["replica_host_rss_mb"] = {
            h.name: rss_mb(h.proc.pid) for h in agent_hosts if is_host(h) and h.proc
        }
        row["views_in_voters"] = args.views
        row |= failovers(cluster, args.failovers, WriteProbe())
        # every voter, restarted or not, runs its node's views (bursts handled per view; None: no views)
        row["voter_views_bursts"] = {
            n.name: (n.call(op="sim_status")["views"] or {}).get("bursts")
            for n in cluster.voters()
            if n.alive
        }
        row["loadavg_1m_at_end"] = os.getloadavg()[0]
        row["leader_at_end"] = cluster.leader().name
        row["state_version_at_end"] = status(cluster.leader())["state_version"]
        return row
    finally:
        if args.profile:
            keep_logs(cluster, Path(args.profile) / f"seeded-{tasks}")
        cluster.close()
