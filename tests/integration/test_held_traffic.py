"""A held node's tasks in DNS and the ingress/VIP backends (sandbox ``p8h``, 10.92.4.0/24, 3 nodes).

A daemon restart (SIGTERM, dockerd survives) leaves its containers running and reachable: its task
stays in every node's ``tasks.<service>`` answers and keeps receiving requests through every node's
published port while its node is held, even once gossip calls the daemon dead. A daemon stopping as part
of a host shutdown (a stand-in ``runlevel`` on its PATH says ``N 0``; systemd's ``is-system-running``
is asked instead where systemd runs) leaves gossip: its task leaves the answers and every backend set at
once, before its containers stop with the host, and requests through every other node's port keep
succeeding (member/held.py, docs/failure-model.md). Measured times are printed (``pytest -s``).
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

from clusterkit import (
    FAST_STOP,
    cluster_fixture,
    containers,
    dig_a,
    docker,
    leader_node,
    running_tasks,
    service,
    wait_for,
)
from test_daemon_restart import SERVE, Clients, start_again, statuses, stop_daemon

from p2porch.sandbox.sandbox import SandboxNode
from p2porch.sandbox.system import read_pid

cluster = cluster_fixture("p8h", "10.92.4.0/24")


def answers(servers: list[SandboxNode], name: str) -> set[str] | None:
    """``name`` as every server answers it, when they all agree (None: they differ or one failed)."""
    try:
        found = {frozenset(dig_a(s.address, name)) for s in servers}
    except OSError:
        return None
    return set(found.pop()) if len(found) == 1 else None


def since(at: float | None, start: float) -> str:
    return "never" if at is None else f"{at - start:.2f}"


def placed(nodes: list[SandboxNode], name: str) -> tuple[SandboxNode, dict, set[str]]:
    """The 2-replica service's tasks: a node holding one that is not the leader (the victim), its task and
    both addresses, once every node answers them in ``tasks.<name>``."""
    before = running_tasks(nodes[0], name, 2)
    leader = leader_node(nodes)
    victim = next(n for n in nodes if n is not leader and n.name in {t["node"] for t in before})
    addrs = {t["address"] for t in before}
    wait_for(lambda: answers(nodes, f"tasks.{name}.p2p") == addrs, 15, "both tasks in every DNS answer")
    return victim, next(t for t in before if t["node"] == victim.name), addrs


def test_a_restarting_node_keeps_its_task_in_dns_and_behind_every_port(cluster):
    """SIGTERM of a task holder's daemon, back after ~10 s: its task is in every other node's
    ``tasks.kept`` answers at every sample, keeps answering requests through the other nodes' ports
    while gossip calls its daemon dead, and no request fails on any node's port (its own included).
    Before (main): out of the answers for the whole hold and out of every backend set once gossip called
    it dead (served none)."""
    sb, nodes = cluster
    with service(sb, nodes, "kept", "--replicas", "2", "--publish", "8093:80", *FAST_STOP, *SERVE):
        victim, mine, addrs = placed(nodes, "kept")
        others = [n for n in nodes if n is not victim]
        leader = leader_node(others)
        samples: Counter[bool] = Counter()
        dead_at = None
        try:
            with Clients(others, 8093) as reqs, Clients([victim], 8093) as own:
                time.sleep(2)
                gone = stop_daemon(victim, signal.SIGTERM)
                wait_for(lambda: statuses(leader, victim.name)[0] == "ready (restarting)", 10, "restarting")
                # away ~10 s (gossip declares it dead meanwhile) and until more than 20 DNS samples were
                # taken: on a loaded machine a sample takes 0.3-0.5 s, and a dig over 1 s is none (at most
                # 20 s away: the hold lasts restart_grace_s, 30 s)
                while (away := time.monotonic() - gone) < 10 or (sum(samples.values()) <= 20 and away < 20):
                    seen = answers(others, "tasks.kept.p2p")
                    if seen is not None:
                        samples[seen == addrs] += 1
                    if dead_at is None and statuses(leader, victim.name)[1] == "dead":
                        dead_at = time.monotonic()
                    time.sleep(0.2)
                back_at = time.monotonic()
                start_again(sb, nodes, victim)
                wait_for(lambda: statuses(leader, victim.name) == ("ready", "alive"), 60, "back and released")
                wait_for(lambda: answers(nodes, "tasks.kept.p2p") == addrs, 15, "answered by every node")
                time.sleep(2)
        finally:
            if read_pid(victim.p2porch_pidfile) is None:
                start_again(sb, nodes, victim)
        served_dead = reqs.served_by(mine["id"], dead_at or back_at, back_at)
        print(
            f"SIGTERM of {victim.name}'s daemon: dead in gossip {since(dead_at, gone)} s after the stop; DNS "
            f"samples with both tasks {samples[True]}, without {samples[False]}; its "
            f"task served {served_dead} requests through the others' ports while dead in gossip; ok "
            f"{dict(reqs.ok)} failed {dict(reqs.failed)} {reqs.errors[:5]}; its own port ok "
            f"{dict(own.ok)} failed {dict(own.failed)} {own.errors[:5]}"
        )
        assert dead_at is not None  # gossip did call it dead: the hold is what kept it serving
        assert samples[True] > 20 and samples[False] == 0, samples
        assert served_dead > 10
        assert sum(reqs.failed.values()) == 0 and sum(own.failed.values()) == 0, reqs.errors + own.errors
        after = running_tasks(nodes[0], "kept", 2)
        assert mine["id"] in {t["id"] for t in after}  # the same task, never replaced


def test_a_host_shutdown_takes_its_task_out_at_once_and_every_other_port_serves(
    cluster, monkeypatch, tmp_path
):
    """The victim's daemon runs with a ``runlevel`` saying ``N 0`` (a host halting); SIGTERM, then its
    containers die as the host's dockerd stops them: no restart hold, the node down and its task out of
    every answer within ~1 s (gossip's leave; before: nothing said, out of the backends only at gossip's
    dead verdict, ~3.5 s, and of DNS once marked down), 0 failed requests on the other nodes' ports, its
    task replaced on another node. Back (its host rebooted), the node is ready again."""
    sb, nodes = cluster
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "runlevel").write_text("#!/bin/sh\necho N 0\n")
    (fake / "runlevel").chmod(0o755)
    path = os.environ["PATH"]
    with service(sb, nodes, "halt", "--replicas", "2", "--publish", "8094:80", *FAST_STOP, *SERVE):
        victim, mine, addrs = placed(nodes, "halt")
        others = [n for n in nodes if n is not victim]
        leader = leader_node(others)
        seen: Counter[str] = Counter()
        down_at = out_at = None
        try:
            monkeypatch.setenv("PATH", f"{fake}:{path}")  # its next start sees the host halting
            stop_daemon(victim, signal.SIGTERM)  # a plain restart (its PATH had no stand-in)
            start_again(sb, nodes, victim)
            monkeypatch.setenv("PATH", path)
            wait_for(lambda: statuses(leader, victim.name) == ("ready", "alive"), 60, "back with runlevel 0")
            wait_for(lambda: answers(others, "tasks.halt.p2p") == addrs, 15, "both tasks answered")
            with Clients(others, 8094) as reqs:
                time.sleep(2)
                gone = stop_daemon(victim, signal.SIGTERM)
                with open(victim.p2porch_log, encoding="utf-8", errors="replace") as log:
                    said = [line for line in log if "shutting down" in line or "announcing a restart" in line]
                ids = [c["Id"] for c in containers(victim, "halt")]
                docker(victim.dockerd, "kill", *ids, check=False, timeout_s=20)  # the host's dockerd stops
                while time.monotonic() - gone < 8:
                    status = statuses(leader, victim.name)[0]
                    seen[status] += 1
                    if down_at is None and status == "down":
                        down_at = time.monotonic()
                    found = answers(others, "tasks.halt.p2p")  # its replacement may be in already
                    if out_at is None and found is not None and mine["address"] not in found:
                        out_at = time.monotonic()
                    time.sleep(0.1)
                replaced = running_tasks(others[0], "halt", 2, avoid=victim.name)
                time.sleep(1)
        finally:
            monkeypatch.setenv("PATH", path)
            start_again(sb, nodes, victim)  # its host is back
        wait_for(lambda: statuses(leader, victim.name) == ("ready", "alive"), 60, "back after the shutdown")
        print(
            f"host shutdown of {victim.name}: down {since(down_at, gone)} s after its daemon exited, its "
            f"task out of DNS {since(out_at, gone)} s after; "
            f"statuses seen {dict(seen)}; requests ok {dict(reqs.ok)} failed {dict(reqs.failed)} "
            f"{reqs.errors[:5]}; its daemon said {said[-1:]}"
        )
        assert said and "the host is shutting down" in said[-1], said
        assert "ready (restarting)" not in seen, seen
        assert down_at is not None and down_at - gone < 2.0, seen
        assert out_at is not None and out_at - gone < 2.0
        assert sum(reqs.failed.values()) == 0, reqs.errors[:10]
        assert mine["id"] not in {t["id"] for t in replaced}
