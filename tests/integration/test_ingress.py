"""Ingress routing mesh and service VIPs on a real 3-node sandbox (issue 16).

One cluster (``p2ig``, 10.55.0.0/24) for the module. The task image is the sandbox busybox running
httpd with a CGI script ``/cgi-bin/who`` that answers ``REMOTE_ADDR TASK_ID NODE``: the server's own view
of the client address and of which task answered. Clients are the test process in the host namespace
(outside the cluster, on the underlay) and busybox ``wget`` inside a client task container (VIP). Every
test removes its services (waiting until their containers are gone) even when it fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator

from clusterkit import IMAGE, api, api_get, cli, cli_json, cluster_fixture, kill_node, revive, wait_for
from ingress_evidence import RuleSampler, TracedError, conntrack_of, stamp, traced_get

from p2porch.sandbox.dockerd import docker, find_program
from p2porch.sandbox.sandbox import Sandbox, SandboxNode
from p2porch.sandbox.system import pid_alive, read_pid

NAMES = ("n1", "n2", "n3")
SUBNET = "10.55.0.0/24"
FAST_STOP = ("--stop-grace-period", "1s")  # busybox httpd as PID 1 ignores SIGTERM
WHO = (
    "mkdir -p /www/cgi-bin && printf '#!/bin/sh\\necho $REMOTE_ADDR $REQUEST_URI >> /tmp/access.log\\n"
    "echo Content-Type: text/plain\\necho\\necho $REMOTE_ADDR $P2PORCH_TASK_ID $P2PORCH_NODE\\n' "
    "> /www/cgi-bin/who && chmod +x /www/cgi-bin/who && exec httpd -f -p 80 -h /www"
)
SERVE = (IMAGE, "sh", "-c", WHO)


# ----------------------------------------------------------------------------- helpers


def tasks(node: SandboxNode, service: str) -> list[dict]:
    return api_get(node, f"/services/{service}/tasks", all="false")


def running_tasks(node: SandboxNode, service: str, count: int, timeout_s: float = 90.0) -> list[dict]:
    def done():
        current = tasks(node, service)
        ok = len(current) == count and all(t["state"] == "running" and t["address"] for t in current)
        return sorted(current, key=lambda t: t["slot"]) if ok else None

    return wait_for(done, timeout_s, f"{count} running tasks of {service}")


def containers(node: SandboxNode, service: str) -> list[str]:
    out = docker(node.dockerd, "ps", "-aq", "--filter", f"label=p2porch.service={service}", check=False)
    return out.stdout.decode().split()


def remove_and_wait(nodes: list[SandboxNode], service: str) -> None:
    with api(nodes[0]) as client:
        response = client.delete(f"/services/{service}")
        assert response.status_code in (200, 404), response.text
    wait_for(lambda: not any(containers(n, service) for n in nodes), 90, f"every container of {service} gone")


@contextlib.contextmanager
def service(sb: Sandbox, nodes: list[SandboxNode], name: str, *args: str) -> Iterator[dict]:
    try:
        created = cli_json(sb, "n1", "service", "create", "--name", name, *args)
        assert created["name"] == name
        yield created
    finally:
        remove_and_wait(nodes, name)


def who(address: str, port: int, timeout_s: float = 3.0) -> tuple[str, str, str]:
    """GET http://ADDRESS:PORT/cgi-bin/who from the host namespace: (client address, task id, node)."""
    with urllib.request.urlopen(f"http://{address}:{port}/cgi-bin/who", timeout=timeout_s) as response:
        client, task, node = response.read().decode().split()
    return client.removeprefix("[").removeprefix("::ffff:").removesuffix("]"), task, node


def container_of(nodes: list[SandboxNode], service: str) -> tuple[SandboxNode, str]:
    """The node and id of the (first) running container of ``service``."""

    def find():
        for node in nodes:
            out = docker(
                node.dockerd, "ps", "-q", "--filter", f"label=p2porch.service={service}", check=False
            )
            ids = out.stdout.decode().split()
            if ids:
                return node, ids[0]
        return None

    return wait_for(find, 60, f"a container of {service}")


def in_container(node: SandboxNode, cid: str, script: str, timeout_s: float = 30) -> str:
    result = docker(node.dockerd, "exec", cid, "sh", "-c", script, check=False, timeout_s=timeout_s)
    return result.stdout.decode().strip()


HAMMER = (
    "ok=0; fail=0; while [ ! -e /tmp/stop ]; do "
    "if timeout 5 wget -q -O /dev/null http://{target}/cgi-bin/who; "
    "then ok=$((ok+1)); else fail=$((fail+1)); fi; "
    "done; echo $ok $fail"
)


class Hammer:
    """A client hammering URLs with new connections (host threads or a loop inside a client container)."""

    def __init__(self) -> None:
        self.ok = Counter[str]()
        self.failed = Counter[str]()
        self.errors: list[str] = []
        #: per ingress address, each request: (start time, source port, task answered or the error)
        self.trace: dict[str, list[tuple[float, int, str]]] = {}
        #: per failed ingress request: its node's conntrack entry of the client tuple, read at once
        self.conntrack: list[str] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._execs: list[tuple[SandboxNode, str, subprocess.Popen[bytes]]] = []

    def host(self, node: SandboxNode, port: int, client: str) -> None:
        """Requests through ``node``'s ingress from the host namespace (``client``: its address there)."""
        address = node.address
        trace = self.trace.setdefault(address, [])

        def loop() -> None:
            while not self._stop.is_set():
                began = time.time()
                try:
                    sport, body = traced_get(address, port, "/cgi-bin/who")
                    trace.append((began, sport, body.split()[1]))
                    self.ok[f"ingress {address}"] += 1
                except TracedError as exc:
                    trace.append((began, exc.sport, str(exc)))
                    self.failed[f"ingress {address}"] += 1
                    self.errors.append(f"{time.strftime('%H:%M:%S')} {address}: {exc}")
                    if exc.sport:
                        seen = conntrack_of(node, client, exc.sport, port)
                        self.conntrack.append(f"{stamp(time.time())} {node.name} sport {exc.sport}:\n{seen}")

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        self._threads.append(thread)

    def container(self, node: SandboxNode, cid: str, target: str) -> None:
        in_container(node, cid, "rm -f /tmp/stop")
        argv = [find_program("docker") or "docker", "-H", node.dockerd.host_url, "exec", cid, "sh", "-c"]
        proc = subprocess.Popen([*argv, HAMMER.format(target=target)], stdout=subprocess.PIPE)
        self._execs.append((node, cid, proc))

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
        for node, cid, proc in self._execs:
            in_container(node, cid, "touch /tmp/stop")
            out, _ = proc.communicate(timeout=30)
            ok, failed = (int(x) for x in out.decode().split())
            self.ok[f"vip from {node.name}"] += ok
            self.failed[f"vip from {node.name}"] += failed


#: daemon log lines printed when a hammered run fails: what each node's traffic rules, conntrack flushes,
#: drains and gossip did (a failure on one node's ingress and not the others' points at that node)
EVIDENCE = ("p2porch.member.traffic", "conntrack", "drain", "gossip:", "WARNING", "ERROR")


def assert_runs_clean(
    hammer: Hammer, what: str, nodes: list[SandboxNode], sampler: RuleSampler | None = None, service: str = ""
) -> None:
    total_ok, total_failed = sum(hammer.ok.values()), sum(hammer.failed.values())
    print(f"{what}: ok {dict(hammer.ok)} failed {dict(hammer.failed)} errors {hammer.errors[:5]}")
    if total_failed:
        for node in nodes:
            with open(node.p2porch_log, errors="replace") as log:
                lines = [line.rstrip() for line in log if any(key in line for key in EVIDENCE)]
            print(f"--- {node.name}: the last {min(len(lines), 60)} of {len(lines)} log lines on traffic")
            print("\n".join(lines[-60:]))
        print_failed_requests(hammer)
        if sampler is not None:
            print("--- DNAT targets per node (sampled every 0.3 s, on change)")
            print(sampler.timeline())
        if service:
            print(f"--- tasks of {service}")
            for t in api_get(nodes[0], f"/services/{service}/tasks", all="true"):
                print({k: t.get(k) for k in ("id", "node", "address", "state", "desired_state", "slot")})
    assert total_ok > 100 and all(hammer.ok.values()), hammer.ok
    assert total_failed == 0, (hammer.failed, hammer.errors[:10])


def print_failed_requests(hammer: Hammer) -> None:
    """Each failed ingress request: when, its source port, what that port got before (a reused client
    tuple), and its node's conntrack entry of it read right after the failure."""
    for address, trace in hammer.trace.items():
        for i, (began, sport, outcome) in enumerate(trace):
            if " (sport " not in outcome:
                continue
            before = [(stamp(b), o) for b, p, o in trace[:i] if p == sport][-3:]
            after = [(stamp(b), o) for b, p, o in trace[i + 1 :] if p == sport][:2]
            print(f"--- failed via {address} at {stamp(began)}: {outcome}")
            print(f"    the same source port before {before}, after {after}")
            window = [(stamp(b), p, o[:12]) for b, p, o in trace if abs(b - began) < 1.5]
            print(f"    requests via {address} within 1.5 s: {window}")
    for seen in hammer.conntrack:
        print(seen)


def nat_rules(node: SandboxNode) -> str:
    argv = [find_program("nsenter") or "nsenter", f"--net=/var/run/netns/{node.netns}", "iptables", "-w"]
    return subprocess.run([*argv, "-t", "nat", "-S"], capture_output=True, text=True, check=True).stdout


cluster = cluster_fixture("p2ig", SUBNET)


# ----------------------------------------------------------------------------- ingress


def test_published_port_answers_on_every_node_and_spreads_over_both_tasks(cluster):
    sb, nodes = cluster
    with service(sb, nodes, "web", "--replicas", "2", "--publish", "8080:80", *FAST_STOP, *SERVE):
        running = running_tasks(nodes[0], "web", 2)
        ids = {t["id"] for t in running}
        assert len({t["node"] for t in running}) == 2  # one node runs no task and must answer anyway
        for node in nodes:
            seen = Counter(
                wait_for(lambda n=node: who(n.address, 8080), 30, f"{node.name}:8080")[1] for _ in [0]
            )
            for _ in range(40):
                seen[who(node.address, 8080)[1]] += 1
            print(f"{node.name}:8080 answered by {dict(seen)}")
            assert set(seen) == ids, (node.name, seen)
        # the port is not bound by Docker on any node: the NAT rules serve it
        for node in nodes:
            for cid in containers(node, "web"):
                bindings = docker(node.dockerd, "port", cid).stdout.decode().strip()
                assert bindings == "", bindings


def test_five_replicas_with_one_published_port_all_run_on_three_nodes(cluster):
    sb, nodes = cluster
    with service(sb, nodes, "five", "--replicas", "5", "--publish", "8081:80", *FAST_STOP, *SERVE):
        running = running_tasks(nodes[0], "five", 5)
        assert len({t["node"] for t in running}) == 3
        seen = Counter()
        wait_for(lambda: who(nodes[2].address, 8081), 30, "n3:8081")
        for i in range(150):
            seen[who(nodes[i % 3].address, 8081)[1]] += 1
        print("5 replicas behind one published port:", dict(seen))
        assert set(seen) == {t["id"] for t in running}


def test_local_policy_answers_with_local_tasks_and_keeps_the_client_address(cluster):
    sb, nodes = cluster
    args = ("--mode", "global", "--ingress-policy", "local", "--publish", "8082:80", *FAST_STOP, *SERVE)
    with service(sb, nodes, "keep", *args):
        running = running_tasks(nodes[0], "keep", 3)
        by_node = {t["node"]: t["id"] for t in running}
        for node in nodes:
            wait_for(lambda n=node: who(n.address, 8082), 30, f"{node.name}:8082")
            for _ in range(10):
                client, task, served_on = who(node.address, 8082)
                assert (task, served_on) == (by_node[node.name], node.name)
                assert client == sb.gateway, (client, sb.gateway)  # the real client, not a node address
        # the task's own access log (written by the CGI script) has the client address as well
        node = nodes[1]
        (cid,) = containers(node, "keep")
        log = in_container(node, cid, "cat /tmp/access.log")
        assert f"::ffff:{sb.gateway}] /cgi-bin/who" in log, log[-500:]
    with service(sb, nodes, "mesh", "--replicas", "1", "--publish", "8083:80", *FAST_STOP, *SERVE):
        (task,) = running_tasks(nodes[0], "mesh", 1)
        remote = next(n for n in nodes if n.name != task["node"])
        client, _, _ = wait_for(lambda: who(remote.address, 8083), 30, "mesh via a remote node")
        print(f"cluster policy through {remote.name}: the task sees {client} (masqueraded)")
        assert client != sb.gateway and client.startswith("10.")


# ----------------------------------------------------------------------------- VIPs


def test_vip_resolves_to_one_address_and_survives_update_and_task_kill(cluster):
    sb, nodes = cluster
    with (
        service(sb, nodes, "api", "--replicas", "2", *FAST_STOP, *SERVE),
        service(sb, nodes, "client", "--replicas", "1", *FAST_STOP, IMAGE, "sleep", "100000"),
    ):
        before = running_tasks(nodes[0], "api", 2)
        running_tasks(nodes[0], "client", 1)
        vip = cli_json(sb, "n1", "service", "inspect", "api")["vip"]
        node, cid = container_of(nodes, "client")
        # the name answers the VIP; tasks.NAME (bare and in the domain) the task addresses
        resolved = in_container(node, cid, "nslookup api | tail -n +3")
        assert vip in resolved and all(t["address"] not in resolved for t in before), resolved
        for name in ("tasks.api", "tasks.api.p2p"):
            out = in_container(node, cid, f"nslookup {name}")
            assert all(t["address"] in out for t in before), (name, out)
        env = in_container(node, cid, "env")
        assert f"API_SERVICE_HOST={vip}" in env, env  # api existed when the client started
        answers = Counter(
            in_container(node, cid, f"wget -q -O- http://{vip}/cgi-bin/who").split()[1:2][0]
            for _ in range(30)
        )
        assert set(answers) == {t["id"] for t in before}, answers
        # The client keeps its one address (long-lived DNS answer) across a rolling update and a task kill.
        hammer = Hammer()
        hammer.container(node, cid, vip)
        try:
            result = cli(
                sb, "n1", "service", "update", "api", "--env", "V=2", "--update-order", "start-first"
            )
            assert result.returncode == 0, result.stderr.decode()
            after = wait_for(
                lambda: (
                    (cur := running_tasks(nodes[0], "api", 2))
                    and not {t["id"] for t in cur} & {t["id"] for t in before}
                    and cur
                ),
                120,
                "api updated",
            )
            victim = after[0]
            victim_node = next(n for n in nodes if n.name == victim["node"])
            for cid_ in containers(victim_node, "api"):
                docker(victim_node.dockerd, "kill", cid_, check=False)
            wait_for(
                lambda: victim["id"] not in {t["id"] for t in running_tasks(nodes[0], "api", 2)},
                60,
                "replaced",
            )
            time.sleep(2)  # requests after the replacement
        finally:
            hammer.stop()
        print(
            f"VIP across start-first update and a task kill: ok {dict(hammer.ok)} "
            f"failed {dict(hammer.failed)}"
        )
        assert sum(hammer.ok.values()) > 100
        # after the kill the client works again: the last requests all succeed
        final = Counter(
            in_container(node, cid, f"timeout 5 wget -q -O- http://{vip}/cgi-bin/who").split()[1:2][0]
            for _ in range(20)
        )
        assert set(final) == {t["id"] for t in running_tasks(nodes[0], "api", 2)}, final


def test_no_failed_request_through_ingress_and_vip_during_a_start_first_update(cluster):
    sb, nodes = cluster
    with (
        service(sb, nodes, "roll", "--replicas", "3", "--publish", "8084:80", *FAST_STOP, *SERVE),
        service(sb, nodes, "hammer", "--replicas", "1", *FAST_STOP, IMAGE, "sleep", "100000"),
    ):
        before = running_tasks(nodes[0], "roll", 3)
        running_tasks(nodes[0], "hammer", 1)
        vip = cli_json(sb, "n1", "service", "inspect", "roll")["vip"]
        node, cid = container_of(nodes, "hammer")
        for n in nodes:
            wait_for(lambda n=n: who(n.address, 8084), 30, f"{n.name}:8084")
        hammer = Hammer()
        for n in nodes:
            hammer.host(n, 8084, sb.gateway)
        assert vip
        hammer.container(node, cid, vip)  # the VIP itself: a client that resolved once
        sampler = RuleSampler(nodes)
        sampler.start()
        started = time.monotonic()
        try:
            time.sleep(1)
            args = ("--env", "V=2", "--update-order", "start-first", "--update-parallelism", "1")
            result = cli(sb, "n1", "service", "update", "roll", *args)
            assert result.returncode == 0, result.stderr.decode()
            old = {t["id"] for t in before}
            wait_for(
                lambda: (
                    not {t["id"] for t in running_tasks(nodes[0], "roll", 3)} & old
                    and not any(
                        t["id"] in old
                        for t in api_get(nodes[0], "/services/roll/tasks", all="true")
                        if t["state"] == "running"
                    )
                ),
                180,
                "roll updated",
            )
            time.sleep(3)  # the last old task has drained and stopped
        finally:
            hammer.stop()
            sampler.stop()
        print(f"start-first update of 3 tasks took {time.monotonic() - started:.1f} s with clients hammering")
        for n in nodes:  # how long each new task took to listen after its start (agent/listen_wait.py)
            with open(n.p2porch_log, errors="replace") as log:
                print(n.name, [line.split(": ", 1)[-1].strip() for line in log if "after its start" in line])
        assert_runs_clean(
            hammer, "ingress (3 nodes) + VIP during a start-first update", nodes, sampler, "roll"
        )


# ----------------------------------------------------------------------------- rules follow state


def test_rules_follow_scale_and_removal_and_a_restarted_daemon_keeps_them(cluster):
    sb, nodes = cluster
    with service(sb, nodes, "gone", "--replicas", "1", "--publish", "8085:80", *FAST_STOP, *SERVE):
        (task,) = running_tasks(nodes[0], "gone", 1)
        wait_for(lambda: all(f"{task['address']}:80" in nat_rules(n) for n in nodes), 20, "rules everywhere")
        # hand-edit: flush the port chain on n2; the next full resync (30 s) or any commit rebuilds it
        argv = [
            find_program("nsenter") or "nsenter",
            f"--net=/var/run/netns/{nodes[1].netns}",
            "iptables",
            "-w",
        ]
        subprocess.run([*argv, "-t", "nat", "-F", "P2P-IN-TCP-8085"], check=True)
        # a daemon restart reconciles: kill -9 the daemon of n2 and start it again
        pid = read_pid(nodes[1].p2porch_pidfile)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(pid), 10, "daemon gone")
        os.unlink(nodes[1].p2porch_pidfile)
        sb.up(3)
        wait_for(lambda: "-A P2P-IN-TCP-8085 -j P2P-EP-" in nat_rules(nodes[1]), 60, "n2 rebuilt its rules")
        assert who(nodes[1].address, 8085)[1] == task["id"]
    # removed: no chain or rule of the service is left on any node
    wait_for(
        lambda: all("8085" not in nat_rules(n) and task["address"] not in nat_rules(n) for n in nodes),
        20,
        "rules gone",
    )


def test_new_connections_leave_a_killed_nodes_tasks_within_failure_detection(cluster):
    sb, nodes = cluster
    with service(sb, nodes, "spread", "--replicas", "3", "--publish", "8086:80", *FAST_STOP, *SERVE):
        running = running_tasks(nodes[0], "spread", 3)
        assert sorted(t["node"] for t in running) == ["n1", "n2", "n3"]
        victim = nodes[2]
        try:
            killed_at = kill_node(victim)
            # underlay cut as well: its containers (still running under containerd) are unreachable
            subprocess.run(["ip", "link", "set", victim.host_veth, "down"], check=True)

            def clean_streak() -> bool:
                answers = []
                for _ in range(20):
                    try:
                        answers.append(who(nodes[0].address, 8086, timeout_s=1)[2])
                    except OSError:
                        return False
                return victim.name not in answers

            wait_for(clean_streak, 60, "20 answers in a row from live nodes", interval_s=0.1)
            moved_s = time.monotonic() - killed_at
            down = wait_for(lambda: api_get(nodes[0], "/nodes"), 5)
            status = {r["name"]: (r["status"], r.get("gossip")) for r in down}
            print(
                f"killed {victim.name}: new connections avoid its task after {moved_s:.1f} s; nodes {status}"
            )
            assert moved_s < 30
        finally:
            subprocess.run(["ip", "link", "set", victim.host_veth, "up"], check=False)
            revive(sb, nodes, victim)
