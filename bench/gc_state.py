"""What a full garbage collection costs a process holding a large cluster state, and after ``gc.freeze``.

    python bench/gc_state.py --nodes 1000 --tasks 100000

Builds the state the control-plane benchmark reaches (``control_plane.py``: nodes joined with leases,
services of 100 replicas, every task placed by the leader's pure round and reported RUNNING) in this
process with the real FSM, then times ``gc.collect()`` in CPU seconds (``time.process_time``: the
figure does not depend on the machine's load; a loaded voter waits several times longer for a core),
three times each: as built, after ``gc.freeze()`` (what ``p2porch/gc_freeze.py`` does after a slow full
collection), and after one more burst of task records replacing old ones. Prints JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from p2porch.leader.scheduling import plan_round, round_commands  # noqa: E402
from p2porch.model import Node, ServiceSpec, TaskState  # noqa: E402
from p2porch.raft import commands as C  # noqa: E402
from p2porch.raft.fsm import apply_command  # noqa: E402
from p2porch.raft.state import ClusterState  # noqa: E402
from p2porch.scheduler.orchestrator import Orchestrator  # noqa: E402
from p2porch.testing.sim_nodes import subnet_hosts  # noqa: E402


def _apply(state: ClusterState, cmd: C.Command) -> ClusterState:
    state, result, _ = apply_command(state, cmd)
    if not result.get("ok"):
        raise RuntimeError(f"refused: {result}")
    return state


def build(nodes: int, tasks: int) -> ClusterState:
    return build_commands(nodes, tasks)[1]


def build_commands(nodes: int, tasks: int) -> tuple[list[C.Command], ClusterState]:
    """The commands that build the state (applied here, in order) and the state they build:
    ``raft_rss_hours.py`` replays them through real store processes."""
    cmds: list[C.Command] = []
    state = ClusterState()

    def apply(cmd: C.Command) -> None:
        nonlocal state
        state = _apply(state, cmd)
        cmds.append(cmd)

    apply(C.InitCluster(at=0.0, cluster_id="gc", cluster_cidr="10.0.0.0/8", subnet_prefix_len=20))
    for i in range(nodes):
        node = Node(f"id{i:05d}", f"n{i}", f"10.{i // 62500}.{i // 250 % 250}.{i % 250 + 1}", 7947, 7946)
        apply(C.AddNode(at=0.0, node=node))
        apply(C.LeaseSubnet(at=0.0, node_id=node.node_id))
    for s in range(tasks // 100):
        spec = ServiceSpec(name=f"svc{s}", image="p2porch/bench", replicas=100)
        apply(C.CreateService(at=0.0, service_id=f"s{s}", spec=spec))
    orchestrator = Orchestrator(random.Random(1))
    while not (plan := plan_round(state, 1.0, orchestrator)).empty:
        for cmd in round_commands(plan.items, 1.0, state.version):
            apply(cmd)
    for report in running_reports(state):
        apply(report)
    return cmds, state


def running_reports(state: ClusterState, at: float = 2.0) -> list[C.ReportTaskStates]:
    """One report per node: each of its placed tasks RUNNING as of ``at``."""
    by_node: dict[str, list[str]] = {}
    for task in state.tasks.values():
        if task.node_id is not None:
            by_node.setdefault(task.node_id, []).append(task.task_id)
    out = []
    for node_id, ids in by_node.items():
        hosts = subnet_hosts(state.leases[node_id].subnet)
        reports = tuple(
            C.TaskStatusReport(t, state=TaskState.RUNNING, state_at=at, address=hosts(t), container_id=t)
            for t in ids
        )
        out.append(C.ReportTaskStates(at=at, node_id=node_id, reports=reports))
    return out


def report_running(state: ClusterState, at: float = 2.0) -> ClusterState:
    for cmd in running_reports(state, at):
        state = _apply(state, cmd)
    return state


def collections(repeat: int = 3) -> dict[str, Any]:
    cpu = []
    for _ in range(repeat):
        t0 = time.process_time()
        gc.collect()
        cpu.append(round(time.process_time() - t0, 3))
    return {"full_collection_cpu_s": cpu, "tracked_objects": len(gc.get_objects())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=100000)
    args = parser.parse_args()
    b0 = time.process_time()
    state = build(args.nodes, args.tasks)
    built_s = time.process_time() - b0
    out: dict[str, Any] = {"nodes": args.nodes, "tasks": len(state.tasks), "build_cpu_s": round(built_s, 1)}
    out["as_built"] = collections()
    gc.freeze()
    out["frozen"] = collections() | {"frozen_objects": gc.get_freeze_count()}
    state = report_running(state, at=3.0)  # every record replaced: the frozen old ones freed by refcount
    out["after_a_burst"] = collections() | {"frozen_objects": gc.get_freeze_count()}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
