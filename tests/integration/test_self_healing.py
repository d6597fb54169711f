"""Self-healing and zero downtime (issue 7) on a real 3-node sandbox cluster (``p2sh``, 10.65.0.0/24).

Faults are real: ``kill -9`` of a node's p2porch daemon and its dockerd, containers that exit or fail
their health check, an underlay link cut. Each test creates its own services and removes them (and
brings killed nodes back) even when it fails, so the next test starts from a full, empty cluster.
Measured times are printed (``pytest -s`` shows them); bounds are generous so CI stays repeatable,
the benchmark ``bench/failover.py`` reports the figures.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator

import clusterkit
from clusterkit import IMAGE, api, api_get, cli, cli_json, cluster_fixture, kill_node, revive

from p2porch.errors import SandboxError
from p2porch.sandbox.dockerd import docker
from p2porch.sandbox.sandbox import Sandbox, SandboxNode
from p2porch.sandbox.system import find_program

NAMES = ("n1", "n2", "n3")
SUBNET = "10.65.0.0/24"
# busybox httpd as PID 1 ignores SIGTERM: a short grace keeps stops fast.
FAST_STOP = ("--stop-grace-period", "1s")
# A page that names the version (env V) and the node, served on port 80.
SERVE = 'mkdir -p /www && echo "v=$V node=$P2PORCH_NODE" > /www/index.html && exec httpd -f -p 80 -h /www'


# ----------------------------------------------------------------------------- helpers
def wait_for(predicate, timeout_s: float = 60.0, what: str = "condition", interval_s: float = 0.2):
    return clusterkit.wait_for(
        predicate, timeout_s, what, interval_s, retry_on=(SandboxError, AssertionError)
    )


def all_tasks(node: SandboxNode, service: str) -> list[dict]:
    """Every task record of ``service`` (history included), as ``service ps --json`` shows them."""
    return api_get(node, f"/services/{service}/tasks", all="true")


def tasks(node: SandboxNode, service: str) -> list[dict]:
    """Tasks of ``service`` that should run (no history)."""
    return api_get(node, f"/services/{service}/tasks", all="false")


def running_tasks(
    node: SandboxNode, service: str, count: int, timeout_s: float = 60.0, *, avoid: str = ""
) -> list[dict]:
    """Wait until exactly ``count`` tasks should run and all run with an address (none on the node
    named ``avoid``); return them by slot."""

    def done():
        current = tasks(node, service)
        ok = len(current) == count and all(
            t["state"] == "running" and t["address"] and t["node"] != avoid for t in current
        )
        return sorted(current, key=lambda t: t["slot"]) if ok else None

    return wait_for(done, timeout_s, f"{count} running tasks of {service}")


def containers(node: SandboxNode, service: str, *, include_stopped: bool = False) -> list[dict]:
    """``docker inspect`` of the containers labelled with ``service`` on one node's engine."""
    argv = ["ps", "-q", "--no-trunc", "--filter", f"label=p2porch.service={service}"]
    if include_stopped:
        argv.insert(1, "-a")
    ids = docker(node.dockerd, *argv, timeout_s=20).stdout.decode().split()
    if not ids:
        return []
    found = docker(node.dockerd, "inspect", *ids, check=False, timeout_s=20).stdout
    return json.loads(found) if found.strip() else []


def running_containers(nodes: list[SandboxNode], service: str) -> dict[str, int]:
    """Running containers of ``service`` per node, straight from each node's engine."""
    out = {}
    for n in nodes:
        argv = ["ps", "-q", "--filter", f"label=p2porch.service={service}", "--filter", "status=running"]
        out[n.name] = len(docker(n.dockerd, *argv, timeout_s=20).stdout.split())
    return out


def dig_a(server: str, name: str) -> set[str]:
    """``dig @server name +short`` from the host namespace (the underlay is reachable from it)."""
    result = subprocess.run(
        ["dig", "+time=1", "+tries=1", f"@{server}", name, "+short"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    if result.returncode != 0:
        raise OSError(f"dig @{server} {name}: {result.stdout.strip()} {result.stderr.strip()}")
    return set(result.stdout.split())


def http_get(node: SandboxNode, address: str) -> str | None:
    """GET http://ADDRESS/ from inside ``node``'s namespace (overlay routes live there); None on failure."""
    result = subprocess.run(
        [
            find_program("nsenter") or "nsenter",
            f"--net=/var/run/netns/{node.netns}",
            "timeout",
            "3",
            find_program("busybox") or "busybox",
            "wget",
            "-q",
            "-O-",
            f"http://{address}/",
        ],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return result.stdout.strip() if result.returncode == 0 else None


def leader_addr(node: SandboxNode) -> str | None:
    return api_get(node, "/status")["cluster"].get("leader")


def node_at(nodes: list[SandboxNode], raft_addr: str) -> SandboxNode:
    host = raft_addr.rsplit(":", 1)[0]
    return next(n for n in nodes if n.address == host)


def node_row(via: SandboxNode, name: str) -> dict:
    return next(r for r in api_get(via, "/nodes") if r["name"] == name)


def remove_and_wait(sb: Sandbox, nodes: list[SandboxNode], service: str) -> None:
    """Remove ``service`` (if it exists) and wait until no node has any of its containers."""
    with api(nodes[0]) as client:
        if client.post(f"/services/{service}/scale", json={"replicas": 0}).status_code == 200:
            wait_for(
                lambda: not any(containers(n, service, include_stopped=True) for n in nodes),
                what=f"{service} scaled to 0",
            )
        response = client.delete(f"/services/{service}")
        assert response.status_code in (200, 404), response.text
    wait_for(
        lambda: not any(containers(n, service, include_stopped=True) for n in nodes),
        what=f"every container of {service} removed",
    )


@contextlib.contextmanager
def service(sb: Sandbox, nodes: list[SandboxNode], name: str, *args: str) -> Iterator[dict]:
    """``service create --name NAME ARGS`` for the duration of the block, removed afterwards. DNS round robin
    (``--endpoint-mode dnsrr``): these tests read the task set from a name's answers (a VIP hides it)."""
    try:
        created = cli_json(
            sb, "n1", "service", "create", "-d", "--name", name, "--endpoint-mode", "dnsrr", *args
        )
        assert created["name"] == name
        yield created
    finally:
        remove_and_wait(sb, nodes, name)


@contextlib.contextmanager
def killed(sb: Sandbox, nodes: list[SandboxNode], node: SandboxNode) -> Iterator[float]:
    """Kill ``node`` for the duration of the block (yields the kill time); always revived afterwards."""
    try:
        yield kill_node(node)
    finally:
        revive(sb, nodes, node)


def underlay(node: SandboxNode, state: str) -> None:
    """Set the root-side veth of ``node``'s underlay link up or down (a cable pulled and plugged)."""
    subprocess.run(["ip", "link", "set", node.host_veth, state], check=True, timeout=10)


cluster = cluster_fixture("p2sh", SUBNET)  # sb.down also removes a link a failed test left down


def live_dns_agrees(
    servers: list[SandboxNode], name: str, via: SandboxNode, service_name: str, replicas: int
) -> set[str] | None:
    """The address set when every server answers exactly the running tasks (``replicas`` of them)."""
    current = tasks(via, service_name)
    if len(current) != replicas or not all(t["state"] == "running" and t["address"] for t in current):
        return None
    if any(t["node"] not in {s.name for s in servers} for t in current):
        return None
    expected = {t["address"] for t in current}
    if all(dig_a(s.address, name) == expected for s in servers):
        return expected
    return None


# ----------------------------------------------------------------------------- restart policy
def test_exited_container_is_replaced_per_on_failure_policy(cluster):
    sb, nodes = cluster
    args = ["--restart-condition", "on-failure", "--restart-delay", "1s", *FAST_STOP]
    with service(sb, nodes, "crash", *args, IMAGE, "sh", "-c", "sleep 2; exit 3"):
        created = time.monotonic()

        def replaced():
            history = [t for t in all_tasks(nodes[0], "crash") if t["slot"] == 1]
            failed = [t for t in history if t["state"] == "failed"]
            return history if failed and len(history) >= 2 else None

        history = wait_for(replaced, 60, "a replacement task for the failed crash.1")
        print(f"crash.1: replaced {time.monotonic() - created:.1f} s after create (exit after 2 s)")
        failed = [t for t in history if t["state"] == "failed"]
        assert len({t["id"] for t in history}) == len(history) >= 2
        for t in failed:
            assert t["exit_code"] == 3, t
            assert "code 3" in t["error"], t
            assert t["desired_state"] == "shutdown", t  # superseded by its replacement
        assert sum(1 for t in history if t["desired_state"] == "running") == 1
        table = cli(sb, "n2", "service", "ps", "crash").stdout.decode()
        assert "failed" in table and "task exited with code 3" in table, table


def test_restart_condition_none_and_a_clean_exit_under_on_failure_are_not_replaced(cluster):
    sb, nodes = cluster
    with (
        service(sb, nodes, "once", "--restart-condition", "none", *FAST_STOP, IMAGE, "sh", "-c", "exit 1"),
        service(sb, nodes, "done", "--restart-condition", "on-failure", *FAST_STOP, IMAGE, "true"),
    ):

        def ended(name: str, state: str):
            history = all_tasks(nodes[0], name)
            return history if any(t["state"] == state for t in history) else None

        once = wait_for(lambda: ended("once", "failed"), 60, "once.1 failed")
        done = wait_for(lambda: ended("done", "complete"), 60, "done.1 complete")
        assert len(once) == 1 and once[0]["exit_code"] == 1, once
        assert len(done) == 1 and done[0]["exit_code"] == 0, done
        # Barrier instead of a sleep: a service that fails after these two, with the same default restart
        # delay (5 s), gets its replacement; by then the leader has planned past their deadline too.
        with service(sb, nodes, "later", "--restart-condition", "on-failure", *FAST_STOP, IMAGE, "false"):
            wait_for(lambda: len(all_tasks(nodes[0], "later")) >= 2, 60, "later.1 replaced after its delay")
        after_once, after_done = all_tasks(nodes[0], "once"), all_tasks(nodes[0], "done")
        assert [t["id"] for t in after_once] == [once[0]["id"]], after_once
        assert [t["id"] for t in after_done] == [done[0]["id"]], after_done
        assert after_once[0]["state"] == "failed" and after_done[0]["state"] == "complete"
        assert all(not containers(n, "once") and not containers(n, "done") for n in nodes)


# ----------------------------------------------------------------------------- health checks
HEALTH = ("--health-cmd", "test -f /tmp/ok", "--health-interval", "1s", "--health-retries", "2")
# Slot 1 turns unhealthy after a few seconds (its marker file goes away); slot 2 stays healthy.
SICKEN = 'touch /tmp/ok; if [ "$P2PORCH_SLOT" = 1 ]; then (sleep 4; rm /tmp/ok) & fi; ' + SERVE


def test_unhealthy_task_leaves_dns_answers(cluster):
    sb, nodes = cluster
    with service(sb, nodes, "sick", "--replicas", "2", *HEALTH, *FAST_STOP, IMAGE, "sh", "-c", SICKEN):
        first = {t["slot"]: t for t in running_tasks(nodes[0], "sick", 2)}
        both = {first[1]["address"], first[2]["address"]}
        wait_for(lambda: dig_a(nodes[2].address, "sick.p2p") == both, 30, "both sick tasks in DNS")
        started = time.monotonic()

        def unhealthy_gone():
            by_id = {t["id"]: t for t in all_tasks(nodes[0], "sick")}
            answers = [dig_a(n.address, "sick.p2p") for n in nodes]
            return by_id[first[1]["id"]]["health"] == "unhealthy" and all(
                first[1]["address"] not in a and first[2]["address"] in a for a in answers
            )

        wait_for(unhealthy_gone, 60, "the unhealthy task out of every node's DNS answers")
        print(f"sick.1 unhealthy and out of DNS {time.monotonic() - started:.1f} s after both were in it")
        table = cli(sb, "n3", "service", "ps", "sick").stdout.decode()
        assert "(unhealthy)" in table, table


def test_unhealthy_task_is_replaced(cluster):
    sb, nodes = cluster
    with service(sb, nodes, "sick2", "--replicas", "2", *HEALTH, *FAST_STOP, IMAGE, "sh", "-c", SICKEN):
        first = {t["slot"]: t for t in running_tasks(nodes[0], "sick2", 2)}
        wait_for(
            lambda: (
                {t["id"]: t for t in all_tasks(nodes[0], "sick2")}[first[1]["id"]]["health"] == "unhealthy"
            ),
            60,
            "sick2.1 unhealthy",
        )
        became_unhealthy = time.monotonic()

        def replaced():
            slot1 = [t for t in tasks(nodes[0], "sick2") if t["slot"] == 1]
            return (
                len(slot1) == 1
                and slot1[0]["id"] != first[1]["id"]
                and slot1[0]["state"] == "running"
                and slot1[0]["address"] in dig_a(nodes[0].address, "sick2.p2p")
            )

        wait_for(replaced, 30, "a healthy replacement for sick2.1 in DNS")
        print(f"sick2.1 replaced {time.monotonic() - became_unhealthy:.1f} s after turning unhealthy")
        old = {t["id"]: t for t in all_tasks(nodes[0], "sick2")}[first[1]["id"]]
        assert old["desired_state"] == "shutdown"


# ----------------------------------------------------------------------------- availability
class Sampler:
    """Samples a service's running containers on every node's engine in a thread (min and max seen)."""

    def __init__(self, nodes: list[SandboxNode], service_name: str) -> None:
        self.nodes, self.service = nodes, service_name
        self.samples: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(SandboxError, OSError):
                self.samples.append(sum(running_containers(self.nodes, self.service).values()))

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)


def test_drain_moves_tasks_without_dropping_below_replicas_pause_and_active(cluster):
    sb, nodes = cluster
    try:
        with service(sb, nodes, "dr", "--replicas", "3", *FAST_STOP, IMAGE, "sleep", "100000"):
            first = running_tasks(nodes[0], "dr", 3)
            assert Counter(t["node"] for t in first) == {"n1": 1, "n2": 1, "n3": 1}

            # pause: n1 keeps its task, new tasks go elsewhere
            assert cli(sb, "n2", "node", "update", "n1", "--availability", "pause").returncode == 0
            assert cli(sb, "n1", "service", "scale", "-d", "dr=6").returncode == 0
            six = running_tasks(nodes[0], "dr", 6)
            on_n1 = [t for t in six if t["node"] == "n1"]
            assert [t["id"] for t in on_n1] == [t["id"] for t in first if t["node"] == "n1"], six
            assert Counter(t["node"] for t in six)["n1"] == 1

            # drain n2 with n1 active again: its tasks move, never fewer than 6 running
            assert cli(sb, "n3", "node", "update", "n1", "--availability", "active").returncode == 0
            with Sampler(nodes, "dr") as sampler:
                started = time.monotonic()
                assert cli(sb, "n3", "node", "update", "n2", "--availability", "drain").returncode == 0

                def drained():
                    current = tasks(nodes[0], "dr")
                    counts = running_containers(nodes, "dr")
                    return (
                        len(current) == 6
                        and all(t["state"] == "running" and t["node"] != "n2" for t in current)
                        and counts["n2"] == 0
                        and sum(counts.values()) == 6
                    )

                wait_for(drained, 60, "dr drained off n2")
                drain_s = time.monotonic() - started
                time.sleep(0.5)
            print(
                f"drain: n2 empty after {drain_s:.1f} s; running containers sampled "
                f"{len(sampler.samples)} times, min {min(sampler.samples)}, max {max(sampler.samples)}"
            )
            assert len(sampler.samples) >= 5
            assert min(sampler.samples) >= 6, sampler.samples
            assert node_row(nodes[0], "n2")["availability"] == "drain"

            # active again: n2 takes new placements
            assert cli(sb, "n1", "node", "update", "n2", "--availability", "active").returncode == 0
            assert cli(sb, "n1", "service", "scale", "-d", "dr=9").returncode == 0
            nine = running_tasks(nodes[0], "dr", 9)
            per_node = Counter(t["node"] for t in nine)
            print(f"after active + scale 9: {dict(per_node)}")
            assert per_node["n2"] >= 1, per_node
            assert running_containers(nodes, "dr")["n2"] == per_node["n2"]
    finally:
        for name in NAMES:
            cli(sb, "n1", "node", "update", name, "--availability", "active")


def test_rebalance_after_a_node_returns_opt_in_and_on_request(cluster):
    """A node dies and comes back: ``--rebalance`` services move tasks back onto it by themselves,
    start-first (never fewer running containers than replicas); others move on ``service rebalance``."""
    sb, nodes = cluster
    leader = node_at(nodes, leader_addr(nodes[0]))
    victim = next(n for n in reversed(nodes) if n is not leader)
    with (
        service(sb, nodes, "rb", "--replicas", "3", "--rebalance", *FAST_STOP, IMAGE, "sleep", "100000"),
        service(sb, nodes, "mr", "--replicas", "3", *FAST_STOP, IMAGE, "sleep", "100000"),
    ):
        for name in ("rb", "mr"):
            assert Counter(t["node"] for t in running_tasks(nodes[0], name, 3)) == {"n1": 1, "n2": 1, "n3": 1}
        live = [n for n in nodes if n is not victim]
        with Sampler(nodes, "rb") as sampler:
            with killed(sb, nodes, victim):
                for name in ("rb", "mr"):
                    running_tasks(live[0], name, 3, timeout_s=45, avoid=victim.name)
            returned_at, since = time.monotonic(), len(sampler.samples)

            def spread(name: str) -> bool:
                current = tasks(nodes[0], name)
                per_node = Counter(t["node"] for t in current if t["state"] == "running")
                return (
                    per_node == {"n1": 1, "n2": 1, "n3": 1}
                    and running_containers(nodes, name)[victim.name] == 1
                )

            wait_for(lambda: spread("rb"), 90, "rb rebalanced onto the returned node")
            rebalanced_s = time.monotonic() - returned_at
            time.sleep(0.5)
        print(
            f"rebalance: rb spread again {rebalanced_s:.1f} s after {victim.name} returned; "
            f"running containers sampled {len(sampler.samples) - since} times since, "
            f"min {min(sampler.samples[since:])}"
        )
        assert len(sampler.samples) - since >= 5
        assert min(sampler.samples[since:]) >= 3, sampler.samples[since:]
        moved = [t for t in all_tasks(nodes[0], "rb") if "rebalance" in t["message"]]
        assert len(moved) == 1 and moved[0]["desired_state"] == "shutdown", moved

        # without opt-in nothing moves by itself: the leader rounds that moved rb (start the replacement,
        # see it run, stop the old task) planned mr on the same states ...
        per_node = Counter(t["node"] for t in tasks(nodes[0], "mr"))
        assert per_node[victim.name] == 0 and sum(per_node.values()) == 3, per_node
        assert cli_json(sb, "n1", "service", "inspect", "mr")["rebalance"] == "off"
        # ... until the operator asks; the request clears itself once the service is balanced
        with Sampler(nodes, "mr") as sampler:
            requested = cli_json(sb, live[0].name, "service", "rebalance", "mr")
            assert requested["rebalance"] == "requested"
            wait_for(lambda: spread("mr"), 60, "mr rebalanced on request")
            wait_for(
                lambda: cli_json(sb, "n1", "service", "inspect", "mr")["rebalance"] == "off", 30, "cleared"
            )
        assert min(sampler.samples) >= 3, sampler.samples
        bad = cli(sb, "n1", "service", "rebalance", "nosuch")
        assert bad.returncode != 0 and b"nosuch" in bad.stderr


# ----------------------------------------------------------------------------- rolling update
class Probe:
    """Queries DNS (dig) and HTTP (wget from n1's namespace to every answered address) in a loop.

    Each round records (time, answers, pages fetched); a round with no answer or no page is an outage.
    """

    def __init__(self, via: SandboxNode, dns_server: str, name: str) -> None:
        self.via, self.dns_server, self.name = via, dns_server, name
        self.rounds: list[tuple[float, set[str], list[str]]] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                answers = dig_a(self.dns_server, self.name)
            except (OSError, subprocess.TimeoutExpired) as exc:
                self.errors.append(str(exc))
                answers = set()
            pages = [p for p in (http_get(self.via, a) for a in sorted(answers)) if p]
            self.rounds.append((time.monotonic(), answers, pages))

    def outages(self) -> list[tuple[float, set[str], list[str]]]:
        return [r for r in self.rounds if not r[1] or not r[2]]

    def __enter__(self) -> Probe:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)


def pages_of(node: SandboxNode, service_name: str, count: int) -> list[str]:
    """The pages of the running tasks, fetched by address (only when exactly ``count`` tasks run)."""
    current = tasks(node, service_name)
    if len(current) != count or not all(t["state"] == "running" and t["address"] for t in current):
        return []
    return [http_get(node, t["address"]) or "" for t in current]


def test_rolling_update_start_first_never_leaves_zero_healthy_tasks_and_rollback(cluster):
    sb, nodes = cluster
    health = ("--health-cmd", "test -f /www/index.html", "--health-interval", "1s", "--health-retries", "1")
    order = ("--update-order", "start-first", "--update-parallelism", "1")
    args = ["--replicas", "2", "--env", "V=1", *health, *order, *FAST_STOP, IMAGE, "sh", "-c", SERVE]
    with service(sb, nodes, "roll", *args):
        running_tasks(nodes[0], "roll", 2)
        wait_for(lambda: len(dig_a(nodes[0].address, "roll.p2p")) == 2, 30, "both roll tasks healthy in DNS")

        def all_version(v: str) -> bool:
            pages = pages_of(nodes[0], "roll", 2)
            containers_now = sum(running_containers(nodes, "roll").values())
            answers = dig_a(nodes[0].address, "roll.p2p")
            return (
                len(pages) == 2
                and all(p.startswith(f"v={v} ") for p in pages)
                and containers_now == 2
                and answers == {t["address"] for t in tasks(nodes[0], "roll")}
            )

        with Probe(nodes[0], nodes[0].address, "roll.p2p") as probe:
            time.sleep(1)
            started = time.monotonic()
            result = cli(sb, "n2", "service", "update", "-d", "roll", "--env", "V=2", *order)
            assert result.returncode == 0, result.stderr.decode()
            wait_for(lambda: all_version("2"), 90, "every roll task on V=2")
            update_s = time.monotonic() - started
            assert cli_json(sb, "n1", "service", "inspect", "roll")["spec"]["env"] == {"V": "2"}

            started = time.monotonic()
            result = cli(sb, "n3", "service", "rollback", "-d", "roll")
            assert result.returncode == 0, result.stderr.decode()
            wait_for(lambda: all_version("1"), 90, "every roll task back on V=1")
            rollback_s = time.monotonic() - started
            time.sleep(1)
        spec = cli_json(sb, "n1", "service", "inspect", "roll")["spec"]
        assert spec["env"] == {"V": "1"}, spec
        assert spec["update"]["order"] == "start-first", spec
        sizes = Counter(len(r[1]) for r in probe.rounds)
        print(
            f"rolling update: {update_s:.1f} s, rollback: {rollback_s:.1f} s; "
            f"probe rounds {len(probe.rounds)}, DNS answer sizes {dict(sizes)}, "
            f"dig errors {len(probe.errors)}"
        )
        assert len(probe.rounds) >= 20, len(probe.rounds)
        versions = {p.split()[0] for r in probe.rounds for p in r[2]}
        assert versions == {"v=1", "v=2"}, versions  # the probe really saw both versions serve
        assert probe.outages() == [], probe.outages()[:5]


# ----------------------------------------------------------------------------- node and leader failure
def test_killed_node_tasks_run_elsewhere_and_dns_answers_only_live_tasks(cluster):
    sb, nodes = cluster
    with service(sb, nodes, "web", "--replicas", "3", "--env", "V=1", *FAST_STOP, IMAGE, "sh", "-c", SERVE):
        before = running_tasks(nodes[0], "web", 3)
        assert sorted(t["node"] for t in before) == ["n1", "n2", "n3"]
        leader = node_at(nodes, leader_addr(nodes[0]))
        victim = next(n for n in reversed(nodes) if n is not leader)
        live = [n for n in nodes if n is not victim]
        lost = next(t for t in before if t["node"] == victim.name)
        with killed(sb, nodes, victim) as killed_at:
            wait_for(lambda: node_row(live[0], victim.name)["status"] == "down", 30, f"{victim.name} down")
            down_s = time.monotonic() - killed_at
            after = running_tasks(live[0], "web", 3, timeout_s=30, avoid=victim.name)
            replaced_s = time.monotonic() - killed_at
            assert all(t["node"] != victim.name for t in after), after
            answers = wait_for(lambda: live_dns_agrees(live, "web.p2p", live[0], "web", 3), 30, "live DNS")
            dns_s = time.monotonic() - killed_at
            print(
                f"node {victim.name} killed: down after {down_s:.1f} s, replacements running after "
                f"{replaced_s:.1f} s, DNS on live nodes answers only live tasks after {dns_s:.1f} s"
            )
            assert lost["address"] not in answers
            for address in answers:  # the answered tasks really serve
                assert (http_get(live[0], address) or "").startswith("v=1 node="), address
            old = {t["id"]: t for t in all_tasks(live[0], "web")}[lost["id"]]
            assert old["desired_state"] == "shutdown" and "down" in old["message"], old
            assert replaced_s < 30
        # Back: the revived node runs none of its superseded containers and the service has 3.
        wait_for(lambda: running_containers(nodes, "web")[victim.name] == 0, 60, "superseded web stopped")
        assert sum(running_containers(nodes, "web").values()) == 3
        assert sorted(t["id"] for t in tasks(nodes[0], "web")) == sorted(t["id"] for t in after)


def test_killed_leader_is_replaced_and_its_tasks_rescheduled(cluster):
    sb, nodes = cluster
    with service(sb, nodes, "lead", "--replicas", "3", *FAST_STOP, IMAGE, "sh", "-c", SERVE):
        before = running_tasks(nodes[0], "lead", 3)
        old_leader = leader_addr(nodes[0])
        assert old_leader is not None
        victim = node_at(nodes, old_leader)
        live = [n for n in nodes if n is not victim]
        lost = next(t for t in before if t["node"] == victim.name)
        with killed(sb, nodes, victim) as killed_at:

            def new_leader():
                seen = {leader_addr(n) for n in live}
                return seen.pop() if len(seen) == 1 and None not in seen and old_leader not in seen else None

            elected = wait_for(new_leader, 30, "a new leader")
            leader_s = time.monotonic() - killed_at
            assert node_at(nodes, elected) in live

            def write_ok():
                result = cli(sb, live[1].name, "node", "update", live[0].name, "--label-add", "failover=1")
                return result.returncode == 0

            wait_for(write_ok, 30, "a write after the leader died")
            write_s = time.monotonic() - killed_at
            after = running_tasks(live[0], "lead", 3, timeout_s=45, avoid=victim.name)
            replaced_s = time.monotonic() - killed_at
            assert all(t["node"] != victim.name for t in after), after
            answers = wait_for(lambda: live_dns_agrees(live, "lead.p2p", live[0], "lead", 3), 30, "live DNS")
            print(
                f"leader {victim.name} killed: new leader {elected} after {leader_s:.1f} s, write ok after "
                f"{write_s:.1f} s, replacements running after {replaced_s:.1f} s"
            )
            assert lost["address"] not in answers
            assert node_row(live[0], live[0].name)["labels"].get("failover") == "1"
        wait_for(lambda: running_containers(nodes, "lead")[victim.name] == 0, 60, "superseded lead stopped")
        assert sum(running_containers(nodes, "lead").values()) == 3
        cli(sb, "n1", "node", "update", live[0].name, "--label-rm", "failover")


def test_cut_off_node_keeps_running_then_stops_superseded_tasks_when_it_returns(cluster):
    sb, nodes = cluster
    with service(sb, nodes, "part", "--replicas", "3", *FAST_STOP, IMAGE, "sh", "-c", SERVE):
        before = running_tasks(nodes[0], "part", 3)
        leader = node_at(nodes, leader_addr(nodes[0]))
        victim = next(n for n in reversed(nodes) if n is not leader)
        live = [n for n in nodes if n is not victim]
        own = next(t for t in before if t["node"] == victim.name)
        underlay(victim, "down")
        cut_at = time.monotonic()
        try:
            wait_for(lambda: node_row(live[0], victim.name)["status"] == "down", 30, f"{victim.name} down")
            after = running_tasks(live[0], "part", 3, timeout_s=30, avoid=victim.name)
            replaced_s = time.monotonic() - cut_at
            assert all(t["node"] != victim.name for t in after)
            # The minority side cannot commit and says so; its task keeps running there.
            wait_for(lambda: not api_get(victim, "/status")["cluster"]["has_quorum"], 30, "minority status")
            assert [c["Config"]["Labels"]["p2porch.task-id"] for c in containers(victim, "part")] == [
                own["id"]
            ]
            print(
                f"cut {victim.name}: replacements running after {replaced_s:.1f} s; its own task still runs"
            )
        finally:
            underlay(victim, "up")
        healed_at = time.monotonic()
        wait_for(lambda: node_row(live[0], victim.name)["status"] == "ready", 60, f"{victim.name} ready")
        wait_for(lambda: running_containers(nodes, "part")[victim.name] == 0, 60, "superseded task stopped")
        extra_s = time.monotonic() - healed_at
        print(
            f"healed {victim.name}: its superseded container stopped {extra_s:.1f} s after the link came back"
        )
        assert sum(running_containers(nodes, "part").values()) == 3
        assert sorted(t["id"] for t in tasks(nodes[0], "part")) == sorted(t["id"] for t in after)
        assert extra_s < 20


def test_start_first_update_of_a_single_health_checked_task_keeps_it_in_dns(cluster):
    sb, nodes = cluster
    health = ("--health-cmd", "test -f /www/index.html", "--health-interval", "1s", "--health-retries", "1")
    order = ("--update-order", "start-first", "--update-parallelism", "1")
    args = ["--replicas", "1", "--env", "V=1", *health, *order, *FAST_STOP, IMAGE, "sh", "-c", SERVE]
    with service(sb, nodes, "solo", *args):
        running_tasks(nodes[0], "solo", 1)
        wait_for(lambda: len(dig_a(nodes[0].address, "solo.p2p")) == 1, 30, "solo healthy in DNS")

        def on_v2() -> bool:
            pages = pages_of(nodes[0], "solo", 1)
            return (
                pages == [p for p in pages if p.startswith("v=2 ")] != []
                and sum(running_containers(nodes, "solo").values()) == 1
            )

        with Probe(nodes[0], nodes[0].address, "solo.p2p") as probe:
            time.sleep(1)
            result = cli(sb, "n2", "service", "update", "-d", "solo", "--env", "V=2", *order)
            assert result.returncode == 0, result.stderr.decode()
            wait_for(on_v2, 60, "solo on V=2")
            wait_for(lambda: len(dig_a(nodes[0].address, "solo.p2p")) == 1, 30, "solo V=2 in DNS")
            time.sleep(1)
        outages = probe.outages()
        gap_s = (outages[-1][0] - outages[0][0]) if outages else 0.0
        print(
            f"single-task start-first update: {len(outages)} of {len(probe.rounds)} probe rounds "
            f"without a healthy task ({gap_s:.1f} s)"
        )
        assert len(probe.rounds) >= 10
        assert outages == [], f"{len(outages)} probe rounds without a healthy task over {gap_s:.1f} s"


def test_failing_update_rolls_back_with_failure_action_rollback(cluster):
    sb, nodes = cluster
    order = ("--update-order", "start-first", "--update-parallelism", "1", "--update-monitor", "5s")
    args = ["--replicas", "2", "--env", "V=1", *order, *FAST_STOP, IMAGE, "sh", "-c", SERVE]
    with service(sb, nodes, "bad", *args):
        first = running_tasks(nodes[0], "bad", 2)
        result = cli(
            sb,
            "n2",
            "service",
            "update",
            "-d",
            "bad",
            "--update-failure-action",
            "rollback",
            "--args",
            "sh",
            "-c",
            "exit 7",
        )
        assert result.returncode == 0, result.stderr.decode()

        def rolled_back():
            view = cli_json(sb, "n1", "service", "inspect", "bad")
            return view if view["spec"]["command"] == ["sh", "-c", SERVE] else None

        started = time.monotonic()
        view = wait_for(rolled_back, 30, "the failed update rolled back to the previous spec")
        print(f"failed update rolled back after {time.monotonic() - started:.1f} s")
        assert view["spec"]["env"] == {"V": "1"}
        # Parallelism 1: the update stopped at its first task, so the other slot's task was never touched;
        # the slot that was updated runs the rolled-back spec again (like Swarm, start-first stops an
        # old task once its replacement runs, and a failure within --update-monitor rolls back).
        after = running_tasks(nodes[0], "bad", 2)
        assert len(after) == 2
        assert {t["id"] for t in after} & {t["id"] for t in first}
