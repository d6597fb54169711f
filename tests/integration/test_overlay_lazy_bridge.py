"""The node's Docker network made on its first container, not at its join (issue 19; sandbox ``p51j``,
10.95.21.0/25, 2 nodes).

A joiner's overlay comes up (VXLAN device, peers, iptables rules) without ``docker network create``:
dockerd's bridge rules and store were ~40-50 ms of CPU per join. The network comes with the node's
first task on it; the node's DNS listens on its gateway before that (``IP_FREEBIND``) and answers the
task's resolver there once the bridge exists; a network deleted by hand comes back for the next task
(the failed start has it checked again). The daemons run with the warm-up off
(``overlay.bridge_warm_after_s = -1``): test_overlay_bridge_warm.py has it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator

import pytest
from clusterkit import (
    DNSRR,
    FAST_STOP,
    IMAGE,
    SERVE,
    container_sh,
    containers,
    formed_cluster,
    service,
    wait_for,
)
from clusterkit import running_tasks as running

from p2porch.sandbox.dockerd import docker
from p2porch.sandbox.sandbox import Sandbox, SandboxNode

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, dockerd)"),
    pytest.mark.skipif(
        shutil.which("dockerd", path="/usr/sbin:/usr/bin:/sbin:/bin") is None, reason="no dockerd"
    ),
]


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[Sandbox, list[SandboxNode]]]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("P2PORCH_OVERLAY_BRIDGE_WARM_AFTER_S", "-1")  # on first need only
        with formed_cluster("p51j", "10.95.21.0/25", size=2) as formed:
            yield formed


def has_network(node: SandboxNode) -> bool:
    names = docker(node.dockerd, "network", "ls", "--format", "{{.Name}}", timeout_s=20).stdout.decode()
    return "p2porch" in names.split()


def gateway(node: SandboxNode) -> str:
    found = docker(node.dockerd, "network", "inspect", "p2porch", timeout_s=20).stdout
    return json.loads(found)[0]["IPAM"]["Config"][0]["Gateway"]


def test_a_joined_node_has_no_docker_network_until_its_first_task(cluster) -> None:
    sb, nodes = cluster
    n1, n2 = nodes
    time.sleep(3)  # the overlay's first pass came 0.5-1 s after each join: made its network on main
    assert not has_network(n1) and not has_network(n2)
    with service(
        sb, nodes, "web", "--constraint", "node.name==n2", *DNSRR, *FAST_STOP, IMAGE, "sh", "-c", SERVE
    ):
        [task] = running(n1, "web", 1)
        assert task["node"] == "n2" and has_network(n2) and not has_network(n1)
        # the task's resolver is n2's gateway, bound by n2's DNS before the bridge existed
        [container] = containers(n2, "web")
        assert container["HostConfig"]["Dns"] == [gateway(n2)]

        def resolved() -> str | None:
            out = container_sh(n2, container["Id"], "nslookup web")
            return out if task["address"] in out else None

        print(wait_for(resolved, what="web resolved through n2's gateway"))


def test_a_network_deleted_by_hand_comes_back_for_the_next_task(cluster) -> None:
    sb, nodes = cluster
    n1, n2 = nodes
    assert has_network(n2)  # the previous test's task made it
    docker(n2.dockerd, "network", "rm", "p2porch", timeout_s=30)
    started = time.monotonic()
    with service(sb, nodes, "again", "--constraint", "node.name==n2", *FAST_STOP, IMAGE, "sleep", "3600"):
        running(n1, "again", 1, timeout_s=90.0)
        print(f"\nthe task ran {time.monotonic() - started:.1f} s after the network was deleted by hand")
    assert has_network(n2)
