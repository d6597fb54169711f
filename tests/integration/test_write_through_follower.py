"""A write through a node that lags sees every write acknowledged before it (control/read_barrier.py,
``linearizable_writes``): a raw API client that creates an object through one node and changes or
removes it through another at once never gets "no such service" (404), and a compare-and-set
(``expected_version``, ``service update --if-version``) is checked against a copy at least as new as the
version the create answered.

Three real daemons in a sandbox (``p51w``, 10.95.22.0/24), each a separate process with its own Raft
store. Each round creates a service (and a secret) through one node and at once updates the service with
the version the create answered, then removes both, through another node; the pairs are leader ->
follower, follower -> follower and follower -> leader. On main the write handlers looked the record up in
the second node's own copy before proposing: a follower that had not applied the create yet answered 404
"no such service" / "no such secret": 16 and 18 of 270 writes in two runs (the second: all through a
follower, none through the leader, which applied the create before any follower learned it committed).
"""

from __future__ import annotations

import base64
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
SECRET = {"data": base64.b64encode(b"s3cret").decode()}


def answer(response: httpx.Response, what: str, failed: list[str]) -> dict | None:
    """The JSON of a 200, else None with the failure noted."""
    if response.status_code == 200:
        return response.json()
    failed.append(f"{what}: {response.status_code} {response.text[:160]}")
    return None


def test_writes_through_another_node_at_once_see_the_create(
    cluster: tuple[Sandbox, list[SandboxNode]],
) -> None:
    leader, followers = leader_and_followers(cluster[1])
    pairs = [(leader, followers[0]), (followers[0], followers[1]), (followers[1], leader)]
    failed: list[str] = []
    took: dict[tuple[str, str], list[float]] = defaultdict(list)  # the second node's update, answered
    for p, (first, then) in enumerate(pairs):
        with api(first) as create_via, api(then) as write_via:
            for i in range(ROUNDS):
                name = f"w{p}x{i}"
                via = f"{name} via {first.name} then {then.name}"
                created = create_via.post("/services", json={"name": name, "image": IMAGE, "replicas": 0})
                assert created.status_code == 200, created.text
                version = created.json()["version"]  # the client's last acknowledged version
                started = time.monotonic()
                updated = write_via.post(
                    f"/services/{name}/update",
                    json={"labels": {"round": str(i)}, "expected_version": version},
                )
                if answer(updated, f"{via}: update --if-version {version}", failed) is not None:
                    took[(first.name, then.name)].append(time.monotonic() - started)
                answer(write_via.delete(f"/services/{name}"), f"{via}: rm", failed)
                made = create_via.post("/objects/secret", json={"name": name, **SECRET})
                assert made.status_code == 200, made.text
                answer(write_via.delete(f"/objects/secret/{name}"), f"{via}: secret rm", failed)
    per_pair = Counter(f.split(": ", 1)[0].split(" via ", 1)[1] for f in failed)
    medians = {f"{a}->{b}": f"{1000 * statistics.median(t):.1f} ms" for (a, b), t in took.items()}
    print(f"update through the second node, median: {medians}")
    print(f"{len(failed)} failed writes of {3 * 3 * ROUNDS} ({dict(per_pair)}): {failed[:5]}")
    assert not failed, f"{len(failed)} writes through the second node failed: {failed[:5]}"
