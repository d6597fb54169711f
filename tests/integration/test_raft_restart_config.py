"""A restarted voter uses the latest configuration in its log, committed or not (real processes, loopback).

The h45events finding: a leader SIGKILLed just after it added a third voter came back with a commit
index (its ``.commit`` file, written once a second without sync) below the add entry in its journal.
pysyncobj re-applies membership entries only when it applies them (up to the commit index), so it
restarted with the two-voter configuration it was started with; the new leader, the added voter, was
outside it, and pysyncobj takes no append from a node outside its configuration: it never heard of the
commit index again and ran pre-votes for ever. The test makes that window certain: it kills the leader,
sets its commit index back to just before the add entry, and restarts it with the two voters it was
started with (what a ``cluster.json`` saved before the add holds). The other first voter stays down, so
only the restarted node and the added voter are up: a leader needs both, and on main (the restarted
node ignores the added voter) none is ever elected.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from p2porch.raft.config_replay import membership_change
from p2porch.raft.journal import DurableJournal, pack_commit_index
from p2porch.raft.store import JOURNAL_NAME
from p2porch.testing.raftprocs import LocalCluster

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    c = LocalCluster(tmp_path / "p2rc", voters=3)
    try:
        yield c
    finally:
        c.close()


def _add_index(journal_file: Path, addr: str) -> int:
    """The index of the journal's entry adding ``addr`` (the process that wrote it is dead)."""
    journal = DurableJournal(journal_file)
    try:
        return next(e[1] for e in journal if membership_change(e[0]) == ("add", addr))
    finally:
        journal._destroy()


def test_restarted_leader_hears_the_voter_it_added_before_its_commit_index_was_stored(
    cluster: LocalCluster,
) -> None:
    all_voters = list(cluster.voter_addrs)
    first_two = all_voters[:2]
    v0, v1, v2 = cluster.voters()
    cluster.voter_addrs = first_two  # v0 and v1 start as a two-voter group
    cluster.start(v0, wait=False)
    cluster.start(v1, wait=False)
    cluster.wait_ready(v0)
    cluster.wait_ready(v1)
    old = cluster.leader()
    assert old.call(op="init")["ok"]
    cluster.voter_addrs = all_voters  # the voter to add starts knowing all three
    cluster.start(v2)
    assert old.call(op="add_voter", addr=v2.raft_addr, timeout_s=15.0)["ok"]
    assert old.call(op="create", id="before")["ok"]
    assert cluster.wait_services(v2, {"before"}) == {"before"}  # the added voter holds the log

    other = v1 if old is v0 else v0
    cluster.kill(old)
    cluster.kill(other)  # the added voter alone is left: the old leader must count it to elect anyone
    journal_file = old.data_dir / JOURNAL_NAME
    added_at = _add_index(journal_file, str(v2.raft_addr))
    commit_file = journal_file.with_name(journal_file.name + ".commit")
    commit_file.write_bytes(pack_commit_index(added_at - 1))  # stored before the add entry committed

    cluster.voter_addrs = first_two  # the old leader restarts with the two voters saved before the add
    cluster.start(old)
    cluster.voter_addrs = all_voters
    leader = cluster.leader(timeout_s=20.0)  # on main: none, old ignores v2 and counts the dead voter
    assert leader in (old, v2)
    assert leader.call(op="create", id="after", timeout_s=10.0)["ok"]
    have = cluster.wait_services(old, {"before", "after"}, timeout_s=20.0)
    assert {"before", "after"} <= have, (have, cluster.log_tail(old))
    voters = old.call(op="status")["status"]["voters"]
    assert sorted(voters) == sorted(all_voters)
