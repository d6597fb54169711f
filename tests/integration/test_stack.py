"""Compose stacks on a 3-node sandbox (issue 8): deploy, redeploy diff, short names, unsupported keys, rm.

One sandbox cluster (``p2st``, 10.67.0.0/24) for the module; tests run in file order on one stack
``shop``: ``web`` fetches ``backend`` by its service name and serves what it got; ``backend`` is
constrained to the node labelled ``tier=back``. The sandbox (namespaces, dockerds, daemons, containers)
is removed even when a test fails.

Needs the daemon and CLI wiring of stacks (``StackOps``/``stack_endpoints`` in daemon.py,
``add_stack_commands`` in cli/stack.py); ``test_short_names_resolve_inside_the_stack`` also needs the DNS
aliases and search domain of stack members (``p2porch.stack.stack_dns_aliases``/``stack_dns_search`` in
member/views.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import clusterkit
import httpx
import pytest
from clusterkit import cli, cli_json, formed_cluster

from p2porch.sandbox.dockerd import docker
from p2porch.sandbox.sandbox import Sandbox, SandboxNode

STACK = "shop"

# web polls backend by its p2porch service name (and by its short name) and serves the last answers
COMPOSE = """
version: "3.8"
services:
  backend:
    image: p2porch/busybox:latest
    command:
      - sh
      - -c
      - mkdir -p /www && echo backend-on-$$P2PORCH_NODE > /www/index.html && exec httpd -f -p 80 -h /www
    stop_grace_period: 1s
    deploy:
      replicas: 1
      placement:
        constraints: [node.labels.tier==back]
  web:
    image: p2porch/busybox:latest
    environment:
      GREETING: "hello"
    command:
      - sh
      - -c
      - >-
        mkdir -p /www; echo $$GREETING > /www/greeting.html;
        (while true; do
        wget -q -O /www/full.tmp http://shop-backend/ && mv /www/full.tmp /www/full.html;
        wget -q -O /www/short.tmp http://backend/ && mv /www/short.tmp /www/short.html;
        sleep 1; done) &
        exec httpd -f -p 80 -h /www
    stop_grace_period: 1s
    deploy:
      replicas: 2
      placement:
        constraints: [node.labels.tier!=back]
      update_config:
        parallelism: 1
        delay: 1s
        order: start-first
"""


# ----------------------------------------------------------------------------- helpers


def wait_for(predicate, timeout_s: float = 90.0, what: str = "condition"):
    return clusterkit.wait_for(predicate, timeout_s, what, 0.3, retry_on=(AssertionError,))


def stack_containers(node: SandboxNode, *, service: str | None = None) -> list[dict]:
    """``docker inspect`` of the containers of the stack (any state) on one node's engine."""
    label = f"label=p2porch.stack.service={service}" if service else f"label=p2porch.stack={STACK}"
    ids = docker(node.dockerd, "ps", "-aq", "--no-trunc", "--filter", label).stdout.decode().split()
    if not ids:
        return []
    found = docker(node.dockerd, "inspect", *ids, check=False).stdout
    return json.loads(found) if found.strip() else []


def services_by_name(sb: Sandbox) -> dict[str, dict]:
    return {s["name"]: s for s in cli_json(sb, "n1", "service", "ls")}


def running_stack(sb: Sandbox) -> list[dict]:
    """Wait until every task of the stack that should run does (1 backend + 2 web) and return them."""

    def done():
        tasks = cli_json(sb, "n1", "stack", "ps", STACK, "--running")
        names = sorted(t["service"] for t in tasks)
        ok = names == ["shop-backend", "shop-web", "shop-web"] and all(t["state"] == "running" for t in tasks)
        if not ok:  # shown as the last value if this times out
            raise AssertionError(
                [(t["name"], t["node"], t["state"], t["error"] or t["message"]) for t in tasks]
            )
        return tasks

    return wait_for(done, what="the stack's 3 tasks running")


def read_in_container(nodes: list[SandboxNode], task: dict, path: str) -> str:
    node = next(n for n in nodes if n.name == task["node"])
    result = docker(node.dockerd, "exec", task["container_id"], "cat", path, check=False)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode().strip()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with formed_cluster("p2st", "10.67.0.0/24") as (sb, nodes):
        result = cli(sb, "n1", "node", "update", "n3", "--label-add", "tier=back")
        assert result.returncode == 0, result.stderr.decode()
        yield sb, nodes, tmp_path_factory.mktemp("stack")


def write_compose(workdir: Path, name: str, text: str) -> str:
    path = workdir / name
    path.write_text(text)
    return str(path)


# ----------------------------------------------------------------------------- tests
def test_deploy_runs_both_services_and_web_reaches_backend_by_name(cluster):
    sb, nodes, workdir = cluster
    result = cli_json(
        sb, "n1", "stack", "deploy", "-d", "-c", write_compose(workdir, "stack.yml", COMPOSE), STACK
    )
    assert {s["name"]: s["action"] for s in result["services"]} == {
        "shop-backend": "created",
        "shop-web": "created",
    }
    tasks = running_stack(sb)
    by_service: dict[str, list[dict]] = {}
    for task in tasks:
        by_service.setdefault(task["service"], []).append(task)
    # Constraints: backend only on n3 (tier=back), web never there.
    assert [t["node"] for t in by_service["shop-backend"]] == ["n3"]
    assert all(t["node"] in ("n1", "n2") for t in by_service["shop-web"])
    # The update config and labels reached the stored spec.
    web = services_by_name(sb)["shop-web"]
    assert web["spec"]["update"]["order"] == "start-first"
    assert web["spec"]["update"]["delay_s"] == 1.0
    assert web["spec"]["labels"] == {"p2porch.stack": STACK, "p2porch.stack.service": "web"}
    # Each web task fetched the backend (on n3) by its service name over the overlay.
    for task in by_service["shop-web"]:
        page = wait_for(
            lambda task=task: read_in_container(nodes, task, "/www/full.html"),
            what=f"{task['name']} to fetch shop-backend",
        )
        assert page == "backend-on-n3"
    assert cli_json(sb, "n2", "stack", "ls") == [{"name": STACK, "services": 2, "running": 3, "desired": 3}]
    containers = stack_containers(nodes[2], service="backend")
    assert containers and containers[0]["Config"]["Labels"]["p2porch.stack"] == STACK


def test_short_names_resolve_inside_the_stack(cluster):
    """Needs the DNS aliases/search domain of stack members wired in member/views.py."""
    sb, nodes, _ = cluster
    tasks = running_stack(sb)
    for task in (t for t in tasks if t["service"] == "shop-web"):
        page = wait_for(
            lambda task=task: read_in_container(nodes, task, "/www/short.html"),
            what=f"{task['name']} to fetch backend by its short name",
        )
        assert page == "backend-on-n3"


def test_redeploy_with_one_changed_service_updates_only_that_one(cluster):
    sb, nodes, workdir = cluster
    before = services_by_name(sb)
    same = cli_json(sb, "n1", "stack", "deploy", "-d", "-c", str(workdir / "stack.yml"), STACK)
    assert {s["action"] for s in same["services"]} == {"unchanged"}
    assert {n: s["version"] for n, s in services_by_name(sb).items()} == {
        n: s["version"] for n, s in before.items()
    }

    changed = write_compose(workdir, "stack-v2.yml", COMPOSE.replace('GREETING: "hello"', 'GREETING: "v2"'))
    result = cli_json(sb, "n1", "stack", "deploy", "-d", "-c", changed, STACK)
    assert {s["name"]: s["action"] for s in result["services"]} == {
        "shop-backend": "unchanged",
        "shop-web": "updated",
    }
    after = services_by_name(sb)
    assert after["shop-backend"]["version"] == before["shop-backend"]["version"]
    assert after["shop-web"]["version"] > before["shop-web"]["version"]
    backend_ids = {c["Id"] for c in stack_containers(nodes[2], service="backend")}

    def rolled_out():
        tasks = running_stack(sb)
        web = [t for t in tasks if t["service"] == "shop-web"]
        pages = {read_in_container(nodes, t, "/www/greeting.html") for t in web}
        return tasks if pages == {"v2"} else None

    wait_for(rolled_out, what="web rolled out with GREETING=v2")
    # backend's container was not touched.
    running_backend = {
        c["Id"] for c in stack_containers(nodes[2], service="backend") if c["State"]["Running"]
    }
    assert running_backend and running_backend <= backend_ids


def test_an_unknown_key_is_reported_by_name_and_changes_nothing(cluster):
    sb, nodes, workdir = cluster
    before = {n: s["version"] for n, s in services_by_name(sb).items()}
    bad = write_compose(
        workdir, "bad.yml", COMPOSE.replace("    stop_grace_period: 1s\n", "    stop_grace_periodd: 1s\n", 1)
    )
    result = cli(sb, "n1", "stack", "deploy", "-d", "-c", bad, STACK)
    assert result.returncode == 2, result.stderr.decode()
    assert "services.backend.stop_grace_periodd: unknown key" in result.stderr.decode()
    # The daemon never parses YAML: a client that sends a Compose file is refused, naming the field.
    with httpx.Client(
        transport=httpx.HTTPTransport(uds=nodes[0].p2porch_socket), base_url="http://p2porch/v1", timeout=15
    ) as client:
        response = client.post(f"/stacks/{STACK}", json={"compose": Path(bad).read_text()})
    assert response.status_code == 400
    assert response.json()["field"] == "compose"
    assert {n: s["version"] for n, s in services_by_name(sb).items()} == before


def test_stack_rm_removes_every_service_and_container(cluster):
    sb, nodes, _ = cluster
    result = cli_json(sb, "n1", "stack", "rm", STACK)
    assert sorted(result["removed"]) == ["shop-backend", "shop-web"]
    assert services_by_name(sb) == {}
    assert cli_json(sb, "n1", "stack", "ls") == []
    wait_for(
        lambda: not any(stack_containers(n) for n in nodes),
        what="every container of the stack removed from every node",
    )
    missing = cli(sb, "n1", "stack", "ps", STACK)
    assert (missing.returncode, missing.stderr) == (1, b"nothing found in stack: shop\n")
