"""The node's Docker network made by the one-shot warm-up after the join (sandbox ``p51fe``,
10.95.33.0/24, 2 nodes, ``overlay.bridge_warm_after_s = 20``).

A joined node with no task has no network during the formation, and has it once the warm-up ran (a
``docker run --network p2porch`` by hand works then, and the node's first task does not pay for it); a
task placed before the warm-up still starts, its start making the network on first need.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator

import pytest
from clusterkit import FAST_STOP, IMAGE, formed_cluster, service, wait_for
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

WARM_AFTER_S = 20.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[Sandbox, list[SandboxNode], float]]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("P2PORCH_OVERLAY_BRIDGE_WARM_AFTER_S", str(WARM_AFTER_S))
        started = time.monotonic()  # before the daemons start: their warm-ups come after this
        with formed_cluster("p51fe", "10.95.33.0/24", size=2) as formed:
            yield (*formed, started)


def has_network(node: SandboxNode) -> bool:
    names = docker(node.dockerd, "network", "ls", "--format", "{{.Name}}", timeout_s=20).stdout.decode()
    return "p2porch" in names.split()


def test_a_task_before_the_warm_up_starts_and_an_idle_node_has_the_network_after_it(cluster) -> None:
    sb, nodes, started = cluster
    n1, n2 = nodes
    assert time.monotonic() - started < WARM_AFTER_S, "the formation took longer than the warm-up delay"
    assert not has_network(n1) and not has_network(n2)  # not in the join's window
    with service(sb, nodes, "early", "--constraint", "node.name==n2", *FAST_STOP, IMAGE, "sleep", "3600"):
        [task] = running(n1, "early", 1)
        assert task["node"] == "n2" and has_network(n2)  # made on first need, before the warm-up
        made = wait_for(lambda: has_network(n1) or None, timeout_s=WARM_AFTER_S + 30, what="n1's warm-up")
        print(f"\nn1's network came {time.monotonic() - started:.1f} s after the daemons' start ({made})")
        assert time.monotonic() - started >= WARM_AFTER_S - 1
        # a container attached by hand to the idle node's network runs, as with the network made at start
        out = docker(
            n1.dockerd, "run", "--rm", "--network", "p2porch", IMAGE, "echo", "attached", timeout_s=60
        ).stdout.decode()
        assert "attached" in out
