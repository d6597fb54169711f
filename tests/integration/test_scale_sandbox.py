"""A 20-node sandbox cluster with real engines (issue 19): parallel joins, every node ready, a service
spread over all of them, and ``node ls`` in natural order (n2 before n10).

One sandbox (``p2sc``, 10.39.0.0/16: a /24 would fit too, the /16 is the one ``--nodes 50`` uses) for
the module; the cluster is formed the way ``p2porch sandbox up --init`` forms it (init on n1, the
other 19 join through it, several at once).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from clusterkit import IMAGE, api_get, cli, cli_json, wait_for

from p2porch.sandbox.cluster import Formation, form_cluster, wait_ready
from p2porch.sandbox.dockerd import docker
from p2porch.sandbox.sandbox import Sandbox, SandboxNode

NODES = 20
NAMES = [f"n{i}" for i in range(1, NODES + 1)]


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[Sandbox, list[SandboxNode], Formation]]:
    sb = Sandbox("p2sc", subnet="10.39.0.0/16")
    try:
        nodes = sb.up(NODES)
        formation = form_cluster(nodes)
        print("formation:", json.dumps(formation.to_dict()))
        yield sb, nodes, formation
    finally:
        sb.down()


def test_twenty_nodes_join_at_once_and_all_become_ready(cluster):
    sb, nodes, formation = cluster
    assert formation.failed == {}
    assert sorted(formation.join_s) == sorted(NAMES[1:])
    wait_ready(nodes[0], NODES, timeout_s=120)
    # every node holds the whole membership, not just the one it joined through
    for node in (nodes[1], nodes[NODES // 2], nodes[-1]):
        wait_for(lambda node=node: len(api_get(node, "/nodes")) == NODES, 60, f"{NODES} nodes on {node.name}")
    status = cli_json(sb, "n1", "status")["cluster"]
    assert status["has_quorum"] and status["nodes"] == NODES


def own_progress(node: SandboxNode) -> dict:
    """``node``'s own Raft progress as its ``node ls`` shows it (applied index, entries behind, lag)."""
    (row,) = [r for r in api_get(node, "/nodes") if r["self"]]
    return row["raft_progress"]


def wait_applied(node: SandboxNode, index: int, timeout_s: float) -> tuple[float, dict]:
    """Wait until ``node`` applied ``index``; returns the seconds waited and its progress at the first
    look. ``node ls`` answers from the node's own replica (docs/raft.md, "Lag"), which may be behind."""
    started = time.monotonic()
    seen = [own_progress(node)]

    def applied() -> bool:
        seen.append(own_progress(node))
        return bool(seen[-1]["applied_index"] >= index)

    try:
        wait_for(applied, timeout_s, f"{node.name} at index {index}")
    except AssertionError as exc:
        raise AssertionError(f"{node.name} not at index {index}: first {seen[0]}, last {seen[-1]}") from exc
    return time.monotonic() - started, seen[0]


def test_node_ls_is_in_natural_order(cluster):
    sb, nodes, _ = cluster
    # n1 lists all 20 nodes (the test before waited for it), so a node that applied n1's commit index holds
    # every node record. n7 answers from its own replica and nobody waited for it: once (CI of 357e3a9,
    # Dec 5) it listed the nodes before the last six joins. The wait (its time is printed) takes that
    # out of the order check; a node still behind after the bound fails with its progress.
    commit = api_get(nodes[0], "/status")["cluster"]["commit_index"]
    waited_s, first = wait_applied(nodes[6], commit, timeout_s=20)
    print(f"n7 applied n1's commit index {commit} after {waited_s:.2f} s (first look: {first})")
    table = cli(sb, "n7", "node", "ls")
    assert table.returncode == 0, table.stderr.decode()
    names = [line.split()[0] for line in table.stdout.decode().splitlines()[1:] if line.strip()]
    assert names == NAMES  # n1, n2, ..., n9, n10, ... n20: not n1, n10, n11, ...
    assert [r["name"] for r in cli_json(sb, "n7", "node", "ls")] == NAMES


def test_a_service_spreads_one_replica_over_every_node(cluster):
    sb, nodes, _ = cluster
    wait_ready(nodes[0], NODES, timeout_s=120)
    created = cli(
        sb, "n1", "service", "create", "--name", "spread", "--replicas", str(NODES), IMAGE, "sleep", "3600"
    )
    assert created.returncode == 0, created.stderr.decode()
    try:

        def all_running() -> list[dict] | None:
            tasks = api_get(nodes[0], "/services/spread/tasks", all="false")
            ok = len(tasks) == NODES and all(t["state"] == "running" for t in tasks)
            return tasks if ok else None

        tasks = wait_for(all_running, 240, f"{NODES} running replicas", interval_s=1.0)
        per_node = Counter(t["node"] for t in tasks)
        assert sorted(per_node) == sorted(NAMES) and set(per_node.values()) == {1}, per_node
        # the engines agree: each node's own dockerd runs exactly one container of the service
        for node in nodes:
            ids = docker(node.dockerd, "ps", "-q", "--filter", "label=p2porch.service=spread").stdout.split()
            assert len(ids) == 1, f"{node.name}: {len(ids)} containers"
    finally:
        cli(sb, "n1", "service", "rm", "spread")
