"""End-to-end service convergence on a 3-node sandbox against Docker's own container start time (root).

In one run, on the same sandbox (``p2be``, 10.68.0.0/24):
- baseline: ``docker run -d`` of N containers at once (spread evenly, all started in parallel, on the
  nodes' own dockerds, attached to the same ``p2porch`` network the tasks use), timed until every
  command returned (the container is running then); for N = the create count and the scale count;
- p2porch: seconds from ``POST /v1/services`` (what ``service create --replicas N`` sends) until the
  cluster reports all N tasks running, then from ``scale`` to M until all M run.
Prints one JSON object with both and their ratios (p2porch / docker; 1.0 = as fast as Docker itself).
Usage: python bench/services_e2e.py [--nodes 3] [--replicas 6] [--scale 30] [--repeats 1] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import benchkit  # noqa: E402
from benchkit import client, init_and_join  # noqa: E402

from p2porch.sandbox.dockerd import docker  # noqa: E402
from p2porch.sandbox.sandbox import Sandbox, SandboxNode  # noqa: E402

IMAGE = "p2porch/busybox:latest"
SERVICE = "bench"
BASELINE_LABEL = "p2be.baseline=1"
POLL_S = 0.02


def wait_until(predicate, timeout_s: float, what: str):
    return benchkit.wait_until(predicate, timeout_s, what, POLL_S)


def form_cluster(sb: Sandbox, nodes: list[SandboxNode]) -> None:
    init_and_join(sb, nodes)
    with client(nodes[0]) as api:

        def ready():
            rows = api.get("/nodes").json()
            return len(rows) == len(nodes) and all(
                r["status"] == "ready" and r["subnet"] and r["memory_bytes"] for r in rows
            )

        wait_until(ready, 60, "every node ready with an overlay subnet and a recorded capacity")

    def has_network(node: SandboxNode) -> bool:
        return docker(node.dockerd, "network", "inspect", "p2porch", check=False).returncode == 0

    wait_until(lambda: all(has_network(n) for n in nodes), 60, "the p2porch network on every node")


def docker_baseline(nodes: list[SandboxNode], count: int) -> float:
    """Seconds to start ``count`` containers with ``docker run -d``, all in parallel, spread evenly."""
    targets = [nodes[i % len(nodes)] for i in range(count)]

    def start(node: SandboxNode) -> None:
        argv = ["run", "-d", "--network", "p2porch", "--label", BASELINE_LABEL, IMAGE, "sleep", "100000"]
        docker(node.dockerd, *argv)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=count) as pool:
        list(pool.map(start, targets))
    elapsed_s = time.monotonic() - started
    for node in nodes:
        ids = docker(node.dockerd, "ps", "-q", "--filter", f"label={BASELINE_LABEL}").stdout.decode().split()
        expected = targets.count(node)
        if len(ids) != expected:
            raise RuntimeError(f"{node.name}: {len(ids)} baseline containers running, expected {expected}")
    remove_baseline(nodes)
    return elapsed_s


def remove_baseline(nodes: list[SandboxNode]) -> None:
    for node in nodes:
        ids = docker(node.dockerd, "ps", "-aq", "--filter", f"label={BASELINE_LABEL}").stdout.decode().split()
        if ids:
            docker(node.dockerd, "rm", "-f", *ids)


def running_count(api: httpx.Client) -> int:
    tasks = api.get(f"/services/{SERVICE}/tasks", params={"all": "false"}).json()
    return sum(1 for t in tasks if t["state"] == "running")


def p2porch_round(nodes: list[SandboxNode], replicas: int, scale: int) -> tuple[float, float]:
    """(create -> all ``replicas`` running, scale -> all ``scale`` running), in seconds."""
    spec = {
        "name": SERVICE,
        "image": IMAGE,
        "command": ["sleep", "100000"],
        "replicas": replicas,
        "stop_grace_period": "1s",
    }
    with client(nodes[0]) as api:
        started = time.monotonic()
        response = api.post("/services", json=spec)
        response.raise_for_status()
        wait_until(lambda: running_count(api) == replicas, 120, f"{replicas} running tasks")
        create_s = time.monotonic() - started

        started = time.monotonic()
        api.post(f"/services/{SERVICE}/scale", json={"replicas": scale}).raise_for_status()
        wait_until(lambda: running_count(api) == scale, 300, f"{scale} running tasks")
        scale_s = time.monotonic() - started

        # Check against the engines themselves: every task is a running container on some node.
        on_engines = sum(
            len(docker(n.dockerd, "ps", "-q", "--filter", f"label=p2porch.service={SERVICE}").stdout.split())
            for n in nodes
        )
        if on_engines != scale:
            raise RuntimeError(f"{on_engines} containers of {SERVICE} run on the engines, expected {scale}")

        api.post(f"/services/{SERVICE}/scale", json={"replicas": 0}).raise_for_status()
        wait_until(lambda: running_count(api) == 0, 120, "scale to 0")
        api.delete(f"/services/{SERVICE}").raise_for_status()

    def gone() -> bool:
        return not any(
            docker(n.dockerd, "ps", "-aq", "--filter", f"label=p2porch.service={SERVICE}").stdout.split()
            for n in nodes
        )

    wait_until(gone, 120, "the service's containers to be removed")
    return create_s, scale_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=6)
    parser.add_argument("--scale", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=1, help="rounds of each measurement (median kept)")
    parser.add_argument("--keep", action="store_true", help="leave the sandbox up afterwards")
    args = parser.parse_args()

    # the baseline attaches containers to the nodes' p2porch network by hand: made at each daemon's start,
    # not on its first task (docs/overlay.md, "The Docker network, made on first need")
    os.environ.setdefault("P2PORCH_OVERLAY_BRIDGE_AT_START", "true")
    sb = Sandbox("p2be", subnet="10.68.0.0/24")
    try:
        nodes = sb.up(args.nodes)
        form_cluster(sb, nodes)
        docker_create, docker_scale, create, scale = [], [], [], []
        for _ in range(args.repeats):
            docker_create.append(docker_baseline(nodes, args.replicas))
            docker_scale.append(docker_baseline(nodes, args.scale))
            create_s, scale_s = p2porch_round(nodes, args.replicas, args.scale)
            create.append(create_s)
            scale.append(scale_s)
    except subprocess.SubprocessError as exc:
        print(json.dumps({"error": str(exc)}))
        return 1
    finally:
        if not args.keep:
            sb.down()

    def median(values: list[float]) -> float:
        return round(statistics.median(values), 3)

    result = {
        "nodes": args.nodes,
        "repeats": args.repeats,
        "create_replicas": args.replicas,
        "scale_to": args.scale,
        "p2porch_create_to_all_running_s": median(create),
        "p2porch_scale_to_all_running_s": median(scale),
        "docker_run_parallel_create_count_s": median(docker_create),
        "docker_run_parallel_scale_count_s": median(docker_scale),
        "ratio_create_vs_docker": round(median(create) / median(docker_create), 2),
        "ratio_scale_vs_docker": round(median(scale) / median(docker_scale), 2),
        "note": (
            "p2porch times run from the API call until the cluster reports every task running (placement, "
            "Raft commits, agents starting containers, state reports); the docker baseline starts the "
            "same number of containers directly on the nodes' engines, all in parallel. The scale round "
            f"starts {args.scale - args.replicas} new tasks; its baseline starts {args.scale}."
        ),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
