"""History checker runs by hand: seeds x fault kinds on a sandbox cluster, one JSON summary (root).

Runs what ``tests/integration/test_history.py`` runs (clients writing, reading and compare-and-setting
service specs through random nodes while a seeded nemesis injects faults; then convergence after the
last heal and the linearizability / lost / duplicated / phantom checks), for every seed and, with
``--per-kind``, for every fault kind on its own ("5 seeds per fault kind"). Sandbox ``p2hc``
(10.66.0.0/24), 3 nodes or 4 with ``--nodes 4`` (the 4th a non-voting replica).
Prints one JSON object: per run the operation and fault counts, anomalies and convergence times, and a
summary per fault kind. Progress lines go to stderr. Run under the integration lock, e.g.:

    flock /tmp/p2porch-integration.lock .venv/bin/python bench/history.py --seeds 1-5 --per-kind
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from p2porch.sandbox.sandbox import Sandbox  # noqa: E402
from p2porch.testing.chaos import RunConfig, fresh_cluster, in_sync, printable, run_seed  # noqa: E402
from p2porch.testing.nemesis import FAULT_KINDS  # noqa: E402

NAME = "p2hc"
SUBNET = "10.66.0.0/24"


def parse_seeds(text: str) -> list[int]:
    os.environ["P2PORCH_HISTORY_SEEDS"] = text
    return RunConfig.seeds_from_env()


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    times = [r["convergence_s"] for r in runs if r["convergence_s"] is not None]
    return {
        "runs": len(runs),
        "seeds": [r["seed"] for r in runs],
        "ops": sum(r["ops"]["total"] for r in runs),
        "acked_writes": sum(r["ops"]["acked_writes"] for r in runs),
        "faults": sum(sum(v for k, v in r["faults"].items() if not k.startswith("on_")) for r in runs),
        "anomalies": sum(r["anomalies"] for r in runs),
        "lost": sum(r["lost_count"] for r in runs),
        "not_linearizable_runs": sum(1 for r in runs if r["linearizable"] is False),
        "converged": sum(1 for r in runs if r["converged"]),
        "within_bound": sum(1 for r in runs if r["within_bound"]),
        "convergence_s_median": round(statistics.median(times), 3) if times else None,
        "convergence_s_max": max(times) if times else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", default="1-5", help="1,2,3 or 1-5 (default 1-5)")
    parser.add_argument("--duration", type=float, default=40.0, help="seconds of clients + faults per run")
    parser.add_argument("--faults", default=",".join(FAULT_KINDS), help="fault kinds, comma-separated")
    parser.add_argument("--per-kind", action="store_true", help="run the seeds once per fault kind")
    parser.add_argument("--nodes", type=int, default=3, choices=(3, 4), help="4: add a non-voting replica")
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--bound", type=float, default=5.0, help="convergence bound after the last heal (s)")
    parser.add_argument("--give-up", type=float, default=60.0, help="stop waiting for convergence after (s)")
    parser.add_argument("--histories", type=Path, help="directory to save each run's history (JSON lines)")
    parser.add_argument("--keep", action="store_true", help="leave the sandbox up afterwards")
    parser.add_argument("--name", default=NAME, help=f"sandbox name (default {NAME})")
    parser.add_argument("--subnet", default=SUBNET, help=f"sandbox subnet (default {SUBNET})")
    parser.add_argument(
        "--fault-length",
        default="3-8",
        help="seconds each fault lasts, MIN-MAX (default 3-8; over ~6 s "
        "on a voter lets the autopilot replace it: the replica's store reopens as a voter's)",
    )
    parser.add_argument("--logs", type=Path, help="directory to copy every node's daemon log into at the end")
    args = parser.parse_args()
    kinds = [k for k in args.faults.split(",") if k]
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown:
        parser.error(f"--faults: unknown kinds {unknown} (use {', '.join(FAULT_KINDS)})")
    groups = [(k,) for k in kinds] if args.per_kind else [tuple(kinds)]
    seeds = parse_seeds(args.seeds)
    low, _, high = args.fault_length.partition("-")
    length_s = (float(low), float(high or low))
    sb = Sandbox(args.name, subnet=args.subnet)
    runs: list[dict[str, Any]] = []
    # histories carry time.monotonic(), daemon logs the wall clock: this maps one onto the other
    print(f"wall - monotonic = {time.time() - time.monotonic():.3f} s", file=sys.stderr)
    nodes: list[Any] = []
    try:
        nodes = fresh_cluster(sb, args.nodes)
        for group in groups:
            for seed in seeds:
                if not in_sync(nodes):  # a node left behind by the previous run: start over
                    print("a node is behind after the previous run: new cluster", file=sys.stderr)
                    nodes = fresh_cluster(sb, args.nodes)
                config = RunConfig(
                    seed=seed,
                    duration_s=args.duration,
                    kinds=group,
                    clients=args.clients,
                    converge_bound_s=args.bound,
                    converge_give_up_s=args.give_up,
                    length_s=length_s,
                )
                result = run_seed(sb, nodes, config)
                if args.histories:
                    args.histories.mkdir(parents=True, exist_ok=True)
                    (args.histories / f"history-{'+'.join(group)}-{seed}.jsonl").write_text(
                        result["history"].dump()
                    )
                run = printable(result)
                run["kinds"] = "+".join(group)
                runs.append(run)
                print(
                    f"{run['kinds']} seed {seed}: {run['ops']['total']} ops, faults {run['faults']}, "
                    f"anomalies {run['anomalies']}, converged {run['convergence_s']} s",
                    file=sys.stderr,
                )
    finally:
        if args.logs:
            args.logs.mkdir(parents=True, exist_ok=True)
            for node in nodes:
                if os.path.exists(node.p2porch_log):
                    shutil.copy(node.p2porch_log, args.logs / f"{node.name}.log")
        if not args.keep:
            sb.down()
    by_kind = {"+".join(g): summarise([r for r in runs if r["kinds"] == "+".join(g)]) for g in groups}
    print(
        json.dumps(
            {"nodes": args.nodes, "duration_s": args.duration, "summary": by_kind, "runs": runs}, indent=1
        )
    )
    return 0 if all(r["anomalies"] == 0 and r["within_bound"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
