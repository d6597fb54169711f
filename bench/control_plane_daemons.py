"""The control-plane benchmark's "daemons" mode: the daemon's own control plane in each voter process.

Each voter is ``python -m p2porch.testing.control_member``: the Raft store, the daemon's leader loop
(``leader.loop.serve_scheduler``: rounds planned and committed inside the leading voter) and the service
API over a unix socket (``ServiceOps`` behind ``serve_api``, the CLI's path). ``--replicas R`` read-only
replica stores (``python -m p2porch.testing.replica_host``, ``--replicas-per-process`` stores each)
follow the voters as every non-voter of a real cluster does: the leader sends them every append. The
simulated nodes are spread over them (node i on replica i mod R); each node's agent
(``testing.sim_nodes``) reports STARTING when it sees its task placed and RUNNING ``--start-s`` later,
in batches of its own (the agent's flush loop: 0.1 s or 64 reports), through its replica's store
(``store.write``, forwarded to the leader by pysyncobj, a real agent's path). With ``--replicas 0``
every agent lives on one follower voter instead. The replica-host processes stand for the other 1,000
machines; ``--hosts-nice N`` runs them at os.nice N (default 0). Only they may be niced, never the
voters' own work (Raft, FSM, leader round, API, their member views); but the replica stores in them
are Raft followers the leader replicates to, and starved (nice 10 at 100,000 tasks) they drop their
connections and cost the leader snapshots. The timed phase starts when the first service is
created through the API and ends when the last task is reported running; every task must be placed
and reported running, or the run fails.
Imported by ``bench/control_plane.py`` (this folder is on ``sys.path`` when it runs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

from control_plane_phases import (
    catch_up,
    compaction,
    failovers,
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
from p2porch.testing.seed_state import node_id
from p2porch.testing.sim_nodes import merge_status

REPLICAS_PER_SERVICE = 100
MEMBER_MODULE = "p2porch.testing.control_member"
HOST_MODULE = "p2porch.testing.replica_host"


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


CATCH_UP = "r0"  # the replica started late to measure a catch-up; r1.. are replica hosts


def is_host(node: NodeProc) -> bool:
    return node.raft_addr is None and node.name != CATCH_UP


def store_split(total: int, parts: int) -> list[int]:
    """``total`` replica stores over ``parts`` processes, as evenly as possible."""
    return [total // parts + (i < total % parts) for i in range(parts)]


def sim_status(agent_hosts: list[NodeProc]) -> dict[str, Any]:
    return merge_status(h.call(op="sim_status")["agents"] for h in agent_hosts)


def start_agents(
    cluster: LocalCluster, leader: NodeProc, nodes: int, args: argparse.Namespace
) -> list[NodeProc]:
    """Start the simulated nodes' agents; the processes they live in.

    With replicas, node ``i`` lives on replica store ``i mod R`` (each a read-only store the leader
    replicates to, as every non-voter of a real cluster); without, all live on one follower voter."""
    ids = [node_id(i) for i in range(nodes)]
    version = status(leader)["state_version"]
    hosts = [n for n in cluster.replicas() if is_host(n)]
    if not hosts:
        follower = follower_of(cluster, leader)
        wait_version(follower, version, 60)
        follower.call(op="sim_agents", nodes=ids, start_s=args.start_s, bulk=args.bulk)
        return [follower]
    for host in hosts:
        cluster.start(host, wait=False)
    for host in hosts:
        cluster.wait_ready(host, timeout_s=60)
    total = args.replicas
    deadline = time.monotonic() + 120
    for host in hosts:
        while min(s["state_version"] for s in host.call(op="statuses")["statuses"]) < version:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{host.name}'s replica stores did not catch up to version {version}")
            time.sleep(0.05)
    first = 0
    for host, stores in zip(hosts, store_split(total, len(hosts)), strict=True):
        share = [[ids[i] for i in range(nodes) if i % total == first + k] for k in range(stores)]
        host.call(op="sim_agents", nodes=share, start_s=args.start_s, bulk=args.bulk)
        first += stores
    return hosts


def timed_phase(
    cluster: LocalCluster, leader: NodeProc, agent_hosts: list[NodeProc], tasks: int, args: argparse.Namespace
) -> dict[str, Any]:
    """Create the services through the API; seconds until every task is placed and reported running."""
    pid = leader.proc.pid if leader.proc else 0
    procs = {n.name: n.proc.pid for n in cluster.nodes if n.proc is not None and n.alive}
    journal = leader.data_dir / JOURNAL_NAME
    st0 = status(leader)
    cpu0, threads0, journal0 = cpu_s(pid), thread_cpu_s(pid), journal.stat().st_size
    sys0 = thread_cpu_s(pid, system_only=True)
    procs0 = {name: cpu_s(p) for name, p in procs.items()}
    views0 = leader.call(op="sim_status")["views"]
    pids = {n.name: n.proc.pid for n in cluster.voters() if n.proc is not None}
    with PhaseProfile(Path(args.profile) / f"tasks-{tasks}" if args.profile else None, pids):
        t0 = time.monotonic()
        create_services(follower_of(cluster, leader), max(1, tasks // REPLICAS_PER_SERVICE), args.api_clients)
        api_s = time.monotonic() - t0
        sim = wait_all_running(agent_hosts, tasks, t0 + args.timeout_s)
    forwarded = forwarding_totals(store_forwarding(agent_hosts))
    total_s = sim["last_running_at"] - t0
    placed_s = sim["last_placed_at"] - t0
    leader_cpu = cpu_s(pid) - cpu0
    threads1, sys1 = thread_cpu_s(pid), thread_cpu_s(pid, system_only=True)
    st1 = status(leader)
    views1 = leader.call(op="sim_status")["views"]
    views = None
    if views0 is not None and views1 is not None:
        views = {
            "bursts": {k: v - views0["bursts"].get(k, 0) for k, v in views1["bursts"].items()},
            "cpu_s": {k: round(v - views0["cpu_s"].get(k, 0.0), 2) for k, v in views1["cpu_s"].items()},
            "full_rebuilds": {
                k: v - views0.get("full_rebuilds", {}).get(k, 0)
                for k, v in views1.get("full_rebuilds", {}).items()
            },
        }
    return {
        "placed": sim["placed_seen"],
        "running": sim["running"],
        "starting_reports_applied": sim["starting"],
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
        "leader_system_s_by_thread": {  # of leader_cpu_s_by_thread, the seconds in the kernel
            k: round(v - sys0.get(k, 0.0), 2)
            for k, v in sys1.items()
            if threads1[k] - threads0.get(k, 0.0) > 0.05
        },
        "leader_views": views,
        "cpu_s_by_process": {name: round(cpu_s(p) - procs0[name], 1) for name, p in procs.items()},
        "leader_replicas_connected": st1["replicas_connected"],
        # elections during the phase (each costs an election timeout of stalled commits): the first
        # leader's view of the term, and whether it still leads at the end
        "raft_term_changes": st1["term"] - st0["term"],
        "leader_kept": bool(st1["is_leader"]),
        "state_versions_per_task": round((st1["state_version"] - st0["state_version"]) / tasks, 4),
        "raft_entries_per_task": round((st1["commit_index"] - st0["commit_index"]) / tasks, 4),
        "journal_bytes_per_task": round((journal.stat().st_size - journal0) / tasks, 1),
        "report_commands": sim["commands"],
        "report_commands_per_task": round(sim["commands"] / tasks, 4),
        "reports_applied_per_command": round((sim["starting"] + sim["running"]) / max(1, sim["commands"]), 1),
        "report_delivery_failures": sim["failures"],
        # the agents' stores' forwarded proposals failed at once instead of lost (raft/forwarded.py)
        "forwarded_failed_not_lost": forwarded,
        "report_bytes_per_task": round(sim["bytes"] / tasks, 1),
        "expected_version": st1["state_version"],
    }


def store_forwarding(agent_hosts: list[NodeProc]) -> dict[str, list[dict[str, Any]]]:
    """Each agent store's indexes against the leader's and its forwarded proposals (RaftStore.forwarding):
    which stores stopped committing, and whether they wait for the leader's answers or for their own
    apply (a replica behind), when the phase missed its deadline."""
    out: dict[str, list[dict[str, Any]]] = {}
    for host in agent_hosts:
        try:
            answer = (
                host.call(op="statuses")
                if is_host(host)
                else {"statuses": [host.call(op="status")["status"]]}
            )
        except Exception as exc:  # noqa: BLE001 (diagnosis of a failed run: say what could not be read)
            out[host.name] = [{"error": f"{type(exc).__name__}: {exc}"}]
            continue
        out[host.name] = [s.get("forwarding", {}) for s in answer["statuses"]]
    return out


def forwarding_totals(stores: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """The agent stores' forwarded proposals that were failed instead of lost, summed by cause."""
    rows = [row for host in stores.values() for row in host]
    return {key: sum(int(row.get(key) or 0) for row in rows) for key in ("unsent", "dropped", "covered")}


def wait_all_running(agent_hosts: list[NodeProc], tasks: int, deadline: float) -> dict[str, Any]:
    """The simulated nodes' figures once ``tasks`` tasks are reported running (RuntimeError past
    ``deadline``, naming the last delivery error) and each task was placed and reported exactly once."""
    while True:
        sim = sim_status(agent_hosts)
        if sim["running"] >= tasks:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"only {sim['running']} of {tasks} tasks running ({sim['placed_seen']} placed) by the "
                f"deadline; last delivery error: {sim['last_error'] or 'none'}; the agents' stores: "
                f"{json.dumps(store_forwarding(agent_hosts))}"
            )
        time.sleep(0.05)
    if not sim["placed_seen"] == sim["running"] == tasks:
        raise RuntimeError(f"placed {sim['placed_seen']}, running {sim['running']}, wanted {tasks} of each")
    return sim


def daemons_cluster(root: Path, args: argparse.Namespace) -> tuple[LocalCluster, dict[str, int]]:
    """The point's processes, none started: 3 voters (``control_member``: store, leader loop, API and,
    unless ``--no-views``, one simulated node's views from the process's start, restarts included), the
    catch-up replica ``r0`` and the replica hosts ``r1..`` (host name -> its replica stores)."""
    per = max(1, args.replicas_per_process)
    hosts = -(-args.replicas // per) if args.replicas else 0
    stores = dict(
        zip((f"r{i + 1}" for i in range(hosts)), store_split(args.replicas, hosts or 1), strict=False)
    )

    def node_args(n: NodeProc) -> list[str]:
        if is_host(n):
            return ["--stores", str(stores[n.name]), "--nice", str(args.hosts_nice)]
        # voter i runs simulated node i's views, as a daemon runs its own node's from its start
        views = ["--views", node_id(int(n.name[1:]))] if args.views else []
        # profiled or seeded: role changes, elections and epochs logged (the failovers' marks)
        verbose = args.profile or getattr(args, "seed_state", False)
        return ["--api-socket", str(api_socket(n)), *views] + (["--log-level", "INFO"] if verbose else [])

    cluster = LocalCluster(
        root,
        voters=3,
        replicas=1 + hosts,
        module=MEMBER_MODULE,
        module_for=lambda n: HOST_MODULE if is_host(n) else MEMBER_MODULE,
        node_args=node_args,
        die_with_parent=True,
    )
    return cluster, stores


def keep_logs(cluster: LocalCluster, folder: Path) -> None:
    """The members' logs (role changes, elections, trio watch) copied into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in cluster.nodes:
        if n.log_path is not None and n.log_path.exists():
            shutil.copyfile(n.log_path, folder / f"{n.name}.log")


def run_daemons_point(
    root: Path, nodes: int, tasks: int, args: argparse.Namespace, full: bool
) -> dict[str, Any]:
    cluster, stores = daemons_cluster(root, args)
    hosts = len(stores)
    try:
        for node in cluster.voters():
            cluster.start(node, wait=False)
        for node in cluster.voters():
            cluster.wait_ready(node)
        leader = cluster.leader()
        s0 = time.perf_counter()
        init_and_join(leader, nodes, args.reporters)
        agent_hosts = start_agents(cluster, leader, nodes, args)
        setup_s = time.perf_counter() - s0
        load = os.getloadavg()[0]
        timed = timed_phase(cluster, leader, agent_hosts, tasks, args)
        first_leader = leader.name
        if status(leader)["is_leader"] is not True:  # an election in the phase: reported, figures kept
            print(f"leadership moved during the timed phase: {json.dumps(timed)}", file=sys.stderr)
            leader = cluster.leader()
        final = ClusterState.from_dict(leader.call(op="state", timeout_s=60)["state"])
        running = sum(1 for t in final.tasks.values() if t.state == TaskState.RUNNING)
        if running != tasks or len(final.tasks) != tasks:
            raise RuntimeError(
                f"the leader's state holds {len(final.tasks)} tasks, {running} running; wanted {tasks}"
            )
        row: dict[str, Any] = {
            "nodes": nodes,
            "tasks": len(final.tasks),
            "replicas": args.replicas,
            "replica_processes": hosts,
            "start_s": args.start_s,
            "views_in_voters": args.views,
            "running_in_leader_state": running,
            "setup_s": round(setup_s, 1),
            "loadavg_1m_at_start": load,
            "agents_via": [h.name for h in agent_hosts],
            "leader": leader.name,
            "leader_at_start": first_leader,  # the CPU figures of the phase are this process's
        }
        row |= timed | snapshot_figures(final)
        row["views_rebuild"] = rebuild_costs(final)
        row["replica_host_rss_mb"] = {
            h.name: rss_mb(h.proc.pid) for h in agent_hosts if is_host(h) and h.proc
        }
        if full:
            row |= compaction(cluster, leader)
            row |= catch_up(cluster, cluster.node(CATCH_UP), timed["expected_version"])
        row["voter_rss_mb"] = {n.name: rss_mb(n.proc.pid) for n in cluster.voters() if n.proc is not None}
        row["voter_gc"] = {
            n.name: n.call(op="sim_status")["gc"] for n in cluster.voters() if n.proc is not None
        }
        if full:
            row |= failovers(cluster, args.failovers)
        return row
    finally:
        if args.profile:  # the members' logs (role changes, elections) next to the profile
            keep_logs(cluster, Path(args.profile) / f"tasks-{tasks}")
        cluster.close()
