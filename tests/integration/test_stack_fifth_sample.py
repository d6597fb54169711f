"""Shapes of the fifth real-world Compose sample deployed on a real one-node sandbox (docs/stack.md,
"Fifth sample"): a link alias (``links: [elasticsearch:es]``) resolving from the linking service, a
service named ``node``, a network and a volume whose ``name:`` an unset variable left empty (the
default names), and a migration the next service waits for (``service_completed_successfully``).
The busybox image is tagged with the files' image names (no registry).

One sandbox (``p2cm``, 10.40.0.0/16) for the module, removed even when a test fails.
"""

from __future__ import annotations

import json

import clusterkit
import pytest
from clusterkit import cli, cli_json, formed_cluster

from p2porch.sandbox.dockerd import docker
from p2porch.sandbox.sandbox import SandboxNode

STACK = "fs"
IMAGES = ("conductor:server", "elasticsearch:2.4", "node:20", "traefik:v1.7", "openfga/openfga:latest")
SLEEP = '["sh", "-c", "exec sleep 1d"]'

COMPOSE = f"""
services:
  server:
    image: conductor:server
    command: {SLEEP}
    environment: [workflow_elasticsearch_url=es:9300]
    links: [elasticsearch:es, node]
    stop_grace_period: 1s
  elasticsearch:
    image: elasticsearch:2.4
    command: {SLEEP}
    stop_grace_period: 1s
  node:
    image: node:20
    command: {SLEEP}
    stop_grace_period: 1s
  traefik:
    image: traefik:v1.7
    command: {SLEEP}
    networks: [proxy]
    volumes: [workspace:/tmp/workspace]
    stop_grace_period: 1s
  migrate:
    image: openfga/openfga:latest
    command: ["sh", "-c", "exit 0"]
  openfga:
    image: openfga/openfga:latest
    command: {SLEEP}
    stop_grace_period: 1s
    depends_on:
      migrate:
        condition: service_completed_successfully
networks:
  proxy:
    name: ${{PROXY_DOCKER_NETWORK}}
volumes:
  workspace:
    name: ${{WORKSPACE_DOCKER_MOUNT}}
"""


def wait_for(predicate, timeout_s: float = 90.0, what: str = "condition"):
    return clusterkit.wait_for(predicate, timeout_s, what, 0.3, retry_on=(AssertionError,))


def running(node: SandboxNode, service: str) -> dict:
    label = f"label=p2porch.stack.service={service}"
    ids = docker(node.dockerd, "ps", "-q", "--no-trunc", "--filter", label).stdout.decode().split()
    assert ids, f"no running {service} container yet"
    return json.loads(docker(node.dockerd, "inspect", ids[0]).stdout)[0]


def in_container(node: SandboxNode, cid: str, script: str) -> str:
    result = docker(node.dockerd, "exec", cid, "sh", "-c", script, check=False, timeout_s=30)
    return result.stdout.decode()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with formed_cluster("p2cm", "10.40.0.0/16", 1) as (sb, nodes):
        for image in IMAGES:
            docker(nodes[0].dockerd, "tag", clusterkit.IMAGE, image)
        workdir = tmp_path_factory.mktemp("fifth")
        (workdir / "docker-compose.yml").write_text(COMPOSE)
        yield sb, nodes[0], workdir


def test_the_fifth_samples_shapes_deploy_and_resolve(cluster):
    sb, node, workdir = cluster
    result = cli(sb, "n1", "--json", "stack", "deploy", "-c", str(workdir / "docker-compose.yml"), STACK)
    assert result.returncode == 0, result.stderr.decode()
    actions = {s["name"]: s["action"] for s in json.loads(result.stdout)["services"]}
    assert set(actions) == {
        f"fs-{s}" for s in ("server", "elasticsearch", "node", "traefik", "migrate", "openfga")
    }
    assert set(actions.values()) == {"created"}
    assert {"fs_proxy", "fs_default"} <= {n["name"] for n in cli_json(sb, "n1", "network", "ls")}

    server = wait_for(lambda: running(node, "server"), what="a running server container")
    es = wait_for(lambda: running(node, "elasticsearch"), what="a running elasticsearch container")
    wait_for(lambda: running(node, "node"), what="a running container of the service named node")

    def alias_resolves() -> bool:
        by_alias = in_container(node, server["Id"], "nslookup es | tail -n +3")
        by_name = in_container(node, server["Id"], "nslookup elasticsearch | tail -n +3")
        addresses = [line.split()[-1] for line in by_name.splitlines() if line.startswith("Address")]
        assert addresses and all(a in by_alias for a in addresses), (by_alias, by_name)
        return True

    wait_for(alias_resolves, what="the link alias es resolving to elasticsearch")
    assert es["Id"]

    traefik = wait_for(lambda: running(node, "traefik"), what="a running traefik container")
    volumes = [(m["Name"], m["Destination"]) for m in traefik["Mounts"] if m["Type"] == "volume"]
    assert volumes == [("fs_workspace", "/tmp/workspace")]  # not an anonymous volume
    wait_for(lambda: running(node, "openfga"), what="openfga started after the migration completed")


def test_stack_rm_removes_the_fifth_samples_stack(cluster):
    sb, _node, _workdir = cluster
    removed = cli_json(sb, "n1", "stack", "rm", STACK)
    assert len(removed["removed"]) == 6
