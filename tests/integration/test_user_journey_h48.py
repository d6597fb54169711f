"""The h48 user journey on a live 3-node cluster (``p8e``, 10.92.1.0/24): what a user typing the README's
commands hit and the fast tiers cannot show.

- A node whose daemon was killed (kill -9, its dockerd and containers left running) comes back after its
  tasks were replaced; a superseded container that a stop signal ended meanwhile (an operator's ``docker
  kill``; in the walk, a key switch restarting the agent in the middle of its own stop) ends its task
  ``shutdown`` and goes: it was ``failed: task exited with code 137`` and the container stayed.
- ``service update`` returns once the leader has judged the rollout past its ``--update-monitor`` (its
  ``{{.UpdateStatus.State}}`` is then ``completed``), and a task that fails inside the monitor makes the
  command fail with the rollback: it said ``converged`` (exit 0) while the update was still ``updating``.
"""

from __future__ import annotations

import os
import signal

import clusterkit as kit
from clusterkit import IMAGE, SERVE, cli, cluster_fixture, service, wait_for

from p2porch.sandbox.dockerd import docker
from p2porch.sandbox.system import pid_alive, read_pid

cluster = cluster_fixture("p8e", "10.92.1.0/24")

IGNORES_TERM = "exec sleep 3600"  # PID 1 without a handler: only SIGKILL ends it


def test_a_superseded_container_a_stop_ended_while_the_daemon_was_away_is_shutdown_not_failed(
    cluster,
) -> None:
    sb, nodes = cluster
    with service(sb, nodes, "away", "--replicas", "3", IMAGE, "sh", "-c", IGNORES_TERM):
        leader = kit.leader_node(nodes)
        placed = kit.running_tasks(nodes[0], "away", 3)
        old = next(t for t in placed if t["node"] != leader.name)
        victim = next(n for n in nodes if n.name == old["node"])
        other = next(n for n in nodes if n is not victim)
        pid = read_pid(victim.p2porch_pidfile)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # the daemon only: dockerd and the task's container keep running
        wait_for(lambda: not pid_alive(pid), 10, "the killed daemon gone")
        try:
            wait_for(
                lambda: (
                    all(
                        t["node"] != victim.name and t["state"] == "running" for t in kit.tasks(other, "away")
                    )
                    and len(kit.tasks(other, "away")) == 3
                ),
                60,
                f"away's task on {victim.name} replaced elsewhere",
            )
            (kept,) = [
                c
                for c in kit.containers(victim, "away")
                if c["Config"]["Labels"]["p2porch.task-id"] == old["id"]
            ]
            docker(victim.dockerd, "kill", kept["Id"])  # a stop signal ends it while no agent watches
        finally:
            os.unlink(victim.p2porch_pidfile)
            sb.up(len(nodes))

        def ended() -> dict | None:
            record = next(t for t in kit.all_tasks(other, "away") if t["id"] == old["id"])
            return record if record["state"] in ("shutdown", "failed") else None

        record = wait_for(ended, 90, f"the superseded task on {victim.name} reported over")
        assert (record["state"], record["error"]) == ("shutdown", ""), record
        wait_for(
            lambda: (
                not [
                    c
                    for c in kit.containers(victim, "away", include_stopped=True)
                    if c["Config"]["Labels"]["p2porch.task-id"] == old["id"]
                ]
            ),
            30,
            "its stopped container removed (not kept as a crashed task's)",
        )


def test_service_update_returns_once_the_leader_judged_it_and_fails_on_a_crash_inside_the_monitor(
    cluster,
) -> None:
    sb, nodes = cluster
    monitor = ("--update-monitor", "8s", "--update-failure-action", "rollback")
    with service(sb, nodes, "judged", "--replicas", "2", *monitor, "--env", "V=1", IMAGE, "sh", "-c", SERVE):
        kit.running_tasks(nodes[0], "judged", 2)
        updated = cli(sb, "n2", "service", "update", "--env-add", "V=2", "judged")
        assert updated.returncode == 0, updated.stderr.decode()
        state = cli(sb, "n3", "service", "inspect", "--format", "{{.UpdateStatus.State}}", "judged")
        assert state.stdout.decode() == "completed\n", (state.stdout, updated.stderr.decode())
        crash = (
            "--args",
            "sh -c 'sleep 3; exit 1'",
        )  # runs (converged on main), then fails inside the monitor
        failed = cli(sb, "n1", "service", "update", *crash, "judged")
        assert failed.returncode == 1, failed.stderr.decode()
        assert "rolled back" in failed.stderr.decode(), failed.stderr.decode()
        status = cli(sb, "n1", "service", "inspect", "--format", "{{.UpdateStatus.State}}", "judged")
        assert status.stdout.decode() == "rollback_completed\n"
