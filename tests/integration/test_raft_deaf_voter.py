"""A voter whose log never got the add of a new voter hears that voter once it leads (real processes,
loopback).

Four voters; one of them (the stale voter) is SIGKILLed; the leader adds a fifth node; leaders are
killed (and restarted) until the added node leads; then the stale voter restarts with the four voters
it knew and a journal without the add. pysyncobj's transport took no connection from a node outside its
configuration and never dialled one, so the stale voter never heard the leader: no entry, no commit
index, pre-votes refused for ever by the voters hearing that leader (docs/raft.md, "A voter deaf to a
leader outside its configuration"). Both directions: pysyncobj's dialler is the node with the higher
address, so the added node is given the highest address (it dials the stale voter) or the lowest (the
stale voter would have to dial it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from stranger_kit import add_fifth, five_voters, four_with_a, lay_out, lead_with, settled_status, strangers

from p2porch.testing.raftprocs import LocalCluster

pytestmark = pytest.mark.integration

CATCH_UP_S = 20.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    with five_voters(tmp_path / "p7rf") as c:
        yield c


@pytest.mark.parametrize("added_dials", [True, False], ids=["added-dials", "stale-dials"])
def test_a_voter_without_the_add_hears_the_added_leader(cluster: LocalCluster, added_dials: bool) -> None:
    first, added = lay_out(cluster, added_dials)
    first_addrs = [str(n.raft_addr) for n in first]
    everyone = list(cluster.voter_addrs)
    leader, stale = four_with_a(cluster, first)
    cluster.kill(stale)  # down while the fifth voter is added: its journal never gets the add
    add_fifth(cluster, leader, added)
    lead_with(cluster, added, everyone)

    cluster.start(stale, voters=first_addrs)  # what its cluster.json held: the four it knew
    assert added.call(op="create", id="c", timeout_s=10.0)["ok"]
    have = cluster.wait_services(stale, {"a", "b", "c"}, timeout_s=CATCH_UP_S)
    status = settled_status(stale, added, everyone)
    assert {"a", "b", "c"} <= have, (have, status.get("leader"), cluster.log_tail(stale))
    assert status["leader"] == added.raft_addr, status
    assert sorted(status["voters"]) == sorted(everyone), status
    assert stale.call(op="create", id="d", timeout_s=10.0)["ok"]  # it writes through the leader too
    assert cluster.wait_services(added, {"d"}) >= {"d"}
    taken = strangers(stale)  # the stale voter took the leader's appends before its log added it
    assert taken["accepted"] >= 1 and taken["appends"] >= 1 and taken["promoted"] >= 1, taken
    if not added_dials:  # the leader dialled the voter that should have dialled it
        assert strangers(added)["reverse_dials"] >= 1
