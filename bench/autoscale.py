"""Autoscale benchmark: the cost of sampling a task's CPU and memory, and the reaction time (root).

Part 1, on a 1-node sandbox ("p2as", 10.53.0.0/24) with one container burning its ``--cpus 0.05`` limit
in a busy loop, in the same run:
- ``cgroup``: reading the container's cgroup counters (``agent.cgroups.read_sample``), CPU µs of this
  process and wall µs per sample, plus the one-time path lookup (``docker inspect`` + /proc);
- ``engine``: the engine's stats API (``stats(stream=False, one_shot=True)``), the fallback, the same;
- ``usage``: the container's CPU as percent of its limit measured from the cgroup over 2 s (a busy
  loop at its limit reads ~100 %), the input the recommender sees.
Part 2, ``reaction`` (one per ``--profiles`` entry; the 1-node cluster is brought up with that profile's
``[autoscale]`` settings in the daemon's environment):
- ``up``: a service ``--limit-cpu 0.05 --cpu-percent 50 --autoscale-max 4`` whose task burns its limit
  from its start: seconds from the first task running (the load change) to the first step committed,
  and to all 4 replicas running;
- ``down`` (with ``--down``): 3 idle replicas, min 1, the profile's scale-down delay: seconds from all 3
  running to the first step and to 1 running.
The reference is the Kubernetes HPA with its defaults (15 s sync period, 300 s scale-down stabilisation,
metrics-server's 15 s resolution): its floor is stated in the JSON, not measured (no Kubernetes here).
Prints one JSON object. Usage: python bench/autoscale.py [--samples 2000] [--engine-samples 50]
[--profiles fast,default] [--down]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import docker  # noqa: E402
import httpx  # noqa: E402
from benchkit import P2PORCH, client, init_and_join  # noqa: E402

from p2porch.agent.cgroups import UsageMeter, cgroup_files, read_sample  # noqa: E402
from p2porch.sandbox.dockerd import BUSYBOX_IMAGE  # noqa: E402
from p2porch.sandbox.sandbox import Sandbox  # noqa: E402

CPU_LIMIT = 0.05
SANDBOX, SUBNET = "p2as", "10.53.0.0/24"
PROFILES: dict[str, dict[str, float]] = {
    # seconds: sampling period, usage window, leader sync period, scale-down delay used by the down run
    "fast": {"sample_s": 1.0, "window_s": 5.0, "sync_s": 2.0, "scale_down_delay_s": 10.0},
    "default": {"sample_s": 5.0, "window_s": 30.0, "sync_s": 15.0, "scale_down_delay_s": 300.0},
}
UP_ARGS = (
    *("--name", "up", "--limit-cpu", str(CPU_LIMIT), "--autoscale-min", "1", "--autoscale-max", "4"),
    *("--cpu-percent", "50", "--scale-down-delay", "1h", BUSYBOX_IMAGE, "sh", "-c", "while :; do :; done"),
)
DOWN_ARGS = ("--name", "down", "--replicas", "3", "--limit-cpu", "0.5", "--autoscale-min", "1")
DOWN_ARGS += ("--autoscale-max", "3", "--cpu-percent", "50")
HPA = {
    "sync_period_s": 15.0,
    "scale_down_stabilization_s": 300.0,
    "metrics_resolution_s": 15.0,
    "up_reaction_floor_s": "metrics resolution + up to one sync period (15-30 s) + pod start, per step",
    "down_reaction_floor_s": "300 s stabilisation + up to one sync period",
    "source": "kube-controller-manager --horizontal-pod-autoscaler-sync-period, HPA behavior defaults, "
    "metrics-server --metric-resolution",
}


def timed(fn, n: int) -> dict[str, float]:
    cpu, wall = [], []
    for _ in range(n):
        c0, w0 = time.process_time_ns(), time.perf_counter_ns()
        fn()
        cpu.append((time.process_time_ns() - c0) / 1000)
        wall.append((time.perf_counter_ns() - w0) / 1000)
    # process_time has a coarse tick on some kernels: the mean over n is the honest per-sample figure
    return {
        "samples": n,
        "cpu_us_mean": round(statistics.fmean(cpu), 2),
        "wall_us_mean": round(statistics.fmean(wall), 2),
        "wall_us_p50": round(statistics.median(wall), 2),
        "wall_us_p99": round(sorted(wall)[int(0.99 * (n - 1))], 2),
    }


def api_get(node: Any, path: str, **params: str) -> Any:
    with client(node, timeout_s=10) as c:
        response = c.get(path, params=params)
        response.raise_for_status()
        return response.json()


def poll(predicate: Any, timeout_s: float, what: str) -> float:
    """Poll every 0.2 s; returns the monotonic time the predicate first held."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if predicate():
                return time.monotonic()
        except (httpx.HTTPError, OSError, KeyError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def running(node: Any, name: str) -> int:
    return sum(1 for t in api_get(node, f"/services/{name}/tasks", all="false") if t["state"] == "running")


def desired(node: Any, name: str) -> int:
    return int(api_get(node, f"/services/{name}")["desired"])


def create(sb: Sandbox, node: Any, *args: str) -> None:
    result = sb.exec(
        node.name, [*P2PORCH, "service", "create", "--stop-grace-period", "1s", *args], capture=True
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr.decode())


def remove(node: Any, name: str) -> None:
    with client(node) as c:
        c.delete(f"/services/{name}")
    poll(lambda: not docker_containers(node, name), 60, f"{name} removed")


def docker_containers(node: Any, name: str) -> list[Any]:
    dc = docker.DockerClient(base_url=node.dockerd.host_url)
    try:
        return [c for c in dc.containers.list(all=True) if c.name.startswith(f"{name}.")]
    finally:
        dc.close()


def reaction(profile: str, down: bool) -> dict[str, Any]:
    """One profile's reaction times on a fresh 1-node cluster started with its settings."""
    settings = PROFILES[profile]
    env = {f"P2PORCH_AUTOSCALE_{k.upper()}": str(settings[k]) for k in ("sample_s", "window_s", "sync_s")}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    sb = Sandbox(SANDBOX, subnet=SUBNET)
    out: dict[str, Any] = {"settings": settings}
    try:
        (node,) = sb.up(1)
        init_and_join(sb, [node])
        poll(lambda: api_get(node, "/nodes")[0]["status"] == "ready", 60, "the node ready")
        timeout = 10 * (settings["window_s"] + settings["sync_s"]) + 60
        create(sb, node, *UP_ARGS)
        t0 = poll(lambda: running(node, "up") >= 1, 120, "the first task running")
        t1 = poll(lambda: desired(node, "up") > 1, timeout, "the first step")
        t2 = poll(lambda: running(node, "up") == 4, timeout, "4 running")
        out["up"] = {
            "from": 1,
            "to": 4,
            "load_to_first_step_s": round(t1 - t0, 1),
            "load_to_max_running_s": round(t2 - t0, 1),
        }
        remove(node, "up")
        if down:
            delay = settings["scale_down_delay_s"]
            create(sb, node, *DOWN_ARGS, "--scale-down-delay", f"{delay:g}s", BUSYBOX_IMAGE, "sleep", "3600")
            t0 = poll(lambda: running(node, "down") == 3, 120, "3 idle tasks running")
            t1 = poll(lambda: desired(node, "down") < 3, timeout + delay, "the first scale-down step")
            t2 = poll(lambda: running(node, "down") == 1, timeout + 2 * delay, "1 running")
            out["down"] = {
                "from": 3,
                "to": 1,
                "scale_down_delay_s": delay,
                "idle_to_first_step_s": round(t1 - t0, 1),
                "idle_to_min_running_s": round(t2 - t0, 1),
            }
            remove(node, "down")
    finally:
        sb.down()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--engine-samples", type=int, default=50)
    parser.add_argument("--profiles", default="fast,default", help="reaction profiles, comma-separated")
    parser.add_argument(
        "--down", action="store_true", help="also measure scale-down (default profile: > 5 min)"
    )
    args = parser.parse_args()
    sandbox = Sandbox(SANDBOX, subnet=SUBNET, start_daemons=False)
    try:
        (node,) = sandbox.up(1)
        client = docker.DockerClient(base_url=node.dockerd.host_url)
        try:
            for stale in client.containers.list(all=True, filters={"name": "p2au-burn"}):
                stale.remove(force=True)  # left by an interrupted run
            container = client.containers.run(
                BUSYBOX_IMAGE,
                ["sh", "-c", "while :; do :; done"],
                detach=True,
                nano_cpus=int(CPU_LIMIT * 1e9),
                mem_limit="64m",
                name="p2au-burn",
            )
            t0 = time.perf_counter_ns()
            container.reload()
            files = cgroup_files(int(container.attrs["State"]["Pid"]))
            lookup_us = (time.perf_counter_ns() - t0) / 1000
            if files is None:
                raise RuntimeError("container cgroup not readable from here")
            meter = UsageMeter()
            meter.update(
                "c", read_sample(files, time.monotonic()), cpu_limit=CPU_LIMIT, memory_limit=64 << 20
            )
            time.sleep(2.0)
            usage = meter.update(
                "c", read_sample(files, time.monotonic()), cpu_limit=CPU_LIMIT, memory_limit=64 << 20
            )
            cgroup = timed(lambda: read_sample(files, time.monotonic()), args.samples)
            engine = timed(lambda: container.stats(stream=False, one_shot=True), args.engine_samples)
            container.remove(force=True)
        finally:
            client.close()
    finally:
        sandbox.down()
    profiles = [p for p in args.profiles.split(",") if p]
    reactions = {p: reaction(p, args.down) for p in profiles}
    print(
        json.dumps(
            {
                "cgroup_v2": files.v2,
                "cgroup_lookup_us": round(lookup_us, 1),
                "cgroup": cgroup,
                "engine_stats_api": engine,
                "engine_over_cgroup_wall": round(engine["wall_us_mean"] / cgroup["wall_us_mean"], 1),
                "usage": {
                    "cpu_limit": CPU_LIMIT,
                    "cpu_percent_of_limit": usage and round(usage.cpu_percent or 0.0, 1),
                    "memory_bytes": usage and usage.memory_bytes,
                },
                "reaction": reactions,
                "reference_kubernetes_hpa": HPA,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
