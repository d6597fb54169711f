"""A dockerd restarted under a running daemon: the overlay is checked as soon as the engine answers again
(sandbox ``p50ec``, 10.95.3.128/25, 2 nodes).

The overlay's host checks (``ensure_host``: the Docker network, the overlay's accept rules in
DOCKER-USER, NAT) ran only at the full resync, every 30 s. Now the agent's event stream answering again
asks the overlay for a full pass at once (``NodeAgent.engine_back`` -> ``OverlayReconciler.resync``).
The dockerd here (20.10) keeps p2porch's rules across its restart (``iptables-save`` before and after:
the same rules), so the test stands in for an engine whose start rewrites them: while it is down, the
overlay's DOCKER-USER rules are deleted. Measured, printed with ``pytest -s``: from dockerd answering to
the rules back, and to the node's replacement task served over the overlay from the other node.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from clusterkit import (
    FAST_STOP,
    IMAGE,
    SERVE,
    formed_cluster,
    http_get,
    restart_dockerd,
    service,
    tasks,
    wait_for,
)

from p2porch.sandbox.sandbox import Sandbox, SandboxNode
from p2porch.sandbox.system import pid_alive, read_pid

REACHABLE_S = 120.0  # dockerd answered -> its node's task served over the overlay (measured a few seconds)


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[Sandbox, list[SandboxNode]]]:
    with formed_cluster("p50ec", "10.95.3.128/25", size=2) as formed:
        yield formed


def task_on(via: SandboxNode, node: SandboxNode, name: str) -> dict | None:
    """``name``'s running task on ``node`` with its overlay address, if any."""
    found = [
        t for t in tasks(via, name) if t["node"] == node.name and t["state"] == "running" and t["address"]
    ]
    return found[0] if found else None


def overlay_rules(node: SandboxNode) -> list[str]:
    """p2porch's rules in ``node``'s DOCKER-USER chain (``iptables -S`` lines)."""
    argv = ["ip", "netns", "exec", node.netns, "iptables", "-S", "DOCKER-USER"]
    listing = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout
    return [line for line in listing.splitlines() if "p2porch-" in line]


def delete_rules(node: SandboxNode, rules: list[str]) -> None:
    for rule in rules:
        argv = ["ip", "netns", "exec", node.netns, "iptables", "-D", *rule.split()[1:]]
        subprocess.run(argv, check=True, timeout=30)


def test_a_dockerd_restart_under_the_daemon_is_mended_at_once(cluster):
    sb, nodes = cluster
    victim, other = nodes[1], nodes[0]
    with service(sb, nodes, "back", "--mode", "global", *FAST_STOP, IMAGE, "sh", "-c", SERVE):
        first = wait_for(lambda: task_on(other, victim, "back"), 60, "the victim's task running")
        url = f"http://{first['address']}/"
        wait_for(lambda: http_get(other, url), 60, "the victim's task served over the overlay")
        pid = read_pid(victim.dockerd.pidfile)
        assert pid is not None and pid_alive(pid)
        os.kill(pid, signal.SIGTERM)  # no live-restore: its shutdown stops the task's container
        wait_for(lambda: not pid_alive(pid), 60, f"dockerd of {victim.name} gone")
        rules = overlay_rules(victim)
        assert rules, "the overlay's accept rules"
        delete_rules(victim, rules)  # as an engine whose start rewrites DOCKER-USER
        restart_dockerd(sb, victim)
        answered = time.monotonic()
        seen: dict[str, float] = {}  # what came back when (seconds after dockerd answered)
        found: dict[str, Any] = {}

        def back() -> bool:
            if "rules" not in seen and sorted(overlay_rules(victim)) == sorted(rules):
                seen["rules"] = time.monotonic() - answered
            if "running" not in seen and (t := task_on(other, victim, "back")) and t["id"] != first["id"]:
                seen["running"], found["task"] = time.monotonic() - answered, t
            serving = "running" in seen and "served" not in seen
            if serving and (body := http_get(other, f"http://{found['task']['address']}/")):
                seen["served"], found["body"] = time.monotonic() - answered, body
            return len(seen) == 3

        wait_for(back, REACHABLE_S, "the overlay's rules back and the replacement served over the overlay")
        print(
            f"\ndockerd restarted under the daemon: rules back {seen['rules']:.1f} s, replacement running "
            f"{seen['running']:.1f} s, served over the overlay {seen['served']:.1f} s after dockerd answered "
            f"(load {os.getloadavg()[0]:.1f})"
        )
        assert f"node={victim.name}" in found["body"]
