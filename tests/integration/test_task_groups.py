"""Task groups (issue 21) on a real 3-node sandbox cluster (``p2tg``, 10.35.0.0/24).

A group's sidecar runs in its main container's network namespace (``network_mode: container:<id>`` on a real
dockerd): it reaches the main container on 127.0.0.1, another service reaches both through the task's one
overlay address and DNS name, and when the node running the task is killed (kill -9 of its daemon and
dockerd) the whole group comes back on another node. Init containers run to completion, in order, before
the main container starts; one that fails fails the task. The last test kills a node and does not bring
it back, so it runs last.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator

import clusterkit
import pytest
from clusterkit import FAST_STOP, IMAGE, api, api_get, cli, cli_json, http_get

from p2porch.errors import SandboxError
from p2porch.sandbox.dockerd import docker
from p2porch.sandbox.sandbox import Sandbox, SandboxNode
from p2porch.sandbox.system import pid_alive, read_pid

SUBNET = "10.35.0.0/24"
# main: a page on port 80. sidecar: fetches the main page over localhost, then serves it (plus its own
# mark) on port 8081 -- so a client that reads 8081 at the task's address proves both halves.
MAIN = 'mkdir -p /www && echo "main $P2PORCH_TASK_ID" > /www/index.html && exec httpd -f -p 80 -h /www'
SIDE = (
    "mkdir -p /s && until wget -q -O /s/index.html http://127.0.0.1:80/; do sleep 0.2; done"
    " && echo side via localhost >> /s/index.html && exec httpd -f -p 8081 -h /s"
)


def wait_for(predicate, timeout_s: float = 60.0, what: str = "condition", interval_s: float = 0.3):
    return clusterkit.wait_for(
        predicate, timeout_s, what, interval_s, retry_on=(SandboxError, AssertionError)
    )


@pytest.fixture(scope="module")
def cluster():
    sb = Sandbox("p2tg", subnet=SUBNET)
    try:
        nodes = sb.up(3)
        token = cli_json(sb, "n1", "init")["token"]
        for name in ("n2", "n3"):
            result = cli(sb, name, "join", nodes[0].address, "--token", token)
            assert result.returncode == 0, result.stderr.decode()

        def formed():
            rows = api_get(nodes[0], "/nodes")
            return len(rows) == 3 and all(r["status"] == "ready" and r["gossip"] == "alive" for r in rows)

        wait_for(formed, 90, what="3 ready nodes")
        yield sb, nodes
    finally:
        sb.down()


def containers(node: SandboxNode, service: str) -> list[dict]:
    """``docker inspect`` of every container (running or not) labelled with ``service`` on one engine."""
    argv = ["ps", "-aq", "--no-trunc", "--filter", f"label=p2porch.service={service}"]
    ids = docker(node.dockerd, *argv, timeout_s=20).stdout.decode().split()
    if not ids:
        return []
    found = docker(node.dockerd, "inspect", *ids, check=False, timeout_s=20).stdout
    return json.loads(found) if found.strip() else []


def member(c: dict) -> str:
    return (c["Config"]["Labels"] or {}).get("p2porch.container", "")


@contextlib.contextmanager
def service(sb: Sandbox, via: SandboxNode, name: str, *args: str) -> Iterator[dict]:
    try:
        yield cli_json(sb, via.name, "service", "create", "-d", "--name", name, *FAST_STOP, *args)
    finally:
        with api(via) as client:
            response = client.delete(f"/services/{name}")
            assert response.status_code in (200, 404), response.text


def running_task(via: SandboxNode, name: str, avoid: str = "") -> dict:
    def one():
        current = api_get(via, f"/services/{name}/tasks", all="false")
        ok = len(current) == 1 and current[0]["state"] == "running" and current[0]["address"]
        return current[0] if ok and current[0]["node"] != avoid else None

    return wait_for(one, 90, f"one running task of {name}" + (f" off {avoid}" if avoid else ""))


def leader(nodes: list[SandboxNode]) -> SandboxNode:
    addr = api_get(nodes[0], "/status")["cluster"]["leader"]
    return next(n for n in nodes if n.address == addr.rsplit(":", 1)[0])


def test_init_containers_run_in_order_to_completion_before_the_main_container(cluster):
    sb, nodes = cluster
    shared = "type=volume,source=p2tg-shared,target=/shared"
    first = f"name=first,image={IMAGE},command=\"sh -c 'sleep 1; echo first > /shared/order'\""
    second = f"name=second,image={IMAGE},command=\"sh -c 'echo second >> /shared/order'\""
    main = "test -f /shared/order || exit 7; cp /shared/order /www.txt; exec sleep 600"
    with service(
        sb,
        nodes[0],
        "prep",
        "--mount",
        shared,
        "--init-container",
        first,
        "--init-container",
        second,
        IMAGE,
        "sh",
        "-c",
        main,
    ):
        task = running_task(nodes[0], "prep")
        host = next(n for n in nodes if n.name == task["node"])
        found = {member(c): c for c in containers(host, "prep")}
        assert set(found) == {"", "first", "second"}, list(found)
        for name in ("first", "second"):
            assert found[name]["State"]["Status"] == "exited" and found[name]["State"]["ExitCode"] == 0
        # in order, each finished before the next started, and both before the main container started
        assert found["first"]["State"]["FinishedAt"] <= found["second"]["State"]["StartedAt"]
        assert found["second"]["State"]["FinishedAt"] <= found[""]["State"]["StartedAt"]
        history = api_get(nodes[0], "/services/prep/tasks", all="true")
        assert [t["state"] for t in history] == ["running"], history  # the main never ran early and failed
        logs = cli(sb, "n2", "service", "logs", "prep", "--container", "nope")
        assert logs.returncode != 0 and b"no container 'nope'" in logs.stderr, logs.stderr


def test_a_failing_init_container_fails_the_task_and_the_main_never_starts(cluster):
    sb, nodes = cluster
    bad = f"name=migrate,image={IMAGE},command=\"sh -c 'echo broken; exit 3'\""
    with service(
        sb,
        nodes[0],
        "badinit",
        "--restart-max-attempts",
        "1",
        "--restart-delay",
        "1s",
        "--init-container",
        bad,
        IMAGE,
        "sleep",
        "600",
    ):

        def failed_twice():
            history = api_get(nodes[0], "/services/badinit/tasks", all="true")
            failed = [t for t in history if t["state"] == "failed"]
            return failed if len(failed) >= 2 else None

        failed = wait_for(failed_twice, 90, "the first try and its retry failed")
        assert all("init container migrate exited with code 3" in t["error"] for t in failed), failed
        mains = [c for n in nodes for c in containers(n, "badinit") if not member(c)]
        assert mains == [], "a main container was created although its init container failed"
        logs = cli(sb, "n1", "service", "logs", "badinit", "--container", "migrate")
        assert logs.returncode == 0 and b"broken" in logs.stdout, (logs.stdout, logs.stderr)


COMPOSE = f"""
services:
  web:
    image: {IMAGE}
    command: ["sh", "-c", "test -f /shared/ready || exit 9; exec httpd -f -p 80 -h /shared"]
    volumes: ["shared:/shared"]
    depends_on:
      prepare: {{condition: service_completed_successfully}}
  prepare:
    image: {IMAGE}
    network_mode: service:web
    command: ["sh", "-c", "echo prepared > /shared/index.html && touch /shared/ready"]
  side:
    image: {IMAGE}
    network_mode: service:web
    command: ["sh", "-c", "{SIDE}"]
volumes:
  shared: {{}}
"""


def test_compose_network_mode_service_deploys_one_task_group(cluster, tmp_path):
    sb, nodes = cluster
    path = tmp_path / "compose.yml"
    path.write_text(COMPOSE)
    deployed = cli(sb, "n1", "stack", "deploy", "-d", "-c", str(path), "grp")
    assert deployed.returncode == 0, deployed.stderr.decode()
    try:
        assert [s["name"] for s in api_get(nodes[0], "/services")] == ["grp-web"]
        task = running_task(nodes[0], "grp-web")
        host = next(n for n in nodes if n.name == task["node"])
        found = {member(c): c["State"]["Status"] for c in containers(host, "grp-web")}
        assert found == {"": "running", "prepare": "exited", "side": "running"}, found
        page = wait_for(lambda: http_get(host, f"http://{task['address']}:8081/"), 60, "the Compose sidecar")
        assert "prepared" in page and "side via localhost" in page, page
    finally:
        assert cli(sb, "n1", "stack", "rm", "grp").returncode == 0


def test_a_group_shares_localhost_and_one_address_and_moves_as_one_when_its_node_dies(cluster):
    sb, nodes = cluster
    chief = leader(nodes)
    side = f"name=side,image={IMAGE},publish=8081,command=\"sh -c '{SIDE}'\""
    with service(
        sb,
        nodes[0],
        "pod",
        "--endpoint-mode",
        "dnsrr",
        "--constraint",
        f"node.name!={chief.name}",
        "--sidecar",
        side,
        IMAGE,
        "sh",
        "-c",
        MAIN,
    ):
        task = running_task(nodes[0], "pod")
        host = next(n for n in nodes if n.name == task["node"])
        found = {member(c): c for c in containers(host, "pod")}
        assert set(found) == {"", "side"}
        assert found["side"]["HostConfig"]["NetworkMode"] == f"container:{found['']['Id']}"
        address = task["address"]
        # one address: the main container's port and the sidecar's, the sidecar having read the main page
        # over localhost
        page = wait_for(lambda: http_get(chief, f"http://{address}:8081/"), 60, "the sidecar's page")
        assert f"main {task['id']}" in page and "side via localhost" in page, page
        assert f"main {task['id']}" in (http_get(chief, f"http://{address}:80/") or "")
        # another service resolves the group's DNS name and reaches the sidecar at that address
        probe = "while true; do wget -q -O- http://pod:8081/ && nslookup pod; sleep 1; done"
        with service(sb, nodes[0], "probe", IMAGE, "sh", "-c", probe):
            ptask = running_task(nodes[0], "probe")
            phost = next(n for n in nodes if n.name == ptask["node"])

            def probed():
                out = docker(phost.dockerd, "logs", "--tail", "12", ptask["container_id"], timeout_s=20)
                text = out.stdout.decode() + out.stderr.decode()
                return text if "side via localhost" in text and address in text else None

            wait_for(probed, 60, "the probe service reads pod:8081 at the task's address")
        ps = cli(sb, "n2", "service", "ps", "pod").stdout.decode()
        assert "\\_ side (sidecar" in ps, ps

        # the sidecar dies: the task fails as a whole and a new group (both containers) replaces it
        docker(host.dockerd, "kill", found["side"]["Id"], timeout_s=20)

        def replaced():
            history = api_get(nodes[0], "/services/pod/tasks", all="true")
            failed = [t for t in history if t["id"] == task["id"] and t["state"] == "failed"]
            return failed[0] if failed else None

        failed = wait_for(replaced, 60, "the task failed by its sidecar")
        assert failed["error"].startswith("sidecar side exited with code 137"), failed
        task = running_task(nodes[0], "pod")
        assert task["id"] != failed["id"]
        host = next(n for n in nodes if n.name == task["node"])

        def swapped():
            by_task: dict[str, dict[str, str]] = {}
            for n in nodes:
                for c in containers(n, "pod"):
                    owner = c["Config"]["Labels"]["p2porch.task-id"]
                    by_task.setdefault(owner, {})[member(c)] = c["State"]["Status"]
            old_running = "running" in by_task.get(failed["id"], {}).values()
            return not old_running and by_task.get(task["id"]) == {"": "running", "side": "running"}

        wait_for(swapped, 60, "the old group stopped, the new one running")
        page = wait_for(lambda: http_get(chief, f"http://{task['address']}:8081/"), 60, "the new sidecar")
        assert f"main {task['id']}" in page, page

        # kill the node: the group is replaced as a whole on the other eligible node
        killed = [read_pid(host.p2porch_pidfile), read_pid(host.dockerd.pidfile)]
        for pid in killed:
            assert pid is not None and pid_alive(pid)
            os.kill(pid, signal.SIGKILL)
        started = time.monotonic()
        moved = running_task(chief, "pod", avoid=host.name)
        other = next(n for n in nodes if n.name == moved["node"])
        assert other is not chief and other is not host
        # (an earlier task's exited sidecar may stay on that node for its logs: only the moved task's)
        group = [
            c for c in containers(other, "pod") if c["Config"]["Labels"]["p2porch.task-id"] == moved["id"]
        ]
        running = {member(c): c["State"]["Status"] for c in group}
        assert running == {"": "running", "side": "running"}, running
        page = wait_for(lambda: http_get(chief, f"http://{moved['address']}:8081/"), 60, "the moved sidecar")
        assert f"main {moved['id']}" in page and "side via localhost" in page, page
        print(f"group moved {host.name} -> {other.name} in {time.monotonic() - started:.1f} s")
