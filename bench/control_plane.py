"""Control-plane benchmark: real Raft voters in separate processes, the real FSM and leader round, simulated
nodes with a fake engine that reports each task running at once (JSON).

    python bench/control_plane.py [--nodes 10,100,1000] [--tasks 1000,5000,20000] [--chunk 1000]
    python bench/control_plane.py --short          # the CI form: one small point, seconds

For each (nodes, tasks) point: three store processes (``python -m p2porch.raft.node``, pysyncobj over
loopback, fsync'ed journals) are started fresh; this process adds the simulated nodes (``AddNode``),
creates services of 100 replicas (``CreateService``), then runs the leader's scheduling round
(``leader.scheduling.plan_round``, the pure function the daemon's leader loop calls) on a mirror of the
committed state (the same commands applied to the same FSM in the same order, checked against the
voters' state version at the end) and commits its task writes (``PutTasks``, ``--chunk`` items per
entry); then every simulated node's agent reports its tasks running in one ``ReportTaskStates`` batch
per node (per ``--chunk`` tasks), as the agent's batching flusher does. Measured per point: tasks placed
and reported running per second, leader CPU per task (the leader process's utime+stime), Raft command
bytes per task, plan time, snapshot size and encode/load time of the final state, voters' RSS.
What it is not (docs/performance.md): the daemons' gossip, API and Docker; failover and catch-up time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgpack  # noqa: E402

from p2porch.leader.scheduling import plan_round  # noqa: E402
from p2porch.model import Node, ServiceSpec, TaskState  # noqa: E402
from p2porch.raft import commands as C  # noqa: E402
from p2porch.raft.fsm import apply  # noqa: E402
from p2porch.raft.state import EMPTY_STATE, ClusterState  # noqa: E402
from p2porch.scheduler.orchestrator import Orchestrator  # noqa: E402
from p2porch.testing.raftprocs import LocalCluster, NodeProc  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
REPLICAS_PER_SERVICE = 100


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


class Driver:
    """Proposes commands to the leader and applies them to a local mirror of the state, in order."""

    def __init__(self, leader: NodeProc) -> None:
        self.leader = leader
        self.mirror: ClusterState = EMPTY_STATE
        self.raft_bytes = 0
        self.entries = 0

    def write(self, cmd: C.Command) -> Any:
        data = cmd.encode()
        answer = self.leader.call(op="propose", cmd=data.hex(), timeout_s=60)
        result = answer.get("result") or answer
        self.mirror, local, _ = apply(self.mirror, data)
        if result.get("ok") != local.get("ok"):
            raise RuntimeError(f"mirror diverged: cluster {result} vs local {local}")
        if not result.get("ok"):
            raise RuntimeError(f"command refused: {result}")
        self.raft_bytes += len(data)
        self.entries += 1
        return result.get("value")


def run_point(root: Path, nodes: int, tasks: int, chunk: int) -> dict[str, Any]:
    cluster = LocalCluster(root, voters=3)
    try:
        cluster.start_all()
        leader = cluster.leader()
        drv = Driver(leader)
        drv.write(C.InitCluster(at=time.time(), cluster_id="cpbench", cluster_cidr="10.0.0.0/8"))
        for i in range(nodes):
            node = Node(f"id{i}", f"n{i}", f"10.{i // 65536}.{i // 256 % 256}.{i % 256 + 1}", 7947, 7946)
            drv.write(C.AddNode(at=time.time(), node=node))
        setup_bytes = drv.raft_bytes
        for s in range(max(1, tasks // REPLICAS_PER_SERVICE)):
            spec = ServiceSpec(name=f"svc{s}", image="p2porch/bench", replicas=REPLICAS_PER_SERVICE)
            drv.write(C.CreateService(at=time.time(), service_id=f"s{s}", spec=spec))
        leader_pid = leader.proc.pid if leader.proc else 0
        cpu0, bytes0, entries0 = cpu_s(leader_pid), drv.raft_bytes, drv.entries
        orchestrator = Orchestrator(random.Random(1))
        plan_s = 0.0
        t0 = time.perf_counter()
        while True:
            p0 = time.perf_counter()
            plan = plan_round(drv.mirror, time.time(), orchestrator)
            plan_s += time.perf_counter() - p0
            if plan.empty:
                break
            for i in range(0, len(plan.items), chunk):
                drv.write(C.PutTasks(at=time.time(), items=tuple(plan.items[i : i + chunk])))
        placed_s = time.perf_counter() - t0
        placed = sum(1 for t in drv.mirror.tasks.values() if t.node_id is not None)
        t1 = time.perf_counter()
        by_node: dict[str, list[str]] = {}
        for task in drv.mirror.tasks.values():
            if task.node_id is not None:
                by_node.setdefault(task.node_id, []).append(task.task_id)
        now = time.time()
        for node_id, ids in by_node.items():
            for i in range(0, len(ids), chunk):
                part = ids[i : i + chunk]
                reports = tuple(C.TaskStatusReport(t, state=TaskState.RUNNING, state_at=now) for t in part)
                drv.write(C.ReportTaskStates(at=now, node_id=node_id, reports=reports))
        reported_s = time.perf_counter() - t1
        running = sum(1 for t in drv.mirror.tasks.values() if t.state == TaskState.RUNNING)
        leader_cpu = cpu_s(leader_pid) - cpu0
        deadline = time.monotonic() + 10  # the status the store reports is refreshed every 50 ms
        while (version := leader.call(op="status")["status"]["state_version"]) != drv.mirror.version:
            if time.monotonic() > deadline:
                raise RuntimeError(f"leader at version {version}, mirror at {drv.mirror.version}")
            time.sleep(0.05)
        e0 = time.perf_counter()
        snapshot = msgpack.packb(drv.mirror.to_dict(), use_bin_type=True)
        encode_s = time.perf_counter() - e0
        l0 = time.perf_counter()
        ClusterState.from_dict(msgpack.unpackb(snapshot, raw=False, strict_map_key=False))
        load_s = time.perf_counter() - l0
        work = max(1, placed + running)
        return {
            "nodes": nodes,
            "tasks": len(drv.mirror.tasks),
            "placed": placed,
            "running": running,
            "placed_per_s": round(placed / placed_s, 1) if placed_s else None,
            "reported_running_per_s": round(running / reported_s, 1) if reported_s else None,
            "plan_s": round(plan_s, 3),
            "leader_cpu_ms_per_task": round(1000 * leader_cpu / work, 3),
            "raft_bytes_per_task": round((drv.raft_bytes - bytes0) / work, 1),
            "raft_entries_per_task": round((drv.entries - entries0) / work, 4),
            "setup_raft_bytes": setup_bytes,
            "snapshot_bytes": len(snapshot),
            "snapshot_encode_s": round(encode_s, 3),
            "snapshot_load_s": round(load_s, 3),
            "voter_rss_mb": {n.name: rss_mb(n.proc.pid) for n in cluster.voters() if n.proc is not None},
        }
    finally:
        cluster.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", default="10,100,1000", help="comma-separated node counts")
    parser.add_argument("--tasks", default="1000,5000,20000", help="comma-separated task counts")
    parser.add_argument("--chunk", type=int, default=1000, help="task writes / reports per Raft command")
    parser.add_argument("--short", action="store_true", help="one small point (CI)")
    args = parser.parse_args()
    nodes = [10] if args.short else [int(x) for x in args.nodes.split(",")]
    tasks = [200] if args.short else [int(x) for x in args.tasks.split(",")]
    points = []
    with tempfile.TemporaryDirectory(prefix="p2sc-cp-") as tmp:
        base_nodes, base_tasks = nodes[0], tasks[0]
        grid = [(n, base_tasks) for n in nodes] + [(base_nodes, t) for t in tasks[1:]]
        for i, (n, t) in enumerate(grid):
            points.append(run_point(Path(tmp) / f"p{i}", n, t, args.chunk))
    print(
        json.dumps(
            {
                "benchmark": "control_plane",
                "machine": {"cpus": os.cpu_count(), "loadavg_1m": os.getloadavg()[0]},
                "chunk": args.chunk,
                "points": points,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
