"""A new read-only replica installs the leader's snapshot, whose configuration lacks that leader
(real store processes on loopback; docs/raft.md, "A replica keeps the leader of its snapshot").

A leader's own dump may predate the entry that added the leader: it was added after its last
compaction (its dump is the one it installed from the leader before it), or it was a replica promoted
on the same data directory (its dump is from its replica days). A replica that joins while it leads
is sent that dump; pysyncobj's install set the replica's voters to the dump's and dropped its
connection to the leader, and a replica only dials the voters it knows: it never heard the leader
again (the 4-node sandbox's join "loaded a dump at version ~73, then got no appends while the leader
was at ~104"). On main the replica below stays at the dump's version.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from stranger_kit import lead_with

from p2porch.testing.raftprocs import LocalCluster, NodeProc

pytestmark = pytest.mark.integration

CATCH_UP_S = 10.0  # from the replica's start to it holding the leader's last write (0.1-0.3 s measured)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    cluster = LocalCluster(tmp_path / "p8kr", voters=4, replicas=1)
    try:
        yield cluster
    finally:
        cluster.resume_all()
        cluster.close()


def _compacted(node: NodeProc) -> None:
    """A full dump of ``node`` written (its log now starts at it)."""
    before = node.call(op="status")["status"]["dumps"]
    assert node.call(op="compact")["ok"]
    deadline = time.monotonic() + 60.0  # a forked child's write and fsync: slow beside a loaded CI disk
    while node.call(op="status")["status"]["dumps"] == before:
        assert time.monotonic() < deadline, "no dump written in 60 s"
        time.sleep(0.05)


def _holds(node: NodeProc, ids: set[str], timeout_s: float) -> tuple[float, set[str]]:
    """Seconds until ``node`` holds ``ids`` (inf: not within ``timeout_s``) and what it held last."""
    t0 = time.monotonic()
    have: set[str] = set()
    while time.monotonic() - t0 < timeout_s:
        have = set(node.call(op="services")["ids"])
        if ids <= have:
            return time.monotonic() - t0, have
        time.sleep(0.05)
    return float("inf"), have


@pytest.mark.parametrize("how", ["added", "promoted"])
def test_a_new_replica_follows_a_leader_its_snapshot_does_not_name(cluster: LocalCluster, how: str) -> None:
    v0, v1, v2, fourth = cluster.voters()
    replica = cluster.node("r0")
    first = [str(n.raft_addr) for n in (v0, v1, v2)]
    everyone = list(cluster.voter_addrs)
    for node in (v0, v1, v2):
        cluster.start(node, wait=False, voters=first)
    for node in (v0, v1, v2):
        cluster.wait_ready(node)
    leader = cluster.leader()
    assert leader.call(op="init")["ok"]
    ids = {f"a{i}" for i in range(20)}
    for sid in sorted(ids):
        assert leader.call(op="create", id=sid)["ok"]
    for node in (v0, v1, v2):
        _compacted(node)  # every dump names the three first voters only
    assert leader.call(op="create", id="b")["ok"]
    if how == "promoted":  # a replica first (its dump: the leader's), then a voter on the same data dir
        addr, fourth.raft_addr = fourth.raft_addr, None
        cluster.start(fourth, voters=first)
        assert _holds(fourth, {"b"}, 15.0)[0] < 15.0
        cluster.kill(fourth)
        fourth.raft_addr = addr
    cluster.start(fourth, voters=everyone)
    assert leader.call(op="add_voter", addr=fourth.raft_addr, timeout_s=15.0)["ok"]
    assert leader.call(op="create", id="c")["ok"]
    assert _holds(fourth, {"c"}, 15.0)[0] < 15.0
    lead_with(cluster, fourth, everyone)  # (waits for "b" on each restarted leader)
    more = {f"d{i}" for i in range(10)}
    for sid in sorted(more):
        assert fourth.call(op="create", id=sid)["ok"]

    cluster.start(replica, voters=everyone)  # a fresh replica: it needs the leader's snapshot
    assert fourth.call(op="create", id="e")["ok"]
    took_s, have = _holds(replica, ids | more | {"b", "c", "e"}, CATCH_UP_S)
    raw = replica.call(op="raw")["raw"]
    print(f"{how}: the new replica caught up in {took_s:.2f} s, leaders kept {raw.get('leaders_kept')}")
    seen = ("leader", "partner_nodes_count", "log_len", "commit_idx", "leader_commit_idx")
    assert took_s < CATCH_UP_S, (
        len(have),
        {k: raw.get(k) for k in seen},
        cluster.log_tail(replica, 30),
    )
    assert int(raw.get("leaders_kept", 0)) >= 1, raw  # the snapshot it installed lacked the leader
    assert raw["leader"] == fourth.raft_addr, raw
    assert replica.call(op="create", id="f", timeout_s=10.0)["ok"]  # it writes through the leader too
    assert _holds(fourth, {"f"}, 10.0)[0] < 10.0
    status = replica.call(op="status")["status"]
    assert json.dumps(sorted(status["voters"])) == json.dumps(sorted(everyone)), status


@pytest.mark.parametrize("order", ["killed-then-rejoined", "rejoined-then-killed"])
def test_a_replica_that_left_rejoins_across_a_failover(tmp_path: Path, order: str) -> None:
    """The path of the sandbox's symptom with the leader's dump naming it: three voters and a replica;
    the replica leaves (stopped, its data removed), the log is compacted, the leader is killed and the
    replica starts again on the same data directory and control port, before or after the failover,
    with writes going on. It must hold the new leader's last write within ``CATCH_UP_S``."""
    cluster = LocalCluster(tmp_path / "p8kj", voters=3, replicas=1)
    try:
        cluster.start_all()
        leader = cluster.leader()
        assert leader.call(op="init")["ok"]
        for i in range(20):
            assert leader.call(op="create", id=f"a{i}")["ok"]
        replica = cluster.node("r0")
        assert _holds(replica, {"a19"}, 15.0)[0] < 15.0
        cluster.kill(replica)  # it leaves: its Raft state goes with its data directory
        shutil.rmtree(replica.data_dir)
        for node in cluster.voters():
            _compacted(node)
        assert leader.call(op="create", id="b")["ok"]
        if order == "killed-then-rejoined":
            cluster.kill(leader)
            leader = cluster.leader()
            cluster.start(replica)
        else:
            cluster.start(replica, wait=False)  # its snapshot may be on its way while the leader dies
            cluster.kill(leader)
            cluster.wait_ready(replica)
            leader = cluster.leader()
        for i in range(10):
            assert leader.call(op="create", id=f"c{i}", timeout_s=10.0)["ok"]
        took_s, have = _holds(replica, {"b", "c9"}, CATCH_UP_S)
        print(f"{order}: the replica caught up in {took_s:.2f} s")
        assert took_s < CATCH_UP_S, (len(have), cluster.log_tail(replica, 30))
        assert replica.call(op="create", id="d", timeout_s=10.0)["ok"]
        assert _holds(leader, {"d"}, 10.0)[0] < 10.0
    finally:
        cluster.close()
