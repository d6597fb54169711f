"""Shapes of the sixth real-world Compose sample deployed on a real one-node sandbox (docs/stack.md,
"Sixth sample"): ``label_file`` labels (two files, a later one winning, ``labels:`` winning over both)
on the task's container, where a proxy or a monitoring agent reads them; a ``container_name``
(``mysql``) the other service reaches the database by; a Go string constant in an environment value
(``{{`{{.Swarm.NodeAddr}}`}}``) printed as Swarm prints it. The busybox image is tagged with the
file's image names (no registry).

One sandbox (``p2c6``, 10.46.0.0/16) for the module, removed even when a test fails.
"""

from __future__ import annotations

from clusterkit import cli, cli_json, compose_sample_fixture, container_sh, stack_container
from clusterkit import wait_in_stack as wait_for

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


cluster = compose_sample_fixture(
    "p2c6",
    "10.46.0.0/16",
    (IMAGE, DB_IMAGE),
    {
        "docker-compose.yml": COMPOSE,
        "web.labels": "traefik.enable=true\ntier=back\nteam=web\n",
        "prod/extra.labels": "team='web ops'\n",
    },
)


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
