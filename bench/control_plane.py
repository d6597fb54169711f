"""Control-plane benchmark: real Raft voters in separate processes, the real FSM and leader round, simulated
nodes with a fake engine (JSON).

    python bench/control_plane.py --nodes 100,300,1000 --tasks 10000,30000,100000   # grid, minutes
    python bench/control_plane.py --short          # the CI form: one small point, seconds

The grid is the nodes axis at the first task count and the tasks axis at the last node count; the
last point (most nodes, most tasks) also measures log compaction, a new replica's catch-up and a
leader failover. For each point, three store processes (``python -m p2porch.raft.node``, pysyncobj over
loopback, fsync'ed journals) start fresh; the simulated nodes join (``AddNode``, ``LeaseSubnet``)
and services of 100 replicas are created, then the timed phase runs the leader's scheduling round
(``leader.scheduling.plan_round``, the pure function the daemon's leader loop calls) on a mirror of
the committed state and commits its task writes as the leader loop does (``round_commands``) while
``--reporters`` threads play the simulated nodes' agents: as soon as a task's placement commits, its
node reports it running, up to 64 reports per ``ReportTaskStates`` (the agent's batch limit),
concurrently, so the store's group commit shares Raft entries between them as it does for real
agents. Measured: tasks placed and reported running per second end to end, the leader process's CPU
per task (and per thread), Raft commands, entries and bytes per task, snapshot size and time, voter
and replica RSS, and each member's per-change rebuild cost of its views (``control_plane_views``).
That is ``--mode direct`` (the store alone, no replicas, one RUNNING report per task, start time 0).
The default ``--mode daemons`` (``control_plane_daemons``) runs the daemon's leader loop and service
API inside each voter process, ``--replicas`` read-only replica stores the leader replicates to, and
each simulated node's agent on one of them, reporting STARTING and, ``--start-s`` later, RUNNING in
batches of its own. Both modes fail unless every task is placed and reported running. What neither
is (docs/performance.md): gossip, joins through the join port, Docker.

    python bench/control_plane.py --nodes 1000 --tasks 100000 --seed-state --failovers 5

``--seed-state`` (``control_plane_seeded``): the daemons mode's processes started on the state a run ends
with, written as every store's Raft dump (built in seconds, not placed in minutes), then only the
failovers, each with the new leader's API write, round and trio stalls.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from control_plane_phases import (  # noqa: E402
    catch_up,
    compaction,
    failover,
    init_and_join,
    run_parallel,
    snapshot_figures,
    status,
    wait_version,
)
from control_plane_procs import Proposer, cpu_s, rss_mb, thread_cpu_s  # noqa: E402
from control_plane_views import rebuild_costs  # noqa: E402

from p2porch.leader.scheduling import ROUND_CHUNK_ITEMS, plan_round, round_commands  # noqa: E402
from p2porch.model import ServiceSpec, TaskState  # noqa: E402
from p2porch.raft import commands as C  # noqa: E402
from p2porch.raft.fsm import apply_command  # noqa: E402
from p2porch.raft.state import ClusterState  # noqa: E402
from p2porch.scheduler.orchestrator import Orchestrator  # noqa: E402
from p2porch.testing.raftprocs import LocalCluster, NodeProc  # noqa: E402
from p2porch.testing.sim_nodes import subnet_hosts  # noqa: E402

REPLICAS_PER_SERVICE = 100
AGENT_MAX_BATCH = 64  # agent/worker.py's max_batch
CIDR, PREFIX = "10.0.0.0/8", 20  # room for 1,000+ nodes of up to 4,000 tasks each


def setup(leader: NodeProc, nodes: int, tasks: int, writers: int) -> ClusterState:
    """Init, join ``nodes`` nodes with leases, create the services; the committed state read back."""
    init_and_join(leader, nodes, writers)
    prop = Proposer(leader.control_port)

    def create(s: int) -> None:
        spec = ServiceSpec(name=f"svc{s}", image="p2porch/bench", replicas=REPLICAS_PER_SERVICE)
        prop.propose(C.CreateService(at=time.time(), service_id=f"s{s}", spec=spec))

    run_parallel(create, range(max(1, tasks // REPLICAS_PER_SERVICE)), writers)
    prop.close()
    return ClusterState.from_dict(leader.call(op="state")["state"])


class Agents:
    """The simulated nodes' agents: report each placed task running, batched per node, concurrently."""

    def __init__(self, prop: Proposer, state: ClusterState, threads: int) -> None:
        self.prop = prop
        self.subnet_hosts = {n: subnet_hosts(state.leases[n].subnet) for n in state.nodes}
        self.pending: dict[str, list[str]] = {}
        self.ready: queue.Queue[str | None] = queue.Queue()
        self.lock = threading.Lock()
        self.sent: list[C.ReportTaskStates] = []
        self.running = 0
        self.applied_commands = 0
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self._loop) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def placed(self, node_id: str, task_id: str) -> None:
        with self.lock:
            queued = node_id in self.pending
            self.pending.setdefault(node_id, []).append(task_id)
        if not queued:
            self.ready.put(node_id)

    def _loop(self) -> None:
        while (node_id := self.ready.get()) is not None:
            try:
                self._serve(node_id)
            finally:
                self.ready.task_done()  # after any re-queue of the node, so join() waits for it too

    def _serve(self, node_id: str) -> None:
        with self.lock:
            ids = self.pending.pop(node_id, [])
            rest = ids[AGENT_MAX_BATCH:]
            if rest:
                self.pending[node_id] = rest
        if rest:
            self.ready.put(node_id)
        if not ids:
            return
        now = time.time()
        hosts = self.subnet_hosts[node_id]
        reports = tuple(
            C.TaskStatusReport(t, state=TaskState.RUNNING, state_at=now, address=hosts(t), container_id=t)
            for t in ids[:AGENT_MAX_BATCH]
        )
        cmd = C.ReportTaskStates(at=now, node_id=node_id, reports=reports)
        try:
            result = self.prop.propose(cmd)
        except BaseException as exc:  # noqa: BLE001 (reported by close)
            self.errors.append(exc)
            return
        with self.lock:
            self.sent.append(cmd)
            self.running += len(result["value"]["applied"])
            self.applied_commands += bool(result["value"]["applied"])

    def close(self) -> None:
        """Deliver every report queued so far, then stop the threads (stop markers only after the drain:
        a marker queued ahead of a re-queued node would strand its reports)."""
        if not self.errors:
            self.ready.join()
        for _ in self.threads:
            self.ready.put(None)
        for t in self.threads:
            t.join()
        if self.errors:
            raise self.errors[0]


def place_and_report(leader: NodeProc, mirror: ClusterState, reporters: int) -> dict[str, Any]:
    """The timed phase: plan, commit the placements, nodes report their tasks running as they commit."""
    placer, reporter = Proposer(leader.control_port), Proposer(leader.control_port)
    agents = Agents(reporter, mirror, reporters)
    pid = leader.proc.pid if leader.proc else 0
    cpu0, threads0, commit0 = cpu_s(pid), thread_cpu_s(pid), status(leader)["commit_index"]
    orchestrator = Orchestrator(random.Random(1))
    plan_s = 0.0
    t0 = time.perf_counter()
    try:
        while True:
            p0 = time.perf_counter()
            plan = plan_round(mirror, time.time(), orchestrator)
            plan_s += time.perf_counter() - p0
            if plan.empty:
                break
            for cmd in round_commands(plan.items, time.time(), mirror.version):  # as the leader loop does
                placer.propose(cmd)
                mirror, local, _ = apply_command(mirror, cmd)
                if not local.get("ok"):
                    raise RuntimeError(f"mirror refused what the cluster committed: {local}")
                for item in cmd.items:
                    task = getattr(item, "task", None)
                    if task is not None and task.node_id is not None:
                        agents.placed(task.node_id, task.task_id)
        placed_s = time.perf_counter() - t0
    finally:
        agents.close()
    total_s = time.perf_counter() - t0
    placer.close()
    reporter.close()
    leader_cpu = cpu_s(pid) - cpu0
    threads1 = thread_cpu_s(pid)
    placed = sum(1 for t in mirror.tasks.values() if t.node_id is not None)
    if not placed == agents.running == len(mirror.tasks):
        raise RuntimeError(f"{len(mirror.tasks)} tasks, {placed} placed, {agents.running} reported running")
    # the cluster's state: the mirror's placements plus every report (disjoint tasks: order is immaterial)
    final = mirror
    for cmd in agents.sent:
        final, _, _ = apply_command(final, cmd)
    expected_version = mirror.version + agents.applied_commands
    wait_version(leader, expected_version, 30)
    entries = status(leader)["commit_index"] - commit0
    work = max(1, placed)
    return {
        "final": final,
        "expected_version": expected_version,
        "row": {
            "placed": placed,
            "running": agents.running,
            "placed_per_s": round(placed / placed_s, 1),
            "end_to_end_running_per_s": round(agents.running / total_s, 1),
            "end_to_end_s": round(total_s, 2),
            "plan_s": round(plan_s, 3),
            "leader_cpu_ms_per_task": round(1000 * leader_cpu / work, 3),
            "leader_cpu_s_by_thread": {
                k: round(v - threads0.get(k, 0.0), 2)
                for k, v in threads1.items()
                if v - threads0.get(k, 0.0) > 0.05
            },
            "raft_commands_per_task": round((placer.commands + reporter.commands) / work, 4),
            "raft_entries_per_task": round(entries / work, 4),
            "raft_bytes_per_task": round((placer.bytes + reporter.bytes) / work, 1),
            "report_commands": reporter.commands,
        },
    }


def run_point(root: Path, nodes: int, tasks: int, args: argparse.Namespace, full: bool) -> dict[str, Any]:
    cluster = LocalCluster(root, voters=3, replicas=1, die_with_parent=True)
    try:
        for node in cluster.voters():
            cluster.start(node, wait=False)
        for node in cluster.voters():
            cluster.wait_ready(node)
        leader = cluster.leader()
        s0 = time.perf_counter()
        mirror = setup(leader, nodes, tasks, args.reporters)
        setup_s = time.perf_counter() - s0
        timed = place_and_report(leader, mirror, args.reporters)
        final: ClusterState = timed["final"]
        row: dict[str, Any] = {"nodes": nodes, "tasks": len(final.tasks), "setup_s": round(setup_s, 1)}
        row |= timed["row"] | snapshot_figures(final)
        row["views_rebuild"] = rebuild_costs(final)
        if full:
            row |= compaction(cluster, leader)
            row |= catch_up(cluster, cluster.node("r0"), timed["expected_version"])
        row["voter_rss_mb"] = {n.name: rss_mb(n.proc.pid) for n in cluster.voters() if n.proc is not None}
        if full:
            row |= failover(cluster)
        return row
    finally:
        cluster.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", default="100,300,1000", help="comma-separated node counts")
    parser.add_argument("--tasks", default="10000,30000,100000", help="comma-separated task counts")
    parser.add_argument(
        "--mode",
        choices=("daemons", "direct"),
        default="daemons",
        help="daemons: the leader loop, API and agents' store path in the member processes; "
        "direct: the round in this process, writes straight to the leader's store",
    )
    parser.add_argument(
        "--replicas",
        type=int,
        default=None,
        help="daemons: read-only replica stores hosting the simulated nodes (default 20; --short 2; "
        "0: every agent on one follower voter)",
    )
    parser.add_argument("--replicas-per-process", type=int, default=5, help="replica stores per process")
    parser.add_argument(
        "--hosts-nice",
        type=int,
        default=0,
        help="daemons: the replica-host processes (the simulated nodes' stores and agents, standing for "
        "other machines) run at this os.nice() increment (0: equal priority; 10 starved the replica "
        "stores at 100,000 tasks: they dropped their connections and needed snapshots, docs/performance.md)",
    )
    parser.add_argument(
        "--start-s", type=float, default=0.5, help="daemons: the fake engine's container start time"
    )
    parser.add_argument(
        "--no-views",
        dest="views",
        action="store_false",
        help="daemons: voters do not rebuild a node's DNS/ingress/overlay/policy views on each commit burst",
    )
    parser.add_argument(
        "--bulk",
        action="store_true",
        help="daemons: the simulated agents report each placed task RUNNING at once (no STARTING), a node's "
        "reports gathered for a second into one command: the same state in minutes (docs/performance.md)",
    )
    parser.add_argument(
        "--failovers",
        type=int,
        default=1,
        help="daemons: leader failovers in a row at the end (each restarts the voter the one before killed)",
    )
    parser.add_argument(
        "--seed-state",
        action="store_true",
        help="daemons: start every store on the final state (a Raft dump written before they start: every "
        "task RUNNING) and run only the failovers (control_plane_seeded.py); one point: the last",
    )
    parser.add_argument("--reporters", type=int, default=16, help="direct: concurrent agent connections")
    parser.add_argument("--api-clients", type=int, default=8, help="concurrent service-API clients (daemons)")
    parser.add_argument("--timeout-s", type=float, default=600, help="timed phase limit (daemons)")
    parser.add_argument("--only-last", action="store_true", help="run only the largest point")
    parser.add_argument("--short", action="store_true", help="one small point with every phase (CI)")
    parser.add_argument(
        "--profile", default="", help="daemons: py-spy each voter during the timed phase into this folder"
    )
    args = parser.parse_args()
    nodes = [10] if args.short else [int(x) for x in args.nodes.split(",")]
    tasks = [200] if args.short else [int(x) for x in args.tasks.split(",")]
    if any(t < REPLICAS_PER_SERVICE or t % REPLICAS_PER_SERVICE for t in tasks):
        parser.error(
            f"--tasks: each count must be a multiple of {REPLICAS_PER_SERVICE} (services of 100 replicas)"
        )
    if args.replicas is None:
        args.replicas = 2 if args.short else 20
    if args.replicas < 0 or args.replicas_per_process < 1 or args.start_s < 0:
        parser.error("--replicas must be >= 0, --replicas-per-process >= 1, --start-s >= 0")
    grid = [(n, tasks[0]) for n in nodes] + [(nodes[-1], t) for t in tasks[1:]]
    if args.seed_state and args.mode != "daemons":
        parser.error("--seed-state: only with --mode daemons")
    if args.only_last or args.seed_state:
        grid = grid[-1:]
    run = run_point
    if args.seed_state:
        from control_plane_seeded import run_seeded_point

        run = run_seeded_point
    elif args.mode == "daemons":
        from control_plane_daemons import run_daemons_point

        run = run_daemons_point
    points = []
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="p2sc-cp-") as tmp:
        for i, (n, t) in enumerate(grid):
            points.append(run(Path(tmp) / f"p{i}", n, t, args, full=i == len(grid) - 1))
    print(
        json.dumps(
            {
                "benchmark": "control_plane",
                "mode": args.mode,
                "seeded": args.seed_state,
                "machine": {
                    "cpus": os.cpu_count(),
                    "loadavg_1m_before": load0,
                    "loadavg_1m_after": os.getloadavg()[0],
                },
                "round_chunk_items": ROUND_CHUNK_ITEMS,
                "reporters": args.reporters,
                "replicas": args.replicas if args.mode == "daemons" else 0,
                "hosts_nice": args.hosts_nice if args.mode == "daemons" else 0,
                "start_s": args.start_s if args.mode == "daemons" else 0.0,
                "points": points,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
