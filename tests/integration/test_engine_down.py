"""A node whose dockerd is down while its p2porch daemon runs, and a live node removed with `node rm
--force`, on a real 3-node sandbox (``p4en``, 10.92.0.0/16).

Engine down: the node's record says its engine is unreachable (``node ls``: ``ready (engine
unreachable)``), it takes no new task, its tasks are replaced elsewhere once the engine stayed away
``[scheduler] engine_down_grace_s`` (10 s), and it takes tasks again once its dockerd is back. The fault
is real: ``kill -9`` of the dockerd by the pid the sandbox recorded, restarted as the sandbox starts it
(``clusterkit.restart_dockerd``).

Removed while running: the node learns it (its peers no longer record it), stops its tasks and its DNS,
answers every command with the removal, and joins again with the cluster's token. Measured times are
printed (``pytest -s``)."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

from clusterkit import (
    FAST_STOP,
    IMAGE,
    SERVE,
    all_ready,
    all_tasks,
    cli,
    cli_json,
    cluster_fixture,
    containers,
    dig_a,
    leader_addr,
    node_row,
    restart_dockerd,
    running_tasks,
    service,
    tasks,
)
from clusterkit import wait_retrying as wait_for

from p2porch.sandbox.system import pid_alive, read_pid

cluster = cluster_fixture("p4en", "10.92.0.0/16")

GRACE_S = 10.0  # [scheduler] engine_down_grace_s, the default


def test_a_node_without_its_engine_takes_no_new_task_loses_its_tasks_after_the_grace_and_returns(cluster):
    sb, nodes = cluster
    victim = nodes[2]
    with (
        service(sb, nodes, "kept", "--replicas", "3", *FAST_STOP, IMAGE, "sleep", "100000"),
    ):
        assert Counter(t["node"] for t in running_tasks(nodes[0], "kept", 3)) == {"n1": 1, "n2": 1, "n3": 1}
        on_victim = next(t for t in tasks(nodes[0], "kept") if t["node"] == victim.name)
        pid = read_pid(victim.dockerd.pidfile)
        assert pid is not None and pid_alive(pid)
        try:
            killed_at = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: not pid_alive(pid), 10, "dockerd gone")

            row = wait_for(
                lambda: (r := node_row(nodes[0], victim.name))["engine"]["reachable"] is False and r,
                30,
                "the engine recorded unreachable",
            )
            recorded_s = time.monotonic() - killed_at
            print(f"\nengine unreachable in the record {recorded_s:.2f} s after the kill")
            assert row["status"] == "ready" and "Docker engine" in row["engine"]["error"], row
            listing = cli(sb, nodes[0].name, "node", "ls").stdout.decode()
            assert "ready (engine unreachable)" in listing, listing
            inspected = cli(sb, nodes[0].name, "node", "inspect", victim.name, "--pretty").stdout.decode()
            assert "engine:       unreachable since" in inspected, inspected

            # New tasks avoid it: at most one per node leaves one pending, saying why.
            with service(
                sb, nodes, "fresh", "--replicas", "3", "--replicas-max-per-node", "1", *FAST_STOP, IMAGE,
                "sleep", "100000",
            ):  # fmt: skip

                def one_pending() -> list[dict] | None:
                    current = tasks(nodes[0], "fresh")
                    placed = [t for t in current if t["node"]]
                    pending = [t for t in current if not t["node"]]
                    why = pending[0]["message"] if len(pending) == 1 else ""
                    return current if len(placed) == 2 and "engine unreachable" in why else None

                current = wait_for(one_pending, 60, "fresh: 2 placed, 1 pending for the engine")
                assert victim.name not in {t["node"] for t in current}

                # Its task of "kept" is replaced elsewhere once the engine stayed away the grace.
                running_tasks(nodes[0], "kept", 3, timeout_s=60, avoid=victim.name)
                moved_s = time.monotonic() - killed_at
                print(f"its task replaced and the replacement running {moved_s:.2f} s after the kill")
                assert moved_s >= GRACE_S
                old = next(t for t in all_tasks(nodes[0], "kept") if t["id"] == on_victim["id"])
                assert old["desired_state"] == "shutdown" and old["message"] == "node engine unreachable", old

                # The engine back: the node takes tasks again (the pending slot lands there).
                restarted_at = time.monotonic()
                restart_dockerd(sb, victim)
                wait_for(
                    lambda: node_row(nodes[0], victim.name)["engine"]["reachable"], 60, "the engine reachable"
                )
                back_s = time.monotonic() - restarted_at
                print(f"engine reachable in the record {back_s:.2f} s after dockerd was started again")
                placed = running_tasks(nodes[0], "fresh", 3, timeout_s=90)
                print(f"fresh's third task running {time.monotonic() - restarted_at:.2f} s after the restart")
                assert Counter(t["node"] for t in placed) == {"n1": 1, "n2": 1, "n3": 1}
        finally:
            again = read_pid(victim.dockerd.pidfile)
            if again is None or not pid_alive(again):
                restart_dockerd(sb, victim)


REMOVED = "this node was removed from the cluster; run p2porch join"


def test_a_live_node_removed_stops_its_tasks_and_dns_says_so_and_joins_again(cluster):
    sb, nodes = cluster
    leader = leader_addr(nodes[0])
    victim = next(n for n in reversed(nodes) if f"{n.address}:7947" != leader)
    via = next(n for n in nodes if n is not victim)
    with service(sb, nodes, "onall", "--mode", "global", *FAST_STOP, IMAGE, "sh", "-c", SERVE):
        assert {t["node"] for t in running_tasks(via, "onall", 3)} == {"n1", "n2", "n3"}
        wait_for(lambda: dig_a(victim.address, "onall.p2p"), 30, "the victim's DNS answers")
        removed_at = time.monotonic()
        removed = cli_json(sb, via.name, "node", "rm", victim.name, "--force")
        rm_s = time.monotonic() - removed_at
        assert removed["removed"] and "warning" not in removed, removed

        def says_removed() -> str | bool:
            answer = cli(sb, victim.name, "service", "ls")
            return answer.returncode != 0 and REMOVED in answer.stderr.decode() and answer.stderr.decode()

        wait_for(says_removed, 60, "the removed node to say so")
        left_s = time.monotonic() - removed_at
        wait_for(lambda: containers(victim, "onall", include_stopped=True) == [], 30, "its containers gone")
        stopped_s = time.monotonic() - removed_at
        print(
            f"\nnode rm took {rm_s:.1f} s; the removed node said so {left_s:.1f} s and had no container "
            f"{stopped_s:.1f} s after it was run"
        )
        try:
            dig_a(victim.address, "onall.p2p")
            answered = True
        except OSError:  # no server there any more: dig times out
            answered = False
        assert not answered, "the removed node still answers cluster DNS"
        assert {t["node"] for t in tasks(via, "onall")} == {n.name for n in nodes if n is not victim}

        token = cli_json(sb, via.name, "token")["token"]
        rejoined = cli(sb, victim.name, "join", via.address, "--token", token)
        assert rejoined.returncode == 0, rejoined.stderr.decode()
        wait_for(lambda: all_ready(via, 3), 90, "3 ready nodes again")
        assert {t["node"] for t in running_tasks(via, "onall", 3, timeout_s=90)} == {"n1", "n2", "n3"}
