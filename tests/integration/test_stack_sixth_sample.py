"""Shapes of the sixth real-world Compose sample deployed on a real one-node sandbox (docs/stack.md,
"Sixth sample"): ``label_file`` labels (two files, a later one winning, ``labels:`` winning over both)
on the task's container, where a proxy or a monitoring agent reads them; a ``container_name``
(``mysql``) the other service reaches the database by; a Go string constant in an environment value
(``{{`{{.Swarm.NodeAddr}}`}}``) printed as Swarm prints it. The busybox image is tagged with the
file's image names (no registry).

One sandbox (``p2c6``, 10.46.0.0/16) for the module, removed even when a test fails.
"""

from __future__ import annotations

import clusterkit
import pytest
from clusterkit import cli, cli_json, container_sh, formed_cluster, stack_container

from p2porch.sandbox.dockerd import docker

STACK = "ss"
IMAGE = "ghcr.io/example/web:1"
DB_IMAGE = "openzipkin/zipkin-mysql:latest"

COMPOSE = f"""
services:
  web:
    image: {IMAGE}
    command: ["sh", "-c", "exec sleep 1d"]
    stop_grace_period: 1s
    label_file: [./web.labels, ./prod/extra.labels]
    labels:
      tier: front
    environment:
      MYSQL_HOST: mysql
      HOSTNAME_COMMAND: "docker info -f '{{{{`{{{{.Swarm.NodeAddr}}}}`}}}}'"
  storage:
    image: {DB_IMAGE}
    command: ["sh", "-c", "exec sleep 1d"]
    stop_grace_period: 1s
    container_name: mysql
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with formed_cluster("p2c6", "10.46.0.0/16", 1) as (sb, nodes):
        for image in (IMAGE, DB_IMAGE):
            docker(nodes[0].dockerd, "tag", clusterkit.IMAGE, image)
        workdir = tmp_path_factory.mktemp("sixth")
        (workdir / "docker-compose.yml").write_text(COMPOSE)
        (workdir / "web.labels").write_text("traefik.enable=true\ntier=back\nteam=web\n")
        (workdir / "prod").mkdir()
        (workdir / "prod" / "extra.labels").write_text("team='web ops'\n")
        yield sb, nodes[0], workdir


def wait_for(predicate, what: str):
    return clusterkit.wait_for(predicate, 90.0, what, 0.3, retry_on=(AssertionError,))


def test_the_sixth_samples_shapes_deploy_and_resolve(cluster):
    sb, node, workdir = cluster
    result = cli(sb, "n1", "--json", "stack", "deploy", "-c", str(workdir / "docker-compose.yml"), STACK)
    assert result.returncode == 0, result.stderr.decode()
    assert b"label_file" not in result.stderr  # no longer ignored with a warning
    container = wait_for(lambda: stack_container(node, "web"), "a running web container")
    labels = container["Config"]["Labels"]
    assert labels["traefik.enable"] == "true"
    assert labels["team"] == "web ops"  # the later file wins
    assert labels["tier"] == "front"  # labels: wins over the files
    assert labels["p2porch.stack"] == STACK
    env = dict(e.split("=", 1) for e in container["Config"]["Env"])
    assert env["HOSTNAME_COMMAND"] == "docker info -f '{{.Swarm.NodeAddr}}'"

    storage = wait_for(lambda: stack_container(node, "storage"), "a running storage container")
    assert storage["Name"] != "/mysql"  # the task container keeps p2porch's name

    def container_name_resolves() -> bool:
        by_alias = container_sh(node, container["Id"], "nslookup mysql | tail -n +3")
        by_name = container_sh(node, container["Id"], "nslookup storage | tail -n +3")
        addresses = [line.split()[-1] for line in by_name.splitlines() if line.startswith("Address")]
        assert addresses and all(a in by_alias for a in addresses), (by_alias, by_name)
        return True

    wait_for(container_name_resolves, "the container_name mysql resolving to the storage service")


def test_stack_rm_removes_the_sixth_samples_stack(cluster):
    sb, _node, _workdir = cluster
    assert len(cli_json(sb, "n1", "stack", "rm", STACK)["removed"]) == 2
