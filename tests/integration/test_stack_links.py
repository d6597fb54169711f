"""Compose links seen only by the linking service, on a real one-node sandbox (docs/dns.md, "Scoped to the
querier's networks"): Tinode's shape, two exporters each linking ``tinode-N:tinode.host``. busybox
``nslookup tinode.host`` inside each exporter's container answers its own target's address; inside a
service without links the alias does not resolve. The busybox image is tagged with the file's image
names (no registry).

One sandbox (``p3lk``, 10.75.0.0/16) for the module, removed even when a test fails.
"""

from __future__ import annotations

import clusterkit
import pytest
from clusterkit import cli, cli_json, formed_cluster

from p2porch.sandbox.dockerd import docker
from p2porch.sandbox.sandbox import SandboxNode

STACK = "chat"
IMAGES = ("tinode:server", "tinode:exporter")
SLEEP = '["sh", "-c", "exec sleep 1d"]'

COMPOSE = f"""
services:
  tinode-0: {{image: "tinode:server", command: {SLEEP}, stop_grace_period: 1s}}
  tinode-1: {{image: "tinode:server", command: {SLEEP}, stop_grace_period: 1s}}
  exporter-0:
    image: tinode:exporter
    command: {SLEEP}
    links: ["tinode-0:tinode.host"]
    stop_grace_period: 1s
  exporter-1:
    image: tinode:exporter
    command: {SLEEP}
    links: ["tinode-1:tinode.host"]
    stop_grace_period: 1s
  web: {{image: "tinode:exporter", command: {SLEEP}, stop_grace_period: 1s}}
"""


def wait_for(predicate, timeout_s: float = 90.0, what: str = "condition"):
    return clusterkit.wait_for(predicate, timeout_s, what, 0.3, retry_on=(AssertionError,))


def running(node: SandboxNode, service: str) -> str:
    label = f"label=p2porch.stack.service={service}"
    ids = docker(node.dockerd, "ps", "-q", "--no-trunc", "--filter", label).stdout.decode().split()
    assert ids, f"no running {service} container yet"
    return ids[0]


def lookup(node: SandboxNode, cid: str, name: str) -> list[str]:
    """The addresses busybox ``nslookup`` prints for ``name`` inside container ``cid`` (after the
    server's own lines), each once; [] when it cannot find it."""
    result = docker(node.dockerd, "exec", cid, "nslookup", name, check=False, timeout_s=30)
    lines = result.stdout.decode().splitlines()[2:]
    # each search domain that answers prints its addresses (a stack's name also answers under
    # ``<stack>.p2p``: docs/dns.md): the set of them, sorted
    return sorted({line.split()[-1] for line in lines if line.startswith("Address")})


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with formed_cluster("p3lk", "10.75.0.0/16", 1) as (sb, nodes):
        for image in IMAGES:
            docker(nodes[0].dockerd, "tag", clusterkit.IMAGE, image)
        workdir = tmp_path_factory.mktemp("links")
        (workdir / "compose.yaml").write_text(COMPOSE)
        yield sb, nodes[0], workdir


def test_each_exporter_resolves_tinode_host_to_its_own_link(cluster):
    sb, node, workdir = cluster
    result = cli(sb, "n1", "--json", "stack", "deploy", "-c", str(workdir / "compose.yaml"), STACK)
    assert result.returncode == 0, result.stderr.decode()
    assert "links" not in result.stderr.decode()  # both links honoured: no warning
    containers = {s: wait_for(lambda s=s: running(node, s), what=f"a running {s}") for s in
                  ("tinode-0", "tinode-1", "exporter-0", "exporter-1", "web")}  # fmt: skip

    def resolved() -> dict[str, list[str]]:
        targets = {n: lookup(node, containers["web"], f"{STACK}-{n}") for n in ("tinode-0", "tinode-1")}
        assert all(targets.values()) and targets["tinode-0"] != targets["tinode-1"], targets
        assert lookup(node, containers["exporter-0"], "tinode.host") == targets["tinode-0"]
        assert lookup(node, containers["exporter-1"], "tinode.host") == targets["tinode-1"]
        return targets

    targets = wait_for(resolved, what="each exporter's tinode.host answering its own tinode")
    assert lookup(node, containers["web"], "tinode.host") == []  # a service without the link: not found
    spec = cli_json(sb, "n1", "service", "inspect", f"{STACK}-exporter-0")["spec"]
    assert spec["links"] == ["chat-tinode-0:tinode.host"] and targets
    assert "links" not in cli_json(sb, "n1", "service", "inspect", f"{STACK}-tinode-0")["spec"]


def test_stack_rm_removes_the_links_stack(cluster):
    sb, _node, _workdir = cluster
    removed = cli_json(sb, "n1", "stack", "rm", STACK)
    assert len(removed["removed"]) == 5
