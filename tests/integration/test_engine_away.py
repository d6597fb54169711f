"""The engine changed while the node's daemon was away (sandbox ``p9g``, 10.93.7.0/24, 3 nodes).

The node's p2porch daemon is stopped by its pid (SIGTERM: the node is held ``ready (restarting)`` with its
tasks, so nothing but the daemon back can notice), then, behind its back, its dockerd is restarted by its
pid (without live-restore: the engine's shutdown kills every container), or one container is removed and
another restarted by hand (``docker rm -f``, ``docker restart``). The daemon back reconciles with what the
engine shows, not with what it recorded: each lost task is reported ``failed`` with why (``service ps``),
its container (a restarted one too) goes, and the orchestrator replaces it; the untouched task is adopted;
a container that is not p2porch's is left alone. The service is back to its replicas within ``BACK_S`` of
the daemon's start (measured, printed with ``pytest -s``), with one task and one running container per
slot. And a dockerd restarted under the running daemon: its event stream ends, the agent inspects afresh
once the engine answers, and the killed task is replaced.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest
from clusterkit import (
    FAST_STOP,
    IMAGE,
    all_tasks,
    cli,
    containers,
    formed_cluster,
    leader_node,
    node_row,
    restart_dockerd,
    running_containers,
    service,
    tasks,
    wait_for,
)

from p2porch.sandbox.dockerd import docker
from p2porch.sandbox.sandbox import Sandbox, SandboxNode
from p2porch.sandbox.system import pid_alive, read_pid

HOLD_S = "120"  # [scheduler] restart_grace_s: a dockerd slow to come back on a loaded machine stays held


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[Sandbox, list[SandboxNode]]]:
    """3 nodes whose daemons announce a 120 s hold when stopped: however long the engine's restart takes,
    the node is still held (its tasks not replaced by the leader) when its daemon is back, so what the
    tasks become is the daemon's own finding."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("P2PORCH_SCHEDULER_RESTART_GRACE_S", HOLD_S)
        with formed_cluster("p9g", "10.93.7.0/24") as formed:
            yield formed


BACK_S = 60.0  # daemon started -> every slot running again (measured a few seconds; a loaded CI is slower)
SLEEP = (IMAGE, "sleep", "100000")


def stop_daemon(node: SandboxNode) -> None:
    """SIGTERM of ``node``'s daemon by its pid (dockerd keeps running); returns once it is gone."""
    pid = read_pid(node.p2porch_pidfile)
    assert pid is not None and pid_alive(pid)
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not pid_alive(pid), 30, f"daemon {node.name} gone")


def start_daemon(sb: Sandbox, nodes: list[SandboxNode], node: SandboxNode) -> float:
    """Start ``node``'s daemon again (dockerd too, if it is not running); the monotonic time it answers."""
    if (pid := read_pid(node.p2porch_pidfile)) is not None and not pid_alive(pid):
        os.unlink(node.p2porch_pidfile)
    docker_pid = read_pid(node.dockerd.pidfile)
    if docker_pid is None or not pid_alive(docker_pid):
        restart_dockerd(sb, node)
    sb.up(len(nodes))
    return time.monotonic()


def restart_engine(sb: Sandbox, node: SandboxNode) -> None:
    """SIGTERM of ``node``'s dockerd by its pid (its shutdown stops every container: no live-restore),
    then started again as the sandbox starts it."""
    pid = read_pid(node.dockerd.pidfile)
    assert pid is not None and pid_alive(pid)
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not pid_alive(pid), 60, f"dockerd of {node.name} gone")
    restart_dockerd(sb, node)


def back_to(
    via: SandboxNode, nodes: list[SandboxNode], name: str, replicas: int, lost: set[str]
) -> list[dict]:
    """Wait until ``name`` has ``replicas`` tasks that should run, one per slot, all running, none of them
    ``lost``, and exactly that many running containers over every node's engine."""

    def done() -> list[dict] | None:
        current = tasks(via, name)
        running = [t for t in current if t["state"] == "running" and t["id"] not in lost]
        one_per_slot = len({t["slot"] for t in current}) == len(current) == replicas
        if not one_per_slot or len(running) != replicas:
            return None
        return current if sum(running_containers(nodes, name).values()) == replicas else None

    return wait_for(done, BACK_S, f"{name} back to {replicas} running tasks and containers")


def held(via: SandboxNode, node: SandboxNode) -> bool:
    return node_row(via, node.name)["status_text"] == "ready (restarting)"


def victim_of(nodes: list[SandboxNode]) -> tuple[SandboxNode, SandboxNode]:
    """A follower to take the daemon of, and the leader to ask meanwhile."""
    leader = leader_node(nodes)
    return next(n for n in reversed(nodes) if n is not leader), leader


def test_a_dockerd_restart_while_the_daemon_is_away_fails_and_replaces_its_tasks(cluster):
    sb, nodes = cluster
    victim, leader = victim_of(nodes)
    foreign = "not-p2porch-p9g"
    docker(
        victim.dockerd, "run", "-d", "--restart", "always", "--stop-timeout", "1", "--name", foreign, *SLEEP
    )
    try:
        with service(sb, nodes, "engine-gone", "--replicas", "3", *FAST_STOP, *SLEEP):
            before = back_to(leader, nodes, "engine-gone", 3, set())
            lost = {t["id"] for t in before if t["node"] == victim.name}
            assert len(lost) == 1, before
            foreign_id = docker(victim.dockerd, "inspect", "-f", "{{.Id}}", foreign).stdout.decode().strip()
            try:
                stop_daemon(victim)
                wait_for(lambda: held(leader, victim), 30, "held ready (restarting)")
                restart_engine(sb, victim)
                assert not [c for c in containers(victim, "engine-gone") if c["State"]["Running"]]
            finally:
                started = start_daemon(sb, nodes, victim)
            after = back_to(leader, nodes, "engine-gone", 3, lost)
            back_s = time.monotonic() - started
            print(
                f"\ndockerd restarted while the daemon was away: every slot running {back_s:.1f} s after it"
            )
            history = {t["id"]: t for t in all_tasks(leader, "engine-gone")}
            for task_id in lost:  # service ps: failed, killed by the engine's shutdown, and replaced
                old = history[task_id]
                assert (old["state"], old["desired_state"]) == ("failed", "shutdown"), old
                assert old["exit_code"] in (137, 143) and "task exited with code" in old["error"], old
            assert len(history) == 3 + len(lost), history
            assert not lost & {t["id"] for t in after} and {t["id"] for t in before} - lost <= {
                t["id"] for t in after
            }
            ps = cli(sb, leader.name, "service", "ps", "engine-gone", "--no-trunc")
            assert ps.returncode == 0 and "task exited with code" in ps.stdout.decode(), ps
            # the engine restarted the container that is not p2porch's (its own policy): left alone
            state = docker(victim.dockerd, "inspect", "-f", "{{.Id}} {{.State.Running}}", foreign)
            assert state.stdout.decode().split() == [foreign_id, "true"]
    finally:
        docker(victim.dockerd, "rm", "-f", foreign, check=False)


def test_containers_removed_or_restarted_by_hand_while_the_daemon_is_away_are_its_tasks_failures(cluster):
    sb, nodes = cluster
    victim, leader = victim_of(nodes)
    with service(sb, nodes, "by-hand", "--replicas", "6", *FAST_STOP, *SLEEP):
        before = back_to(leader, nodes, "by-hand", 6, set())
        mine = sorted((t for t in before if t["node"] == victim.name), key=lambda t: t["slot"])
        assert len(mine) == 2, before
        removed, restarted = mine
        ids = {c["Config"]["Labels"]["p2porch.task-id"]: c["Id"] for c in containers(victim, "by-hand")}
        try:
            stop_daemon(victim)
            wait_for(lambda: held(leader, victim), 30, "held ready (restarting)")
            docker(victim.dockerd, "rm", "-f", ids[removed["id"]])
            docker(victim.dockerd, "restart", "-t", "1", ids[restarted["id"]])
        finally:
            started = start_daemon(sb, nodes, victim)
        lost = {removed["id"], restarted["id"]}
        after = back_to(leader, nodes, "by-hand", 6, lost)
        back_s = time.monotonic() - started
        print(
            f"\na container removed and one restarted by hand: every slot running {back_s:.1f} s after start"
        )
        history = {t["id"]: t for t in all_tasks(leader, "by-hand")}
        gone, again = history[removed["id"]], history[restarted["id"]]
        assert (gone["state"], gone["desired_state"]) == ("failed", "shutdown"), gone
        assert "container no longer exists" in gone["error"], gone
        assert (again["state"], again["desired_state"]) == ("failed", "shutdown"), again
        assert "started again outside p2porch" in again["error"], again
        assert len(history) == 8, history  # each lost task replaced once, nothing else
        assert {t["slot"] for t in after} == {t["slot"] for t in before}
        kept = {t["id"] for t in before} - lost
        assert kept <= {t["id"] for t in after}  # the untouched tasks: adopted, not replaced
        # the restarted container went with its task; the other tasks kept theirs
        wait_for(
            lambda: not docker(victim.dockerd, "ps", "-aq", "--filter", f"id={ids[restarted['id']]}").stdout,
            30,
            "the restarted container removed",
        )
        ps = cli(sb, leader.name, "service", "ps", "by-hand", "--no-trunc").stdout.decode()
        assert "started again outside p2porch" in ps and "container no longer exists" in ps, ps


def test_a_dockerd_restart_under_the_running_daemon_is_seen_and_its_tasks_replaced(cluster):
    """The daemon runs on: the engine's event stream ends with dockerd, the agent inspects every container
    afresh once it answers again, and the node's killed task is replaced (failed as the agent saw it, or
    shut down by the leader if the engine stayed away its ``engine_down_grace_s``)."""
    sb, nodes = cluster
    victim, leader = victim_of(nodes)
    with service(sb, nodes, "engine-bounce", "--replicas", "3", *FAST_STOP, *SLEEP):
        before = back_to(leader, nodes, "engine-bounce", 3, set())
        lost = {t["id"] for t in before if t["node"] == victim.name}
        assert len(lost) == 1, before
        restart_engine(sb, victim)
        answered = time.monotonic()
        after = back_to(leader, nodes, "engine-bounce", 3, lost)
        back_s = time.monotonic() - answered
        print(f"\ndockerd restarted under the daemon: every slot running {back_s:.1f} s after it answered")
        history = {t["id"]: t for t in all_tasks(leader, "engine-bounce")}
        for task_id in lost:
            assert history[task_id]["state"] in ("failed", "shutdown"), history[task_id]
            assert history[task_id]["desired_state"] == "shutdown", history[task_id]
        assert len(history) == 3 + len(lost), history
        assert {t["id"] for t in before} - lost <= {t["id"] for t in after}
