"""A stop-first update starts the new task only after the old one stopped, on a real 1-node sandbox
(``p3or``, 10.86.0.0/24, one cluster for the module).

The task's shell traps SIGTERM and takes ~3 s to stop. A thread runs ``docker ps`` on the node every
0.2 s and counts the service's running containers: with ``--update-order stop-first`` (the default) it
never sees two, and the update finishes; the same update ``start-first`` (the control that shows the
sampler sees an overlap when there is one) does see two.
"""

from __future__ import annotations

import time

from clusterkit import IMAGE, Sampler, api_get, cli, cluster_fixture, running_containers, service, wait_for

cluster = cluster_fixture("p3or", "10.86.0.0/24", 1)

# stops ~3 s after SIGTERM (the trap runs once the 0.2 s sleep in progress ends)
SLOW_STOP = 'trap "sleep 3; exit 0" TERM; while :; do sleep 0.2; done'


def update_and_sample(sb, nodes, name: str, order: str) -> tuple[list[int], float]:
    with service(
        sb, nodes, name, "--stop-grace-period", "10s", "--update-order", order, IMAGE, "sh", "-c", SLOW_STOP
    ):
        wait_for(lambda: running_containers(nodes, name)[nodes[0].name] == 1, 90, f"{name} running")
        with Sampler(nodes, name, every_s=0.2) as sampler:
            time.sleep(1.0)
            began = time.monotonic()
            updated = cli(sb, "n1", "service", "update", name, "--env-add", "ROUND=2")
            assert updated.returncode == 0, updated.stderr.decode()

            def converged() -> bool:
                tasks = api_get(nodes[0], f"/services/{name}/tasks", all="true")
                live = [t for t in tasks if t["desired_state"] == "running"]
                return (
                    len(live) == 1
                    and live[0]["state"] == "running"
                    and all(t["state"] in ("shutdown", "complete", "failed") for t in tasks if t not in live)
                    and running_containers(nodes, name)[nodes[0].name] == 1
                )

            wait_for(converged, 90, f"{name} updated and the old task stopped")
            took = time.monotonic() - began
            time.sleep(1.0)
        return sampler.samples, took


def test_a_stop_first_update_never_runs_two_containers_of_the_slot(cluster):
    sb, nodes = cluster
    samples, took = update_and_sample(sb, nodes, "sf", "stop-first")
    print(f"stop-first: {len(samples)} samples, max {max(samples)} running, update {took:.1f} s")
    assert len(samples) >= 15
    assert max(samples) == 1, f"two containers of the slot ran at once: {samples}"
    assert took >= 3.0, "the old task's 3 s stop was waited for"


def test_the_same_update_start_first_runs_both_for_the_stop(cluster):
    sb, nodes = cluster
    samples, took = update_and_sample(sb, nodes, "sff", "start-first")
    print(f"start-first: {len(samples)} samples, max {max(samples)} running, update {took:.1f} s")
    assert max(samples) == 2, f"the sampler sees the overlap start-first has: {samples}"
