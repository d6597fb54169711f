"""Cost of the leader's job work per scheduling round: the cron controller and a round with jobs.

The leader calls ``plan_cron`` before every scheduling round (on each commit, at least once a second),
so its cost with many cron jobs matters. Measures, on a state built by the real FSM with ``--cron``
cron jobs (and as many replicated-jobs with 10 tasks each):

- ``plan_cron`` between ticks with the memoised tick computation, against the baseline without it
  (croniter called every round), in the same run;
- one whole ``plan_round`` (orchestrator, job controller, placement) on that state.

Prints one JSON object.

    python bench/jobs.py                 # 1000 cron jobs
    python bench/jobs.py --cron 100      # smaller
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import p2porch.model.jobspec as jobspec  # noqa: E402
from p2porch.leader import cron as cron_mod  # noqa: E402
from p2porch.leader.scheduling import plan_round  # noqa: E402
from p2porch.model import Node, ServiceSpec  # noqa: E402
from p2porch.raft import commands as C  # noqa: E402
from p2porch.raft.fsm import apply  # noqa: E402
from p2porch.raft.state import EMPTY_STATE, ClusterState  # noqa: E402
from p2porch.scheduler import Orchestrator  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
SCHEDULES = ["* * * * *", "*/5 * * * *", "0 * * * *", "30 2 * * *", "0 9 * * mon-fri"]
ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo"]


def run(state: ClusterState, command: bytes) -> ClusterState:
    new, result, _ = apply(state, command)
    assert result["ok"], result
    return new


def build(cron_jobs: int, nodes: int) -> ClusterState:
    state = run(EMPTY_STATE, C.InitCluster(at=T0, cluster_id="bench").encode())
    for i in range(nodes):
        record = Node(f"id{i}", f"n{i}", f"10.0.{i // 250}.{i % 250 + 1}", 7947, 7946)
        state = run(state, C.AddNode(at=T0, node=record).encode())
    for i in range(cron_jobs):
        spec = {
            "name": f"cron{i}",
            "image": "busybox",
            "mode": "replicated-job",
            "schedule": {"cron": SCHEDULES[i % len(SCHEDULES)], "timezone": ZONES[i % len(ZONES)]},
        }
        state = run(
            state, C.CreateService(at=T0 + 1, service_id=f"c{i}", spec=ServiceSpec.from_dict(spec)).encode()
        )
        job = {"name": f"job{i}", "image": "busybox", "mode": "replicated-job", "replicas": 10}
        state = run(
            state, C.CreateService(at=T0 + 1, service_id=f"j{i}", spec=ServiceSpec.from_dict(job)).encode()
        )
    return state


def per_call(fn: Any, rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        fn()
    return (time.perf_counter() - start) / rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cron", type=int, default=1000, help="cron jobs (and as many replicated-jobs)")
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    state = build(args.cron, args.nodes)
    now = T0 + 30.0  # between ticks: the common case of every round
    assert cron_mod.plan_cron(state, now).decisions == []

    memoised = per_call(lambda: cron_mod.plan_cron(state, now), args.rounds)
    saved = jobspec.next_tick
    jobspec.next_tick = jobspec.uncached_next_tick  # type: ignore[assignment]
    try:
        baseline = per_call(lambda: cron_mod.plan_cron(state, now), max(2, args.rounds // 10))
    finally:
        jobspec.next_tick = saved
    orchestrator = Orchestrator(random.Random(1))
    start = time.perf_counter()
    plan = plan_round(state, now, orchestrator)
    round_s = time.perf_counter() - start
    print(
        json.dumps(
            {
                "bench": "jobs",
                "python": platform.python_version(),
                "cron_jobs": args.cron,
                "replicated_jobs": args.cron,
                "nodes": args.nodes,
                "plan_cron_ms": round(memoised * 1e3, 3),
                "plan_cron_baseline_uncached_ms": round(baseline * 1e3, 3),
                "speedup": round(baseline / memoised, 1) if memoised else None,
                "plan_round_with_jobs_ms": round(round_s * 1e3, 1),
                "tasks_created_by_the_round": sum(1 for i in plan.items if isinstance(i, C.TaskPut)),
            }
        )
    )


if __name__ == "__main__":
    main()
