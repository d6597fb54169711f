"""Shared steps of the stale-voter tests (real store processes on loopback): a voter whose log lacks the
add of a fifth voter, and that fifth voter leading (test_raft_deaf_voter.py, test_raft_stale_voter.py)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from p2porch.testing.raftprocs import LocalCluster, NodeProc

ELECTION_ROUNDS = 40  # elections until the added node leads: a random one of the live voters wins each


@contextlib.contextmanager
def five_voters(root: Path) -> Iterator[LocalCluster]:
    """Five voter slots (none started); every node resumed and killed at the end."""
    cluster = LocalCluster(root, voters=5)
    try:
        yield cluster
    finally:
        cluster.resume_all()
        cluster.close()


def lay_out(cluster: LocalCluster, added_dials: bool) -> tuple[list[NodeProc], NodeProc]:
    """The four first voters and the node to add, the added one at the highest or lowest address
    (pysyncobj's dialler is the node with the higher address)."""
    addrs = sorted(cluster.voter_addrs)
    added_addr, first = (addrs[-1], addrs[:4]) if added_dials else (addrs[0], addrs[1:])
    nodes = cluster.voters()
    for node, addr in zip(nodes, [*first, added_addr], strict=True):
        node.raft_addr = addr
    cluster.voter_addrs = [*first, added_addr]
    return nodes[:4], nodes[4]


def four_with_a(cluster: LocalCluster, first: list[NodeProc]) -> tuple[NodeProc, NodeProc]:
    """The four first voters started with each other only and ``a`` written: (their leader, a follower
    holding ``a``: the voter to make stale)."""
    first_addrs = [str(n.raft_addr) for n in first]
    for node in first:
        cluster.start(node, wait=False, voters=first_addrs)
    for node in first:
        cluster.wait_ready(node)
    leader = cluster.leader()
    assert leader.call(op="init")["ok"]
    assert leader.call(op="create", id="a")["ok"]
    stale = next(n for n in first if n is not leader)
    assert cluster.wait_services(stale, {"a"}) >= {"a"}
    return leader, stale


def add_fifth(cluster: LocalCluster, leader: NodeProc, added: NodeProc) -> None:
    """Start the added node knowing every voter, have ``leader`` add it, and write ``b``."""
    cluster.start(added, voters=list(cluster.voter_addrs))
    assert leader.call(op="add_voter", addr=added.raft_addr, timeout_s=15.0)["ok"]
    assert leader.call(op="create", id="b")["ok"]
    assert cluster.wait_services(added, {"b"}) >= {"b"}


def lead_with(cluster: LocalCluster, added: NodeProc, everyone: list[str]) -> None:
    """Kill the leader (and restart it knowing every voter) until the added node leads. Each election
    is won by one of three live voters at random (1, 2 and 5 rounds in three runs): 15 rounds failed a
    CI run, (2/3)^15 = 0.2 % per call; (2/3)^ELECTION_ROUNDS is about 1e-7."""
    for _ in range(ELECTION_ROUNDS):
        leader = cluster.leader(timeout_s=20.0)
        if leader is added:
            return
        cluster.kill(leader)
        cluster.leader(timeout_s=20.0)  # three of five are up: a leader among them
        cluster.start(leader, voters=everyone)
        assert cluster.wait_services(leader, {"b"}) >= {"b"}, cluster.log_tail(leader)
    pytest.fail(f"the added node never led in {ELECTION_ROUNDS} elections")


def leader_among(nodes: list[NodeProc], timeout_s: float = 20.0) -> NodeProc:
    """The one node of ``nodes`` that says it leads (``LocalCluster.leader`` would also ask a stopped
    node, and wait out its control timeout)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        leaders = [n for n in nodes if n.call(op="status")["status"]["is_leader"]]
        if len(leaders) == 1:
            return leaders[0]
        time.sleep(0.05)
    pytest.fail(f"no single leader among {[n.name for n in nodes]} in {timeout_s} s")


def lead_by_pausing(added: NodeProc, running: list[NodeProc]) -> None:
    """SIGSTOP the leader until another of ``running`` leads, then SIGCONT it (alive, no longer leading),
    until the added node leads. Nobody restarts: every node keeps its leader pointer."""
    for _ in range(ELECTION_ROUNDS):
        leader = leader_among(running)
        if leader is added:
            return
        assert leader.proc is not None
        os.kill(leader.proc.pid, signal.SIGSTOP)
        try:
            leader_among([n for n in running if n is not leader])
        finally:
            os.kill(leader.proc.pid, signal.SIGCONT)
        deadline = time.monotonic() + 10.0
        while leader.call(op="status")["status"]["is_leader"] and time.monotonic() < deadline:
            time.sleep(0.05)  # it hears the new leader's term and steps down
    pytest.fail(f"the added node never led in {ELECTION_ROUNDS} elections")


def cut_off(node: NodeProc) -> None:
    """SIGSTOP ``node`` and destroy its established TCP sockets (``ss -K``, both directions of each of
    its connections): what its peers send while it is stopped is lost, as across a cut network, instead
    of waiting in its receive buffers for when it resumes. Their redials meet a stopped process and
    never finish the session handshake, so no append reaches it until it runs again."""
    assert node.proc is not None
    node.drop_client()
    os.kill(node.proc.pid, signal.SIGSTOP)
    inodes = set()
    for fd in os.listdir(f"/proc/{node.proc.pid}/fd"):
        target = os.readlink(f"/proc/{node.proc.pid}/fd/{fd}") if fd.isdigit() else ""
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    killed = 0
    with open("/proc/net/tcp") as table:
        for row in table.read().splitlines()[1:]:
            cols = row.split()
            if cols[3] != "01" or cols[9] not in inodes:  # ESTABLISHED, one of its sockets
                continue
            local, remote = (int(c.split(":")[1], 16) for c in cols[1:3])
            tuple_filter = ["src", f"127.0.0.1:{local}", "dst", f"127.0.0.1:{remote}"]
            subprocess.run(["ss", "-K", "-t", *tuple_filter], capture_output=True, check=True)
            killed += 1
    assert killed, "no established socket to destroy"


def settled_status(
    node: NodeProc, leader: NodeProc, voters: list[str], timeout_s: float = 5.0
) -> dict[str, Any]:
    """``node``'s status once it names ``leader`` and ``voters`` (the status is refreshed about once a
    second when idle), or the last one after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        status: dict[str, Any] = node.call(op="status")["status"]
        done = status["leader"] == leader.raft_addr and sorted(status["voters"]) == sorted(voters)
        if done or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def strangers(node: NodeProc) -> dict[str, int]:
    """``node``'s counters of Raft traffic from outside its configuration (raft/outside_config.py)."""
    return dict(json.loads(node.call(op="raw")["raw"]["strangers"]))
