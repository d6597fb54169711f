"""Stale voters and a leader outside their configuration, the cases test_raft_deaf_voter.py leaves
(real store processes on loopback; docs/raft.md, "A voter deaf to a leader outside its configuration").

- **Cut off, not restarted.** Four voters; one (the stale voter) is cut off (SIGSTOPped, its TCP
  connections destroyed so nothing sent meanwhile reaches it) while the leader adds a fifth node;
  leaders are SIGSTOPped and resumed (alive, no longer leading, never restarted) until the added node
  leads; then the stale voter resumes. It still names its old leader, a voter of its own configuration
  that is alive and connected again but no longer leads: that pointer must not keep the new leader out
  (``PROMPT_S``).
- **A snapshot from a stranger.** The stale voter is down while the added node leads and the log is
  compacted past everything it holds: the leader's full-dump transfer (pysyncobj's ``serialized``
  chunks) is the only way back, over a connection from outside its configuration.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from stranger_kit import (
    add_fifth,
    cut_off,
    five_voters,
    four_with_a,
    lay_out,
    lead_by_pausing,
    lead_with,
    settled_status,
    strangers,
)

from p2porch.testing.raftprocs import LocalCluster, NodeProc

pytestmark = pytest.mark.integration

PROMPT_S = 8.0  # SIGCONT to following the new leader (0.02-2.09 s measured; without the fix: never)
CATCH_UP_S = 20.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    with five_voters(tmp_path / "p8st") as c:
        yield c


def _caught_up(node: NodeProc, leader: NodeProc, ids: set[str], timeout_s: float) -> tuple[float, str]:
    """Seconds until ``node`` holds ``ids`` and its Raft thread names ``leader`` (pysyncobj's own
    pointer: the store's status is refreshed only about once a second), and the pointers it went
    through."""
    t0 = time.monotonic()
    seen: list[str] = []
    while time.monotonic() - t0 < timeout_s:
        raw = node.call(op="raw")["raw"]
        pointer = f"{raw.get('leader')}@{raw.get('raft_term')}"
        if not seen or seen[-1] != pointer:
            seen.append(pointer)
        have = set(node.call(op="services")["ids"])
        if ids <= have and raw.get("leader") == leader.raft_addr:
            return time.monotonic() - t0, " -> ".join(seen)
        time.sleep(0.02)
    return float("inf"), " -> ".join(seen)


def _log_span(node: NodeProc) -> tuple[int, int]:
    """The first and last index of ``node``'s Raft log (pysyncobj's, after its compactions)."""
    raw = node.call(op="raw")["raw"]
    last = int(json.loads(raw["journal"])["last"])
    return last - int(raw["log_len"]) + 1, last


def compact(node: NodeProc, timeout_s: float = 60.0) -> None:
    """Force a dump on ``node`` and wait until its log starts past where it did. The dump counter alone
    is not enough: pysyncobj trims the log after the dump is counted, on the Raft thread, while the
    control port already answers (a CI-loaded run read the old span there: ((1, 55), 4))."""
    first_before = _log_span(node)[0]
    assert node.call(op="compact")["ok"]
    deadline = time.monotonic() + timeout_s
    while _log_span(node)[0] <= first_before:
        assert time.monotonic() < deadline, (node.name, _log_span(node), node.call(op="status"))
        time.sleep(0.05)


@pytest.mark.parametrize("added_dials", [True, False], ids=["added-dials", "stale-dials"])
def test_a_cut_off_stale_voter_leaves_its_old_leader_for_the_new_one(
    cluster: LocalCluster, added_dials: bool
) -> None:
    first, added = lay_out(cluster, added_dials)
    everyone = list(cluster.voter_addrs)
    old_leader, stale = four_with_a(cluster, first)
    cut_off(stale)  # while the fifth voter is added: no add in its log
    add_fifth(cluster, old_leader, added)
    lead_by_pausing(added, [n for n in first if n is not stale] + [added])
    assert added.call(op="create", id="c", timeout_s=10.0)["ok"]
    assert old_leader.alive and not old_leader.call(op="status")["status"]["is_leader"]

    assert stale.proc is not None
    os.kill(stale.proc.pid, signal.SIGCONT)  # it still names the old leader, alive and reachable
    took_s, pointers = _caught_up(stale, added, {"a", "b", "c"}, CATCH_UP_S)
    print(f"cut-off stale voter: {took_s:.2f} s to follow the new leader ({pointers})")
    status = settled_status(stale, added, everyone)
    assert took_s < PROMPT_S, (took_s, pointers, strangers(stale), cluster.log_tail(stale, 40))
    assert sorted(status["voters"]) == sorted(everyone), status
    assert stale.call(op="create", id="d", timeout_s=10.0)["ok"]  # it writes through the leader too
    assert cluster.wait_services(added, {"d"}) >= {"d"}
    taken = strangers(stale)
    assert taken["accepted"] >= 1 and taken["appends"] >= 1 and taken["promoted"] >= 1, taken


def test_a_stale_voter_behind_the_compaction_point_installs_the_stranger_leaders_snapshot(
    cluster: LocalCluster,
) -> None:
    first, added = lay_out(cluster, added_dials=True)
    first_addrs = [str(n.raft_addr) for n in first]
    everyone = list(cluster.voter_addrs)
    leader, stale = four_with_a(cluster, first)
    stale_last = _log_span(stale)[1]
    cluster.kill(stale)
    add_fifth(cluster, leader, added)
    lead_with(cluster, added, everyone)
    ids = {"a", "b"} | {f"s{i}" for i in range(40)}
    for sid in sorted(ids - {"a", "b"}):
        assert added.call(op="create", id=sid, timeout_s=10.0)["ok"]
    for node in [*[n for n in first if n is not stale], added]:
        compact(node)
    assert _log_span(added)[0] > stale_last + 1, (_log_span(added), stale_last)  # no entry it needs is left

    cluster.start(stale, voters=first_addrs)
    took_s, pointers = _caught_up(stale, added, ids, CATCH_UP_S)
    print(f"stale voter behind the compaction point: {took_s:.2f} s ({pointers}), log held {stale_last}")
    status = settled_status(stale, added, everyone)
    assert took_s < CATCH_UP_S, (pointers, strangers(stale), cluster.log_tail(stale, 40))
    assert sorted(status["voters"]) == sorted(everyone), status
    assert _log_span(stale)[0] > stale_last + 1, (_log_span(stale), stale_last)  # a snapshot, not entries
    assert stale.call(op="create", id="d", timeout_s=10.0)["ok"]
    assert cluster.wait_services(added, {"d"}) >= {"d"}
    taken = strangers(stale)
    assert taken["accepted"] >= 1 and taken["appends"] >= 1 and taken["promoted"] >= 1, taken
