"""Planning CPU of the leader's rounds: full rounds against the incremental planner, on one sequence (JSON).

The sequence is the control-plane benchmark's, in one process through the real FSM: ``--services``
services of ``--replicas`` replicas on ``--nodes`` nodes, created ``--per-round`` at a time between two
rounds; each round's task writes are committed and, before the next round, every task it placed is
reported running by its node (64 reports per command, as the agents do). The same sequence is planned
by full rounds (``plan_round``, the baseline, every service each round) and by the
``IncrementalPlanner`` (what the leader loop runs); both must end with every task running after the
same number of rounds. Printed: CPU seconds spent planning (``time.process_time`` around each round),
rounds, and the largest round of each.

    python bench/leader_rounds.py                       # 1,000 nodes, 1,000 x 100 tasks (~1 min)
    python bench/leader_rounds.py --services 50 --nodes 100   # seconds
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from p2porch.leader.incremental import IncrementalPlanner  # noqa: E402
from p2porch.leader.scheduling import Round, plan_round, round_commands  # noqa: E402
from p2porch.model import Node, ServiceSpec, TaskState  # noqa: E402
from p2porch.raft import commands as C  # noqa: E402
from p2porch.raft.fsm import apply_command  # noqa: E402
from p2porch.raft.state import EMPTY_STATE, ClusterState  # noqa: E402
from p2porch.scheduler import Orchestrator  # noqa: E402

ROUND_EVERY_S = 0.25
REPORTS_PER_COMMAND = 64


def run(state: ClusterState, command: C.Command) -> ClusterState:
    new, result, _ = apply_command(state, command)
    if not result["ok"]:
        raise RuntimeError(f"{command.TAG} refused: {result}")
    return new


def cluster(nodes: int) -> ClusterState:
    state = run(
        EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c", cluster_cidr="10.0.0.0/8", subnet_prefix_len=20)
    )
    for i in range(nodes):
        state = run(state, C.AddNode(at=1.0, node=Node(f"n{i:05d}", f"n{i}", "10.0.0.1", 7947, 7946)))
    return state


def report_running(state: ClusterState, task_ids: list[str], now: float) -> ClusterState:
    by_node: dict[str, list[str]] = {}
    for task_id in task_ids:
        task = state.tasks.get(task_id)
        if task is not None and task.node_id is not None:
            by_node.setdefault(task.node_id, []).append(task_id)
    for node_id, ids in by_node.items():
        for i in range(0, len(ids), REPORTS_PER_COMMAND):
            reports = tuple(
                C.TaskStatusReport(x, state=TaskState.RUNNING, state_at=now)
                for x in ids[i : i + REPORTS_PER_COMMAND]
            )
            state = run(state, C.ReportTaskStates(at=now, node_id=node_id, reports=reports))
    return state


def sequence(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    state, now, created = cluster(args.nodes), 2.0, 0
    orchestrator = Orchestrator(random.Random(1))
    planner = IncrementalPlanner(orchestrator)
    plan_s, longest, rounds, placed = 0.0, 0.0, 0, []
    while True:
        for _ in range(args.per_round):
            if created < args.services:
                spec = ServiceSpec(name=f"svc{created}", image="bench", replicas=args.replicas)
                state = run(state, C.CreateService(at=now, service_id=f"s{created}", spec=spec))
                created += 1
        state = report_running(state, placed, now)
        t0 = time.process_time()
        plan: Round = plan_round(state, now, orchestrator) if mode == "full" else planner.plan(state, now)
        took = time.process_time() - t0
        plan_s, longest, rounds = plan_s + took, max(longest, took), rounds + 1
        placed = [i.task_id for i in plan.items if isinstance(i, C.TaskPut) and i.task.node_id is not None]
        for put in round_commands(plan.items, now, state.version):
            state = run(state, put)
        now += ROUND_EVERY_S
        if created >= args.services and not plan.items and not placed:
            break
    running = sum(1 for t in state.tasks.values() if t.state == TaskState.RUNNING)
    return {
        "plan_cpu_s": round(plan_s, 3),
        "longest_round_s": round(longest, 3),
        "rounds": rounds,
        "running": running,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--replicas", type=int, default=100)
    parser.add_argument("--per-round", type=int, default=25, help="services created between two rounds")
    args = parser.parse_args()
    full = sequence("full", args)
    incremental = sequence("incremental", args)
    if (full["rounds"], full["running"]) != (incremental["rounds"], incremental["running"]):
        raise SystemExit(f"the two sequences differ: {full} vs {incremental}")
    out = {
        "benchmark": "leader_rounds",
        "python": platform.python_version(),
        "nodes": args.nodes,
        "tasks": args.services * args.replicas,
        "full_rounds": full,
        "incremental": incremental,
        "speedup": round(full["plan_cpu_s"] / max(incremental["plan_cpu_s"], 1e-9), 1),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
