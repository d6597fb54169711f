"""Placements per second of the pure scheduler, against a naive score-every-node baseline.

Runs two scenarios (10,000 tasks on 1,000 nodes; 100,000 tasks on 5,000 nodes) with constraints,
reservations, placement preferences and spread, measures ``schedule`` on the whole workload and the naive
reference scheduler (``p2porch.scheduler.reference``) on a prefix of it, checks both agree on that prefix
and prints one JSON object. The end-to-end sandbox part of issue 5's benchmark lives elsewhere.

    python bench/scheduler.py            # full run
    python bench/scheduler.py --small    # seconds-long smoke run
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

from p2porch.model import Node, ServiceSpec, parse_constraint, parse_placement_pref  # noqa: E402
from p2porch.scheduler import NodeInfo, TaskRequest, build_node_infos, schedule  # noqa: E402
from p2porch.scheduler.reference import naive_schedule  # noqa: E402

GIB = 1024**3
CPU = 1_000_000_000


def make_nodes(n: int, rng: random.Random) -> list[NodeInfo]:
    nodes = [
        Node(
            node_id=f"node-{i:05d}",
            name=f"n{i}",
            role="voter" if i < 5 else "replica",
            availability="drain" if rng.random() < 0.01 else "active",
            labels={"zone": f"z{i % 3}", "ssd": str(rng.random() < 0.5).lower(), "rack": f"r{i % 20}"},
            cpu_nanos=16 * CPU,
            memory_bytes=64 * GIB,
        )
        for i in range(n)
    ]
    infos = build_node_infos(nodes)
    for info in infos:  # some existing load
        for _ in range(rng.randrange(4)):
            info.add_task("existing", CPU // 4, GIB // 2)
    return infos


def make_tasks(n_tasks: int, per_service: int, rng: random.Random) -> list[TaskRequest]:
    constraints = [
        (),
        (parse_constraint("node.labels.ssd==true"),),
        (parse_constraint("node.labels.zone!=z2"),),
        (parse_constraint("node.role!=voter"), parse_constraint("node.labels.ssd!=false")),
    ]
    tasks: list[TaskRequest] = []
    for s in range(n_tasks // per_service):
        spec = ServiceSpec(
            name=f"svc{s}",
            image="busybox",
            replicas=per_service,
            constraints=constraints[s % len(constraints)],
            placement_preferences=(parse_placement_pref("spread=node.labels.zone"),) if s % 2 else (),
            reserve_cpu_nanos=rng.choice([0, CPU // 10, CPU // 4]),
            reserve_memory_bytes=rng.choice([64, 128, 256]) * 1024**2,
            max_replicas_per_node=rng.choice([0, 0, 5]),
        )
        tasks += [TaskRequest(f"svc{s}-{i}", spec) for i in range(per_service)]
    return tasks


def run(n_nodes: int, n_tasks: int, per_service: int, naive_tasks: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    nodes = make_nodes(n_nodes, rng)
    tasks = make_tasks(n_tasks, per_service, rng)

    t0 = time.perf_counter()
    result = schedule(tasks, nodes)
    fast_s = time.perf_counter() - t0
    placed = len(result.assignments)

    prefix = tasks[:naive_tasks]
    t0 = time.perf_counter()
    reference = naive_schedule(prefix, nodes)
    naive_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    fast_prefix = schedule(prefix, nodes)
    fast_prefix_s = time.perf_counter() - t0

    fast_rate = placed / fast_s if fast_s else float("inf")
    naive_rate = len(reference.assignments) / naive_s if naive_s else float("inf")
    return {
        "nodes": n_nodes,
        "tasks": n_tasks,
        "services": n_tasks // per_service,
        "placed": placed,
        "unschedulable": len(result.unschedulable),
        "schedule_s": round(fast_s, 4),
        "placements_per_s": round(fast_rate),
        "naive_prefix_tasks": len(prefix),
        "naive_s": round(naive_s, 4),
        "naive_placements_per_s": round(naive_rate),
        "schedule_prefix_s": round(fast_prefix_s, 4),
        "speedup_vs_naive": round(fast_rate / naive_rate, 1) if naive_rate else None,
        "agrees_with_naive_on_prefix": reference == fast_prefix,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", action="store_true", help="tiny parameters for a smoke test")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    if args.small:
        scenarios = [(50, 500, 50, 100), (100, 1000, 100, 100)]
    else:
        scenarios = [(1_000, 10_000, 100, 2_000), (5_000, 100_000, 100, 500)]
    results = [run(n, t, per, naive, args.seed) for n, t, per, naive in scenarios]
    out = {
        "benchmark": "scheduler",
        "python": platform.python_version(),
        "seed": args.seed,
        "target_placements_per_s_at_1000_nodes": 10_000,
        "meets_target": results[0]["placements_per_s"] >= 10_000 if not args.small else None,
        "scenarios": results,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
