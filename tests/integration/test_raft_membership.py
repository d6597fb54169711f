"""A voter change is done only once committed, with real voters (4 processes on loopback, pysyncobj Raft):
a leader that appends an add without a quorum (its followers SIGSTOPped, as in test_raft_slow_leader)
must not report it done, nor start another change of its own meanwhile; once the quorum is back, the
retried add completes and one more is idempotent (docs/raft.md, "Membership")."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2porch.testing.raftprocs import LocalCluster, NodeProc

pytestmark = pytest.mark.integration

STUCK_TIMEOUT_S = 4.0  # longer than the leader's 3 s step-down without a majority


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    """v0-v2 start as the configuration; v3 (the joiner) is started by the test, knowing all four."""
    c = LocalCluster(tmp_path / "p6mb", voters=4)
    try:
        for node in c.nodes[:3]:
            c.start(node, wait=False, voters=c.voter_addrs[:3])
        for node in c.nodes[:3]:
            c.wait_ready(node)
        c.leader().call(op="init")
        yield c
    finally:
        c.resume_all()  # never leave a stopped process behind
        c.close()


def voters(node: NodeProc) -> list[str]:
    return list(node.call(op="status")["status"]["voters"])


def test_an_add_stuck_without_a_quorum_is_not_reported_done(cluster: LocalCluster) -> None:
    joiner = cluster.nodes[3]
    assert joiner.raft_addr is not None
    cluster.start(joiner)  # a voter knowing the four addresses: up before it is added
    leader = cluster.leader()
    followers = [n for n in cluster.nodes[:3] if n is not leader]
    for node in followers:
        cluster.pause(node)  # every thread stopped: a follower still running acknowledged the add
    try:
        started = time.monotonic()
        stuck = leader.call(op="add_voter", addr=joiner.raft_addr, timeout_s=STUCK_TIMEOUT_S)
        assert time.monotonic() - started >= STUCK_TIMEOUT_S - 0.5
        # appended (the leader's configuration shows it), never committed: not done
        assert joiner.raft_addr in voters(leader)
        assert stuck["ok"] is False and stuck["error"] == "ProposalTimeout", stuck
        # and no second change of this node's while that one may be uncommitted
        other = followers[0].raft_addr
        refused = leader.call(op="remove_voter", addr=other, timeout_s=2.0)
        assert refused["ok"] is False and refused["error"] == "RaftError", refused
        assert "uncommitted" in refused["message"], refused
    finally:
        for node in followers:
            assert node.proc is not None
            os.kill(node.proc.pid, signal.SIGCONT)
    new_leader = cluster.leader(timeout_s=20.0)
    retried = leader.call(op="add_voter", addr=joiner.raft_addr, timeout_s=15.0)
    assert retried["ok"] is True, (retried, cluster.log_tail(leader))
    everyone = sorted(n.raft_addr for n in cluster.nodes if n.raft_addr)
    for node in cluster.nodes:
        deadline = time.monotonic() + 10.0
        while voters(node) != everyone and time.monotonic() < deadline:
            time.sleep(0.05)
        assert voters(node) == everyone, node.name
    # idempotent: already committed in the configuration, so done (from the leader and from the joiner)
    assert new_leader.call(op="add_voter", addr=joiner.raft_addr, timeout_s=10.0)["ok"] is True
    assert joiner.call(op="add_voter", addr=joiner.raft_addr, timeout_s=10.0)["ok"] is True
    # the four-voter group commits, the joiner included
    assert cluster.leader().call(op="create", id="after-join", timeout_s=10.0)["ok"] is True
    assert "after-join" in cluster.wait_services(joiner, {"after-join"})
