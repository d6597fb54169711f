"""Read-after-write across nodes (control/read_barrier.py): a write acknowledged through one node is seen
by a read through any other node that starts after it, and a node that cannot prove it is current
refuses (503, naming why) instead of answering its older copy.

Three real daemons in a sandbox (``p50b``, 10.95.7.0/24), each a separate process with its own Raft
store. Writes (a node label through the API; ``service create`` through the CLI) go through one node,
and the read (``GET /nodes``; ``service inspect``) through another at once, many times, through the
leader and through followers. Then one follower's Raft port is cut (iptables DROP of TCP 7947 in its
namespace; its gossip and API stay up): the others still commit, and every read through it is either
the new value or a refusal, never the old value. Before the barrier such reads answered the follower's
older copy (the cut-off follower's every time).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from clusterkit import IMAGE, api, cli, cluster_fixture, leader_and_followers, wait_for

from p2porch.sandbox.sandbox import Sandbox, SandboxNode
from p2porch.sandbox.system import find_program

pytestmark = pytest.mark.integration

cluster = cluster_fixture("p50b", "10.95.7.0/24", 3)
ROUNDS = 40  # write-then-read pairs per direction
RULES = [  # TCP to and from the Raft port: its connections both ways (either end may have dialled)
    ["-p", "tcp", port, "7947", "-m", "comment", "--comment", "p50b-raft-cut", "-j", "DROP"]
    for port in ("--dport", "--sport")
]


def labels_seen(via: httpx.Client, name: str) -> dict[str, str]:
    response = via.get("/nodes")
    response.raise_for_status()
    return next(row["labels"] for row in response.json() if row["name"] == name)


def set_label(via: httpx.Client, name: str, value: int) -> None:
    response = via.post(f"/nodes/{name}/update", json={"label_add": {"raw": str(value)}})
    assert response.status_code == 200, response.text


def iptables(node: SandboxNode, *args: str) -> int:
    ip, tables = find_program("ip") or "ip", find_program("iptables") or "iptables"
    argv = [ip, "netns", "exec", node.netns, tables, "-w", *args]
    return subprocess.run(argv, capture_output=True, check=False, timeout=20).returncode


@pytest.fixture
def roles(cluster: tuple[Sandbox, list[SandboxNode]]) -> Iterator[tuple[SandboxNode, list[SandboxNode]]]:
    """(leader, followers) of the formed cluster."""
    yield leader_and_followers(cluster[1])


def test_a_write_through_one_node_is_read_through_any_other(
    cluster: tuple[Sandbox, list[SandboxNode]], roles: tuple[SandboxNode, list[SandboxNode]]
) -> None:
    sb, nodes = cluster
    leader, followers = roles
    pairs = [(leader, followers[0]), (followers[0], followers[1]), (followers[1], leader)]
    stale: list[str] = []
    value = 0
    for writer, reader in pairs:
        with api(writer) as write_via, api(reader) as read_via:
            for _ in range(ROUNDS):
                value += 1
                set_label(write_via, leader.name, value)  # acknowledged: committed and applied on writer
                seen = labels_seen(read_via, leader.name).get("raw")
                if seen != str(value):
                    stale.append(f"{writer.name} wrote {value}, {reader.name} read {seen}")
    assert not stale, f"{len(stale)} stale reads of {3 * ROUNDS}: {stale[:5]}"

    # the user's journey: service create through one host, inspect through another at once
    for i, (writer, reader) in enumerate(pairs):
        name = f"raw{i}"
        created = cli(sb, writer.name, "service", "create", "--name", name, "--replicas", "0", IMAGE)
        assert created.returncode == 0, created.stderr.decode()
        shown = cli(sb, reader.name, "service", "inspect", name)  # a stale read: "no such service"
        assert shown.returncode == 0 and name in shown.stdout.decode(), shown.stderr.decode()


def test_a_follower_cut_from_raft_refuses_reads_instead_of_answering_stale(
    cluster: tuple[Sandbox, list[SandboxNode]], roles: tuple[SandboxNode, list[SandboxNode]]
) -> None:
    leader, followers = roles
    cut = followers[0]
    with api(leader) as write_via, api(cut) as read_via:
        set_label(write_via, leader.name, 1000)
        wait_for(lambda: labels_seen(read_via, leader.name).get("raw") == "1000", 30, "the follower current")
        for rule in RULES:
            assert iptables(cut, "-I", "INPUT", "1", *rule) == 0
        try:
            answers: list[Any] = []
            for value in (1001, 1002, 1003):
                set_label(write_via, leader.name, value)  # the leader and the other follower commit it
                response = read_via.get("/nodes", timeout=30)
                if response.status_code == 200:
                    row = next(r for r in response.json() if r["name"] == leader.name)
                    answers.append(row["labels"].get("raw"))
                    assert row["labels"].get("raw") == str(value), f"stale read through {cut.name}: {row}"
                else:
                    body = response.json()
                    answers.append(body)
                    assert response.status_code == 503, body
                    assert body["error"] == "StaleReadRefused" and "stale=true" in body["message"], body
            # its own copy is still there on request (the UI's polls): the old value, said to be stale
            own = read_via.get("/nodes", params={"stale": "true"})
            assert own.status_code == 200, own.text
            print(f"reads through {cut.name} cut from Raft: {answers}")
        finally:
            for rule in RULES:
                while iptables(cut, "-D", "INPUT", *rule) == 0:
                    pass
        wait_for(lambda: labels_seen(read_via, leader.name).get("raw") == "1003", 60, "the follower back")
