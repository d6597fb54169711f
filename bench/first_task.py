"""A fresh node's first task start against its second, on a real sandbox (root; one JSON object).

    python bench/first_task.py [--nodes 3] [--rounds 2] [--settle 5] [--name p2ft] [--subnet 10.29.0.0/24]

Each round brings up a fresh sandbox of N hosts, forms the cluster (init on n1, the others join), waits
until every node is ready with a subnet and then ``--settle`` seconds more (the nodes are up, as a user's
are when they create a service), then creates a global service (one task per node: each node's first
container) and times, per node, the API call to that node's task reported running; then a second global
service the same way (each node's second container: its Docker network exists on any tree by then).
The first minus the second is what a node's first container pays for its network when it is made on
first need (netoverlay/bridge.py). Run a tree's daemons by running this from that tree's directory
with its interpreter (``python -m p2porch`` puts the working directory first on ``sys.path``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchkit import client, init_and_join, wait_until  # noqa: E402

from p2porch.sandbox.sandbox import Sandbox, SandboxNode  # noqa: E402

IMAGE = "p2porch/busybox:latest"
POLL_S = 0.02


def ready(nodes: list[SandboxNode]) -> None:
    with client(nodes[0]) as api:

        def all_ready() -> bool:
            rows = api.get("/nodes").json()
            return len(rows) == len(nodes) and all(r["status"] == "ready" and r["subnet"] for r in rows)

        wait_until(all_ready, 90, "every node ready with a subnet", POLL_S)


def global_service(nodes: list[SandboxNode], name: str) -> dict[str, float]:
    """Seconds from the create call to each node's task running, by node name."""
    spec = {"name": name, "image": IMAGE, "command": ["sleep", "100000"], "mode": "global"}
    seen: dict[str, float] = {}
    with client(nodes[0]) as api:
        started = time.monotonic()
        api.post("/services", json=spec).raise_for_status()

        def all_running() -> bool:
            for task in api.get(f"/services/{name}/tasks", params={"all": "false"}).json():
                if task["state"] == "running" and task.get("node"):
                    seen.setdefault(str(task["node"]), time.monotonic() - started)
            return len(seen) == len(nodes)

        wait_until(all_running, 120, f"{name}: a running task on every node", POLL_S)
    return {node: round(s, 3) for node, s in sorted(seen.items())}


def one_round(name: str, subnet: str, count: int, settle_s: float) -> dict[str, object]:
    sb = Sandbox(name, subnet=subnet)
    try:
        nodes = sb.up(count)
        init_and_join(sb, nodes)
        ready(nodes)
        time.sleep(settle_s)
        first = global_service(nodes, "first")
        second = global_service(nodes, "second")
    finally:
        sb.down()
    return {"first": first, "second": second}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--settle", type=float, default=5.0, help="seconds between ready and the first create"
    )
    parser.add_argument("--name", default="p2ft")
    parser.add_argument("--subnet", default="10.29.0.0/24")
    parser.add_argument("--label", default="", help="a name for this tree in the output")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    rounds = [one_round(args.name, args.subnet, args.nodes, args.settle) for _ in range(args.rounds)]
    firsts = [s for r in rounds for s in r["first"].values()]  # type: ignore[attr-defined]
    seconds = [s for r in rounds for s in r["second"].values()]  # type: ignore[attr-defined]
    print(
        json.dumps(
            {
                "label": args.label,
                "load_before": round(load, 2),
                "load_after": round(os.getloadavg()[0], 2),
                "nodes": args.nodes,
                "first_task_p50_s": round(statistics.median(firsts), 3),
                "first_task_max_s": max(firsts),
                "second_task_p50_s": round(statistics.median(seconds), 3),
                "second_task_max_s": max(seconds),
                "rounds": rounds,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
