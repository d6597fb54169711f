"""Autoscale benchmark: the cost of sampling one task's CPU and memory, cgroup files vs the engine.

On a 1-node sandbox ("p2au", needs root) with one container burning its ``--cpus 0.05`` limit in a
busy loop, in the same run:
- ``cgroup``: reading the container's cgroup counters (``agent.cgroups.read_sample``), CPU µs of this
  process and wall µs per sample, plus the one-time path lookup (``docker inspect`` + /proc);
- ``engine``: the engine's stats API (``stats(stream=False, one_shot=True)``), the fallback, the same;
- ``usage``: the container's CPU as percent of its limit measured from the cgroup over 2 s (a busy
  loop at its limit reads ~100 %), the input the recommender sees.
Prints one JSON object. Usage: python bench/autoscale.py [--samples 2000] [--engine-samples 50]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import docker  # noqa: E402

from p2porch.agent.cgroups import UsageMeter, cgroup_files, read_sample  # noqa: E402
from p2porch.sandbox.dockerd import BUSYBOX_IMAGE  # noqa: E402
from p2porch.sandbox.sandbox import Sandbox  # noqa: E402

CPU_LIMIT = 0.05


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--engine-samples", type=int, default=50)
    args = parser.parse_args()
    sandbox = Sandbox("p2au", subnet="10.56.0.0/24", start_daemons=False)
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
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
