"""A daemon restart is not a node failure (sandbox ``p7rs``, 10.71.7.0/24, 3 nodes).

A daemon stopped with SIGTERM (the systemd unit's stop/restart, an upgrade) announces in gossip that it
restarts: its node stays ``ready (restarting)`` with its tasks for ``[scheduler] restart_grace_s`` (30 s),
takes no new task, and its daemon back adopts its containers; every node's published port keeps serving
meanwhile, its own included (the others keep it as an overlay peer while held). A ``kill -9`` announces
nothing: the node goes down and its task moves, as before (leader/restart_hold.py,
docs/failure-model.md). Measured times are printed (``pytest -s``).
"""

from __future__ import annotations

import os
import signal
import threading
import time
import urllib.request
from collections import Counter

import httpx
import pytest
from clusterkit import (
    FAST_STOP,
    IMAGE,
    all_tasks,
    cli,
    cluster_fixture,
    containers,
    dig_a,
    leader_node,
    node_row,
    running_tasks,
    service,
    tasks,
    wait_for,
)

from p2porch.sandbox.sandbox import Sandbox, SandboxNode
from p2porch.sandbox.system import pid_alive, read_pid

cluster = cluster_fixture("p7rs", "10.71.7.0/24")

WHO = (
    "mkdir -p /www/cgi-bin && printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\n"
    "echo $P2PORCH_TASK_ID $P2PORCH_NODE\\n' > /www/cgi-bin/who && chmod +x /www/cgi-bin/who "
    "&& exec httpd -f -p 80 -h /www"
)
SERVE = (IMAGE, "sh", "-c", WHO)


class Clients:
    """A client loop per node on a published port (new connection per request, ~20 a second each); every
    outcome in ``done``: its monotonic time, the node asked and the task that answered (None: failed)."""

    def __init__(self, nodes: list[SandboxNode], port: int) -> None:
        self.ok, self.failed = Counter[str](), Counter[str]()
        self.errors: list[str] = []
        self.done: list[tuple[float, str, str | None]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, args=(n, port), daemon=True) for n in nodes]

    def _loop(self, node: SandboxNode, port: int) -> None:
        while not self._stop.is_set():
            try:
                with urllib.request.urlopen(f"http://{node.address}:{port}/cgi-bin/who", timeout=3) as r:
                    who = r.read().decode().split()
                self.ok[node.name] += 1
                self.done.append((time.monotonic(), node.name, who[0] if who else ""))
            except OSError as exc:
                self.failed[node.name] += 1
                self.done.append((time.monotonic(), node.name, None))
                self.errors.append(f"{time.strftime('%H:%M:%S')} {node.name}: {exc}")
            time.sleep(0.05)

    def served_by(self, task_id: str, since: float, until: float) -> int:
        """Requests ``task_id`` answered between the two monotonic times."""
        return sum(1 for at, _, task in self.done if task == task_id and since <= at <= until)

    def __enter__(self) -> Clients:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)


def answers(servers: list[SandboxNode]) -> set[str]:
    """``tasks.held.p2p`` as every server answers it, when they all agree (else an empty set)."""
    found = {frozenset(dig_a(s.address, "tasks.held.p2p")) for s in servers}
    return set(found.pop()) if len(found) == 1 else set()


def container_ids(nodes: list[SandboxNode], name: str) -> dict[str, set[str]]:
    return {n.name: {c["Id"] for c in containers(n, name) if c["State"]["Running"]} for n in nodes}


def stop_daemon(node: SandboxNode, sig: int) -> float:
    """Signal ``node``'s p2porch daemon (dockerd keeps running); the monotonic time once it is gone."""
    pid = read_pid(node.p2porch_pidfile)
    assert pid is not None and pid_alive(pid)
    os.kill(pid, sig)
    wait_for(lambda: not pid_alive(pid), 30, f"daemon {node.name} gone")
    if sig == signal.SIGKILL:  # a killed daemon leaves its pid file behind
        os.unlink(node.p2porch_pidfile)
    return time.monotonic()


def start_again(sb: Sandbox, nodes: list[SandboxNode], node: SandboxNode) -> None:
    if (pid := read_pid(node.p2porch_pidfile)) is not None and not pid_alive(pid):
        os.unlink(node.p2porch_pidfile)
    sb.up(len(nodes))


def statuses(via: SandboxNode, name: str) -> tuple[str, str]:
    """``name``'s status text and gossip state as ``via`` shows them (("?", "?") when it does not answer:
    a leader election may be under way)."""
    try:
        row = node_row(via, name)
    except (httpx.HTTPError, OSError):
        return "?", "?"
    return row["status_text"], row["gossip"]


@pytest.mark.parametrize("whose", ["follower", "leader"])
def test_a_sigterm_restart_keeps_every_task_and_the_other_ports_serve(cluster, whose):
    """SIGTERM, back after ~10 s: the same task ids and container ids, 0 failed requests on every node's
    published port, the restarted node's own included (a commit while gossip calls it dead makes the
    others' overlay look at it again: it stays their peer while held); ``ready (restarting)`` meanwhile
    (even once gossip declared it dead). The leader's daemon too: the next leader records its hold."""
    sb, nodes = cluster
    leader = leader_node(nodes)
    victim = leader if whose == "leader" else next(n for n in reversed(nodes) if n is not leader)
    others = [n for n in nodes if n is not victim]
    leader = others[0] if victim is leader else leader  # the one asked (a new leader is elected meanwhile)
    with service(sb, nodes, "held", "--replicas", "3", "--publish", "8090:80", *FAST_STOP, *SERVE):
        before = running_tasks(nodes[0], "held", 3)
        assert sorted(t["node"] for t in before) == ["n1", "n2", "n3"]
        ids = container_ids(nodes, "held")
        assert all(len(found) == 1 for found in ids.values()), ids
        all_addrs = {t["address"] for t in before}
        wait_for(lambda: answers(others) == all_addrs, 10, "every task in the DNS answers")
        seen: Counter[tuple[str, str]] = Counter()
        try:
            with Clients(others, 8090) as clients, Clients([victim], 8090) as own:
                time.sleep(2)
                started = time.monotonic()
                gone = stop_daemon(victim, signal.SIGTERM)
                restarting = wait_for(
                    lambda: statuses(leader, victim.name)[0] == "ready (restarting)", 10, "restarting"
                )
                restarting_s = time.monotonic() - started
                # its task stays in the DNS answers while held, as in the VIP and ingress backends: its
                # container runs on (member/held.py; tests/integration/test_held_traffic.py samples it)
                assert answers(others) == all_addrs
                dead_s = None
                while time.monotonic() - gone < 10:  # away ~10 s: gossip declares it dead meanwhile
                    status = statuses(leader, victim.name)
                    seen[status] += 1
                    if status[1] == "dead" and dead_s is None:
                        dead_s = time.monotonic() - gone
                        # a commit while it is dead: every other node's overlay looks at it again (they
                        # dropped it as a peer then, and each connection its own port DNATed to them hung)
                        label = cli(
                            sb, leader.name, "node", "update", "--label-add", f"probe-{whose}=1", leader.name
                        )
                        assert label.returncode == 0, label.stderr
                    time.sleep(0.3)
                away_s = time.monotonic() - gone
                start_again(sb, nodes, victim)
                back_at = time.monotonic()
                wait_for(lambda: statuses(leader, victim.name) == ("ready", "alive"), 60, "back and released")
                released_s = time.monotonic() - back_at
                wait_for(lambda: answers(others) == all_addrs, 10, "every task in the DNS answers")
                time.sleep(2)
        finally:
            if read_pid(victim.p2porch_pidfile) is None:
                start_again(sb, nodes, victim)
        after = running_tasks(nodes[0], "held", 3)
        print(
            f"SIGTERM of {victim.name}'s daemon ({whose}): ready (restarting) {restarting_s:.1f} s after the "
            "signal; "
            f"stopped in {gone - started:.1f} s; dead in gossip {dead_s} s after; away {away_s:.1f} s; "
            f"released {released_s:.1f} s after its start; statuses seen {dict(seen)}; "
            f"requests ok {dict(clients.ok)} failed {dict(clients.failed)} {clients.errors[:5]}; on its "
            f"own port ok {dict(own.ok)} failed {dict(own.failed)} {own.errors[:5]}"
        )
        assert restarting
        assert dead_s is not None, seen  # gossip did declare it dead: the hold is what kept it
        assert all(status == "ready (restarting)" for status, _ in seen), seen
        assert [t["id"] for t in after] == [t["id"] for t in before]
        assert len(all_tasks(nodes[0], "held")) == 3  # no task replaced, none failed
        assert container_ids(nodes, "held") == ids
        assert sum(clients.failed.values()) == 0, (clients.failed, clients.errors[:10])
        assert all(clients.ok[n.name] > 50 for n in others), clients.ok
        # its own published port too: its kernel rules DNAT to the tasks elsewhere meanwhile, and the
        # other nodes keep it as an overlay peer while it is held (member/views.overlay_peer)
        assert sum(own.failed.values()) == 0, (own.failed, own.errors[:10])
        assert own.ok[victim.name] > 50, own.ok


def watch_away(
    via: SandboxNode,
    victim: SandboxNode,
    name: str,
    old_id: str,
    gone: float,
    for_s: float,
    seen: Counter[str],
) -> tuple[float | None, float | None]:
    """Sample ``victim``'s status (counted in ``seen``) for ``for_s`` after ``gone``: how long after it the
    node was first ``down``, and its task ``old_id`` replaced by a running one (None: not seen)."""
    down_s = replaced_s = None
    while time.monotonic() - gone < for_s:
        status = statuses(via, victim.name)[0]
        seen[status] += 1
        if status == "down" and down_s is None:
            down_s = time.monotonic() - gone
        current = {t["id"] for t in tasks(via, name) if t["state"] == "running"}
        if replaced_s is None and old_id not in current and len(current) == 3:
            replaced_s = time.monotonic() - gone
        time.sleep(0.3)
    return down_s, replaced_s


def test_a_killed_daemon_announces_nothing_and_its_task_moves(cluster):
    """kill -9 of the daemon alone, away ~15 s: no ``restarting``, the node goes down and its task is
    replaced on the others (as before); back, it is ready and its superseded container stops."""
    sb, nodes = cluster
    leader = leader_node(nodes)
    victim = next(n for n in reversed(nodes) if n is not leader)
    with service(sb, nodes, "moved", "--replicas", "3", "--publish", "8091:80", *FAST_STOP, *SERVE):
        before = running_tasks(nodes[0], "moved", 3)
        old = next(t for t in before if t["node"] == victim.name)
        seen: Counter[str] = Counter()
        try:
            gone = stop_daemon(victim, signal.SIGKILL)
            down_s, replaced_s = watch_away(leader, victim, "moved", old["id"], gone, 15, seen)
        finally:
            start_again(sb, nodes, victim)
        wait_for(lambda: statuses(leader, victim.name) == ("ready", "alive"), 60, "back")
        print(
            f"kill -9 of {victim.name}'s daemon: down {down_s} s after, its task replaced (running) "
            f"{replaced_s} s after; statuses seen {dict(seen)}"
        )
        assert "ready (restarting)" not in seen, seen
        assert down_s is not None and replaced_s is not None, seen
        wait_for(
            lambda: not container_ids([victim], "moved")[victim.name], 60, "superseded container stopped"
        )


def test_a_restart_not_back_within_the_grace_is_down_and_its_task_moves(cluster, monkeypatch):
    """The daemon runs with ``restart_grace_s = 8``; SIGTERM and away ~16 s: ``ready (restarting)``, then
    down once the hold ran out, its task replaced; back, its superseded container stops."""
    sb, nodes = cluster
    leader = leader_node(nodes)
    victim = next(n for n in reversed(nodes) if n is not leader)
    with service(sb, nodes, "late", "--replicas", "3", "--publish", "8092:80", *FAST_STOP, *SERVE):
        before = running_tasks(nodes[0], "late", 3)
        old = next(t for t in before if t["node"] == victim.name)
        seen: Counter[str] = Counter()
        monkeypatch.setenv("P2PORCH_SCHEDULER_RESTART_GRACE_S", "8")
        try:
            stop_daemon(victim, signal.SIGTERM)
            start_again(sb, nodes, victim)  # now with the short grace
            wait_for(lambda: statuses(leader, victim.name) == ("ready", "alive"), 60, "back with 8 s")
            gone = stop_daemon(victim, signal.SIGTERM)
            down_s, replaced_s = watch_away(leader, victim, "late", old["id"], gone, 16, seen)
        finally:
            monkeypatch.delenv("P2PORCH_SCHEDULER_RESTART_GRACE_S")
            start_again(sb, nodes, victim)
        wait_for(lambda: statuses(leader, victim.name) == ("ready", "alive"), 60, "back")
        print(
            f"SIGTERM of {victim.name}'s daemon, grace 8 s, away 16 s: down {down_s} s after the stop, its "
            f"task replaced (running) {replaced_s} s after; statuses seen {dict(seen)}"
        )
        assert seen["ready (restarting)"] > 0, seen
        assert down_s is not None and 7 <= down_s <= 12, seen
        assert replaced_s is not None and replaced_s >= down_s, (replaced_s, down_s)
        wait_for(lambda: not container_ids([victim], "late")[victim.name], 60, "superseded container stopped")
