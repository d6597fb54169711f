"""The control-plane benchmark's "daemons" mode: the daemon's own control plane in each voter process.

Each voter is ``python -m p2porch.testing.control_member``: the Raft store, the daemon's leader loop
(``leader.loop.serve_scheduler``: rounds planned and committed inside the leading voter) and the service
API over a unix socket (``ServiceOps`` behind ``serve_api``, the CLI's path). The simulated nodes'
agents live in one follower's process and report through that follower's store (``store.write``,
forwarded to the leader by pysyncobj, the path of an agent on a non-leader node), up to 64 reports per
command from ``--reporters`` concurrent writers. The timed phase starts when the first service is
created through the API and ends when the last task is reported running.
Imported by ``bench/control_plane.py`` (this folder is on ``sys.path`` when it runs).
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from pathlib import Path
from typing import Any

from control_plane_phases import (
    catch_up,
    compaction,
    failover,
    init_and_join,
    run_parallel,
    snapshot_figures,
    status,
    wait_version,
)
from control_plane_procs import cpu_s, rss_mb, thread_cpu_s
from control_plane_views import rebuild_costs
from spy_profile import PhaseProfile

from p2porch.api.client import ApiClient
from p2porch.model import TaskState
from p2porch.raft.state import ClusterState
from p2porch.raft.store import JOURNAL_NAME
from p2porch.testing.raftprocs import LocalCluster, NodeProc

REPLICAS_PER_SERVICE = 100
MEMBER_MODULE = "p2porch.testing.control_member"


def api_socket(node: NodeProc) -> Path:
    return node.data_dir / "api.sock"


def create_services(node: NodeProc, count: int, clients: int) -> None:
    """``count`` services of 100 replicas through ``node``'s service API (``clients`` at a time)."""
    local = threading.local()
    opened: list[ApiClient] = []

    def create(s: int) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = ApiClient(f"unix://{api_socket(node)}", timeout_s=60)
            opened.append(client)
        client.post(
            "/services", {"name": f"svc{s}", "image": "p2porch/bench", "replicas": REPLICAS_PER_SERVICE}
        )

    try:
        run_parallel(create, range(count), clients)
    finally:
        for client in opened:
            client.close()


def follower_of(cluster: LocalCluster, leader: NodeProc) -> NodeProc:
    return next(n for n in cluster.voters() if n is not leader)


def timed_phase(
    cluster: LocalCluster, leader: NodeProc, agents: NodeProc, tasks: int, args: argparse.Namespace
) -> dict[str, Any]:
    """Create the services through the API; seconds until every task is placed and reported running."""
    pid = leader.proc.pid if leader.proc else 0
    journal = leader.data_dir / JOURNAL_NAME
    st0 = status(leader)
    cpu0, threads0, journal0 = cpu_s(pid), thread_cpu_s(pid), journal.stat().st_size
    pids = {n.name: n.proc.pid for n in cluster.voters() if n.proc is not None}
    with PhaseProfile(Path(args.profile) / f"tasks-{tasks}" if args.profile else None, pids):
        t0 = time.monotonic()
        create_services(agents, max(1, tasks // REPLICAS_PER_SERVICE), args.api_clients)
        api_s = time.monotonic() - t0
        sim = wait_all_running(agents, tasks, t0 + args.timeout_s)
    total_s = sim["last_running_at"] - t0
    placed_s = sim["last_placed_at"] - t0
    leader_cpu = cpu_s(pid) - cpu0
    threads1 = thread_cpu_s(pid)
    st1 = status(leader)
    return {
        "placed": sim["placed_seen"],
        "running": sim["running"],
        "api_create_s": round(api_s, 2),
        "placed_per_s": round(sim["placed_seen"] / placed_s, 1),
        "end_to_end_running_per_s": round(sim["running"] / total_s, 1),
        "end_to_end_s": round(total_s, 2),
        "leader_cpu_ms_per_task": round(1000 * leader_cpu / tasks, 3),
        "leader_cpu_s_by_thread": {
            k: round(v - threads0.get(k, 0.0), 2)
            for k, v in threads1.items()
            if v - threads0.get(k, 0.0) > 0.05
        },
        "raft_commands_per_task": round((st1["state_version"] - st0["state_version"]) / tasks, 4),
        "raft_entries_per_task": round((st1["commit_index"] - st0["commit_index"]) / tasks, 4),
        "journal_bytes_per_task": round((journal.stat().st_size - journal0) / tasks, 1),
        "report_commands": sim["commands"],
        "report_bytes_per_task": round(sim["bytes"] / max(1, sim["running"]), 1),
        "expected_version": st1["state_version"],
    }


def wait_all_running(agents: NodeProc, tasks: int, deadline: float) -> dict[str, Any]:
    """The agents' figures once ``tasks`` tasks are reported running (RuntimeError past ``deadline``)."""
    while True:
        sim: dict[str, Any] = agents.call(op="sim_status")["agents"]
        if sim["errors"]:
            raise RuntimeError(f"agents' reports failed: {sim['last_error']}")
        if sim["running"] >= tasks:
            return sim
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {sim['running']} of {tasks} tasks running by the deadline")
        time.sleep(0.05)


def run_daemons_point(
    root: Path, nodes: int, tasks: int, args: argparse.Namespace, full: bool
) -> dict[str, Any]:
    cluster = LocalCluster(
        root,
        voters=3,
        replicas=1,
        module=MEMBER_MODULE,
        node_args=lambda n: ["--api-socket", str(api_socket(n))],
    )
    try:
        for node in cluster.voters():
            cluster.start(node, wait=False)
        for node in cluster.voters():
            cluster.wait_ready(node)
        leader = cluster.leader()
        s0 = time.perf_counter()
        init_and_join(leader, nodes, args.reporters)
        agents = follower_of(cluster, leader)
        wait_version(agents, status(leader)["state_version"], 30)
        agents.call(op="sim_agents", reporters=args.reporters)
        setup_s = time.perf_counter() - s0
        load = os.getloadavg()[0]
        timed = timed_phase(cluster, leader, agents, tasks, args)
        if status(leader)["is_leader"] is not True:
            raise RuntimeError("leadership moved during the timed phase")
        final = ClusterState.from_dict(leader.call(op="state", timeout_s=60)["state"])
        running = sum(1 for t in final.tasks.values() if t.state == TaskState.RUNNING)
        row: dict[str, Any] = {
            "nodes": nodes,
            "tasks": len(final.tasks),
            "running_in_leader_state": running,
            "setup_s": round(setup_s, 1),
            "loadavg_1m_at_start": load,
            "agents_via": agents.name,
            "leader": leader.name,
        }
        row |= timed | snapshot_figures(final)
        row["views_rebuild"] = rebuild_costs(final)
        if full:
            row |= compaction(cluster, leader)
            row |= catch_up(cluster, leader, timed["expected_version"])
        row["voter_rss_mb"] = {n.name: rss_mb(n.proc.pid) for n in cluster.voters() if n.proc is not None}
        if full:
            row |= failover(cluster)
        return row
    finally:
        cluster.close()
