"""``network_mode: host`` deployed on a real two-node cluster (sandbox "p9eh", 10.93.5.0/24; root +
docker.io): the task runs in its node's network namespace (``NetworkMode: host``, no port bindings), its
process serves on the node's own address, and it resolves the cluster's services through its node's DNS.
Before h49 the key was ignored with a warning and the task was on the stack's network."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterkit import IMAGE, cli, container_sh, formed_cluster, http_get, stack_container, stack_deploy
from clusterkit import wait_in_stack as wait_for

from p2porch.sandbox.sandbox import Sandbox, SandboxNode

pytestmark = pytest.mark.integration

PORT = 18089
SERVE = f"mkdir -p /www && echo edge-on-$$P2PORCH_NODE > /www/index.html && exec httpd -f -p {PORT} -h /www"
STACK = f"""
services:
  edge:
    image: {IMAGE}
    network_mode: host
    command: ["sh", "-c", "{SERVE}"]
    ports: ["{PORT}:{PORT}"]
    stop_grace_period: 1s
  client:
    image: {IMAGE}
    command: ["sleep", "3600"]
    stop_grace_period: 1s
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, list[SandboxNode], Path]]:
    with formed_cluster("p9eh", "10.93.5.0/24", 2) as (sb, nodes):
        workdir = tmp_path_factory.mktemp("p9eh")
        (workdir / "docker-compose.yml").write_text(STACK)
        yield sb, nodes, workdir


def edge_container(nodes: list[SandboxNode]) -> tuple[SandboxNode, dict]:
    for node in nodes:
        try:
            return node, stack_container(node, "edge")
        except AssertionError:
            continue
    raise AssertionError("no running edge container yet")


def test_a_host_network_task_serves_on_its_nodes_address(cluster) -> None:
    sb, nodes, workdir = cluster
    result = stack_deploy(sb, workdir / "docker-compose.yml", "hn")
    assert result.returncode == 0, result.stderr.decode() + cli(sb, "n1", "stack", "ps", "hn").stdout.decode()
    assert "host network (service edge)" in result.stderr.decode()
    assert {s["name"] for s in json.loads(result.stdout)["services"]} == {"hn-edge", "hn-client"}
    node, edge = wait_for(lambda: edge_container(nodes), "a running edge container")
    assert edge["HostConfig"]["NetworkMode"] == "host" and not edge["HostConfig"].get("PortBindings")
    other = next(n for n in nodes if n is not node)
    page = wait_for(
        lambda: http_get(other, f"http://{node.address}:{PORT}/") or None,
        "the page on the edge node's address",
    )
    assert page.strip() == f"edge-on-{node.name}"
    resolv = container_sh(node, edge["Id"], "cat /etc/resolv.conf")
    search = next(line for line in resolv.splitlines() if line.startswith("search "))
    assert "p2p" in search.split(), resolv  # its node's cluster DNS, as the other tasks have
    answer = wait_for(
        lambda: "Address" in container_sh(node, edge["Id"], "nslookup hn-client.p2p | tail -n +3") or None,
        "hn-client resolving from the host-network task",
    )
    assert answer
    assert cli(sb, "n1", "stack", "rm", "hn").returncode == 0
