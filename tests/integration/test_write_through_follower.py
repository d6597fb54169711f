"""A write through a node that lags sees every write acknowledged before it (control/read_barrier.py,
``linearizable_writes``): a raw API client that creates an object through one node and changes or
removes it through another at once never gets "no such service" (404), and a compare-and-set
(``expected_version``, ``service update --if-version``) is checked against a copy at least as new as the
version the create answered.

Three real daemons in a sandbox (``p51w``, 10.95.22.0/24), each a separate process with its own Raft
store. Each round creates a service (and a secret) through one node and at once updates the service with
the version the create answered, then removes both, through another node; the pairs are leader ->
follower, follower -> follower and follower -> leader, the roles read again for each round. A round
during which any node's (leader, term) changed is redone (at most ``MAX_REDONE``): through a leader
elected a moment ago a write may miss one acknowledged just before (the window docs/raft.md "Writes"
documents), which this test does not measure. On main the write handlers looked the record up in
the second node's own copy before proposing: a follower that had not applied the create yet answered 404
"no such service" / "no such secret": 16 and 18 of 270 writes in two runs (the second: all through a
follower, none through the leader, which applied the create before any follower learned it committed).
"""

from __future__ import annotations

import base64
import contextlib
import statistics
import time
from collections import Counter, defaultdict

import httpx
import pytest
from clusterkit import IMAGE, api, cluster_fixture, leader_and_followers

from p2porch.sandbox.sandbox import Sandbox, SandboxNode

pytestmark = pytest.mark.integration

cluster = cluster_fixture("p51w", "10.95.22.0/24", 3)
ROUNDS = 30  # create-then-write rounds per pair of nodes
MAX_REDONE = 10  # rounds redone after an election; more: the rest count as they are
SECRET = {"data": base64.b64encode(b"s3cret").decode()}


def answer(response: httpx.Response, what: str, failed: list[str]) -> dict | None:
    """The JSON of a 200, else None with the failure noted."""
    if response.status_code == 200:
        return response.json()
    failed.append(f"{what}: {response.status_code} {response.text[:160]}")
    return None


def epoch(clients: dict[str, httpx.Client]) -> list[tuple[str | None, int]]:
    """Each node's (leader, term), from its own copy: a round whose epochs differ spanned an election."""
    seen = []
    for client in clients.values():
        cluster = client.get("/status", params={"stale": "true"}).json()["cluster"]
        seen.append((cluster.get("leader"), int(cluster.get("term") or 0)))
    return seen


def test_writes_through_another_node_at_once_see_the_create(
    cluster: tuple[Sandbox, list[SandboxNode]],
) -> None:
    nodes = cluster[1]
    failed: list[str] = []
    took: dict[tuple[str, str], list[float]] = defaultdict(list)  # the second node's update, answered
    redone: list[str] = []  # rounds that spanned an election (docs/raft.md "Writes": a new leader's window)
    with contextlib.ExitStack() as stack:
        clients = {n.name: stack.enter_context(api(n)) for n in nodes}
        for p in range(3):
            i = 0
            while i < ROUNDS:
                leader, followers = leader_and_followers(nodes)  # roles read again for each round
                first, then = [(leader, followers[0]), (followers[0], followers[1]), (followers[1], leader)][
                    p
                ]
                before = epoch(clients)
                round_failed = write_round(
                    clients[first.name],
                    clients[then.name],
                    f"w{p}x{i}r{len(redone)}",
                    f"{first.name} then {then.name}",
                    took[(first.name, then.name)],
                )
                after = epoch(clients)
                if len(set(before + after)) > 1 and len(redone) < MAX_REDONE:
                    redone.append(f"w{p}x{i}: {before} -> {after} ({len(round_failed)} failed)")
                    continue  # an election during the round: the same round again, roles read again
                failed += round_failed
                i += 1
    per_pair = Counter(f.split(": ", 1)[0].split(" via ", 1)[1] for f in failed)
    medians = {f"{a}->{b}": f"{1000 * statistics.median(t):.1f} ms" for (a, b), t in took.items() if t}
    print(f"update through the second node, median: {medians}")
    print(f"rounds redone after an election: {len(redone)}: {redone[:3]}")
    print(f"{len(failed)} failed writes of {3 * 3 * ROUNDS} ({dict(per_pair)}): {failed[:5]}")
    assert not failed, f"{len(failed)} writes through the second node failed: {failed[:5]}"


def write_round(
    create_via: httpx.Client, write_via: httpx.Client, name: str, nodes: str, took: list[float]
) -> list[str]:
    """Create a service and a secret through one node, update and remove them through the other at
    once: the writes that failed."""
    failed: list[str] = []
    via = f"{name} via {nodes}"
    created = create_via.post("/services", json={"name": name, "image": IMAGE, "replicas": 0})
    assert created.status_code == 200, created.text
    version = created.json()["version"]  # the client's last acknowledged version
    started = time.monotonic()
    updated = write_via.post(
        f"/services/{name}/update", json={"labels": {"round": name}, "expected_version": version}
    )
    if answer(updated, f"{via}: update --if-version {version}", failed) is not None:
        took.append(time.monotonic() - started)
    answer(write_via.delete(f"/services/{name}"), f"{via}: rm", failed)
    made = create_via.post("/objects/secret", json={"name": name, **SECRET})
    assert made.status_code == 200, made.text
    answer(write_via.delete(f"/objects/secret/{name}"), f"{via}: secret rm", failed)
    return failed
