"""``events --since`` on a live 3-node cluster (``p6ev``, 10.85.0.0/24), what the shell tests cannot show:
a follower keeps the leader change it saw when the leader's host was killed (the store's leader event on
real Raft), with that node's ``down`` and ``ready``, and its kept events outlive the restart of its member
services by ``cluster rotate-keys`` (the history was the member run's: a rotation emptied it)."""

from __future__ import annotations

import json
import os
import time

from clusterkit import cli, cluster_fixture, killed, leader_addr, leader_node, wait_for

cluster = cluster_fixture("p6ev", "10.85.0.0/24")


def kept(sb, node: str, *filters: str) -> list[dict]:
    """The events ``node`` kept from the last 10 minutes (the command ends: ``--until`` is now)."""
    result = cli(sb, node, "--json", "events", "--since", "10m", "--until", "0s", *filters)
    assert result.returncode == 0, result.stderr.decode()
    return [json.loads(line) for line in result.stdout.decode().splitlines()]


def _saved_voters(node) -> list[str]:
    with open(os.path.join(node.data_dir, "p2porch", "cluster.json")) as file:
        return json.load(file)["voters"]


def test_a_follower_keeps_the_election_it_saw_and_keeps_it_across_a_key_rotation(cluster) -> None:
    sb, nodes = cluster
    # a leader killed right after the autopilot's last voter change came back without hearing the new
    # leader (its journal and cluster.json from before that change): let every node save the 3 voters
    wait_for(lambda: all(len(_saved_voters(n)) == len(nodes) for n in nodes), 30, "3 voters in cluster.json")
    old = leader_node(nodes)
    follower = next(n for n in nodes if n is not old)

    def new_leader() -> str | None:
        addr = leader_addr(follower)
        return addr if addr and not addr.startswith(f"{old.address}:") else None

    with killed(sb, nodes, old):
        new = wait_for(new_leader, 60, "a new leader")

        def election() -> dict | None:
            seen = kept(sb, follower.name, "-f", "type=leader")
            return next((e for e in seen if e["action"] == "elected" and e["leader"] == new), None)

        elected = wait_for(election, 30, "the election in the follower's kept events")
        wait_for(
            lambda: any(e["action"] == "down" for e in kept(sb, follower.name, "-f", f"node={old.name}")),
            60,
            f"{old.name} down in the follower's kept events",
        )
    assert any(e["action"] == "ready" for e in kept(sb, follower.name, "-f", f"node={old.name}"))

    rotated_at = time.time()
    rotated = cli(sb, follower.name, "cluster", "rotate-keys")
    assert rotated.returncode == 0, rotated.stderr.decode()

    def tls_ready() -> bool:  # each node publishes its key epoch from its new member run
        shown = cli(sb, follower.name, "node", "ls", "--format", "{{.TLSStatus}}").stdout.decode().split()
        return shown == ["Ready"] * len(nodes)

    wait_for(tls_ready, 60, "every node's member services in the new key epoch")
    after = wait_for(
        lambda: kept(sb, follower.name, "-f", "type=leader"),
        30,
        "the events service again",
        retry_on=(AssertionError,),
    )
    assert elected in after, after  # kept from before the rotation
    assert elected["at"] < rotated_at
