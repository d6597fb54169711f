"""A shape of the sixth real-world Compose sample deployed on a real one-node sandbox (docs/stack.md,
"Sixth sample"): ``label_file`` labels (two files, a later one winning, ``labels:`` winning over both)
on the task's container, where a proxy or a monitoring agent reads them. The busybox image is tagged
with the file's image name (no registry).

One sandbox (``p2c6``, 10.46.0.0/16) for the module, removed even when a test fails.
"""

from __future__ import annotations

import json

import clusterkit
import pytest
from clusterkit import cli, cli_json, formed_cluster

from p2porch.sandbox.dockerd import docker
from p2porch.sandbox.sandbox import SandboxNode

STACK = "ss"
IMAGE = "ghcr.io/example/web:1"

COMPOSE = f"""
services:
  web:
    image: {IMAGE}
    command: ["sh", "-c", "exec sleep 1d"]
    stop_grace_period: 1s
    label_file: [./web.labels, ./prod/extra.labels]
    labels:
      tier: front
"""


def running(node: SandboxNode, service: str) -> dict:
    label = f"label=p2porch.stack.service={service}"
    ids = docker(node.dockerd, "ps", "-q", "--no-trunc", "--filter", label).stdout.decode().split()
    assert ids, f"no running {service} container yet"
    return json.loads(docker(node.dockerd, "inspect", ids[0]).stdout)[0]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with formed_cluster("p2c6", "10.46.0.0/16", 1) as (sb, nodes):
        docker(nodes[0].dockerd, "tag", clusterkit.IMAGE, IMAGE)
        workdir = tmp_path_factory.mktemp("sixth")
        (workdir / "docker-compose.yml").write_text(COMPOSE)
        (workdir / "web.labels").write_text("traefik.enable=true\ntier=back\nteam=web\n")
        (workdir / "prod").mkdir()
        (workdir / "prod" / "extra.labels").write_text("team='web ops'\n")
        yield sb, nodes[0], workdir


def test_label_file_labels_are_on_the_running_container(cluster):
    sb, node, workdir = cluster
    result = cli(sb, "n1", "--json", "stack", "deploy", "-c", str(workdir / "docker-compose.yml"), STACK)
    assert result.returncode == 0, result.stderr.decode()
    assert b"label_file" not in result.stderr  # no longer ignored with a warning
    container = clusterkit.wait_for(
        lambda: running(node, "web"), 90.0, "a running web container", 0.3, retry_on=(AssertionError,)
    )
    labels = container["Config"]["Labels"]
    assert labels["traefik.enable"] == "true"
    assert labels["team"] == "web ops"  # the later file wins
    assert labels["tier"] == "front"  # labels: wins over the files
    assert labels["p2porch.stack"] == STACK


def test_stack_rm_removes_the_sixth_samples_stack(cluster):
    sb, _node, _workdir = cluster
    assert len(cli_json(sb, "n1", "stack", "rm", STACK)["removed"]) == 1
