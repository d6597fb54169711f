"""Every proposal a node forwards to the leader gets an answer (raft/forwarded.py; issue 19, the eleventh
round in docs/performance.md).

A real pysyncobj read-only replica (our ``RaftBridge``, no tick thread) follows a leader it heard from and
forwards proposals through pysyncobj's own drain; only its transport's ``send`` and its connection set are
the test's. pysyncobj alone keeps each of these callbacks forever (no leader change happens); with two
batches in flight at most, two of them wedged the store's proposals for good. And a real store whose
batches are never answered still commits its later proposals once the first ones timed out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trio
from pysyncobj import FAIL_REASON, SyncObjConf
from pysyncobj.node import TCPNode

from p2porch.errors import ProposalTimeout
from p2porch.raft import commands as C
from p2porch.raft.bridge import RaftBridge
from p2porch.raft.proposals import InFlight, Proposal, settle
from p2porch.raft.store import StoreConfig, open_raft_store
from p2porch.testing.raftprocs import free_ports


class _Owner:
    config = SimpleNamespace(replica_beat_s=1.0, heartbeat_answer_period_s=0.5, election_timeout_min_s=0.5)

    def _apply_on_raft_thread(self, batch: bytes) -> list[Any]:
        return []


@pytest.fixture
def replica() -> Iterator[tuple[RaftBridge, TCPNode, list[dict[str, Any]]]]:
    """A replica that heard the leader's heartbeat; its sends recorded, the leader connected."""
    (leader_addr,) = (f"127.0.0.1:{p}" for p in free_ports(1))
    conf = SyncObjConf(password="p2st-unit", autoTick=False, dynamicMembershipChange=True)
    so = RaftBridge(_Owner(), None, [leader_addr], conf)  # type: ignore[arg-type]
    sent: list[dict[str, Any]] = []
    so._SyncObj__transport.send = lambda node, message: sent.append(message) or True
    leader = TCPNode(leader_addr)
    so._SyncObj__connectedNodes.add(leader)
    heartbeat = {"type": "append_entries", "term": 1, "commit_index": 0, "prevLogIdx": 1, "prevLogTerm": 0}
    so._SyncObj__onMessageReceived(leader, heartbeat)
    assert so._SyncObj__raftLeader == leader
    sent.clear()
    try:
        yield so, leader, sent
    finally:
        so.destroy()


def _forward(so: RaftBridge) -> list[tuple[Any, int]]:
    """Propose one command on the replica and run pysyncobj's drain: it forwards it to the leader."""
    answers: list[tuple[Any, int]] = []
    so.apply_entry(b"batch", callback=lambda result, err: answers.append((result, err)))
    so._checkCommandsToApply()
    return answers


def test_a_proposal_forwarded_while_the_leader_is_not_connected_fails_retryably(replica: Any) -> None:
    so, leader, sent = replica
    so._SyncObj__connectedNodes.discard(leader)  # the connection is down (the replica reconnects)
    so._SyncObj__transport.send = lambda node, message: sent.append(message) and False  # as TCPTransport
    answers = _forward(so)
    assert [m["type"] for m in sent] == ["apply_command"]  # pysyncobj tried to send it
    assert answers == [(None, FAIL_REASON.MISSING_LEADER)]  # known not sent: the store retries it
    assert so.forwarding()["waiting_reply"] == 0 and so.unsent_forwards == 1


def test_a_forwarded_proposal_whose_connection_drops_before_the_answer_is_failed(replica: Any) -> None:
    so, leader, sent = replica
    answers = _forward(so)
    assert [m["type"] for m in sent] == ["apply_command"] and answers == []  # waiting for the leader
    so._SyncObj__onNodeDisconnected(leader)  # the request or its answer went with the connection
    assert answers == [(None, FAIL_REASON.LEADER_CHANGED)]  # outcome unknown: it may have committed
    assert so.forwarding()["waiting_reply"] == 0 and so.dropped_forwards == 1


def test_a_forwarded_proposal_under_an_installed_snapshot_is_failed(replica: Any) -> None:
    so, leader, sent = replica
    answers = _forward(so)
    response = {
        "type": "apply_command_response",
        "request_id": sent[0]["request_id"],
        "log_idx": 10,
        "log_term": 1,
    }
    so._SyncObj__onMessageReceived(leader, response)
    assert so.forwarding()["lowest_waiting_commit"] == 10 and answers == []  # waits to apply entry 10
    # the leader's snapshot at entry 12 arrives before entry 10 was applied here: pysyncobj's own load
    so._SyncObj__serializer.deserialize = lambda: (None, (b"\x00", 12, 1), (b"\x00", 11, 1), [leader.id])
    so._SyncObj__loadDumpFile(clearJournal=True)
    assert so.raftLastApplied == 12
    assert answers == [(None, FAIL_REASON.UNKNOWN_OUTCOME)]
    assert so.forwarding()["waiting_commit"] == 0 and so.covered_forwards == 1


def test_a_connected_leaders_answer_is_still_awaited(replica: Any) -> None:
    so, leader, sent = replica
    answers = _forward(so)
    so._checkCommandsToApply()  # another tick: nothing to drain, nothing failed
    assert answers == [] and so.forwarding()["waiting_reply"] == 1
    response = {"type": "apply_command_response", "request_id": sent[0]["request_id"], "error": 1}
    so._SyncObj__onMessageReceived(leader, response)
    assert answers == [(None, 1)]


async def test_a_store_whose_batches_are_never_answered_commits_its_later_proposals(tmp_path: Path) -> None:
    addr = f"127.0.0.1:{free_ports(1)[0]}"
    conf = StoreConfig(self_addr=addr, voters=(addr,), data_dir=tmp_path / "d", password="pw")
    async with open_raft_store(conf) as store:
        await store.wait_leader()
        apply_entry, lost = store._so.apply_entry, []

        def lose_the_first_two(batch: bytes, callback: Any) -> None:  # answers lost, as with a dropped link
            if len(lost) < conf.max_inflight_batches:
                lost.append(batch)
                return
            apply_entry(batch, callback=callback)

        store._so.apply_entry = lose_the_first_two  # type: ignore[method-assign]
        init = C.InitCluster(at=time.time(), cluster_id="c1").encode()
        for _ in range(conf.max_inflight_batches):
            with pytest.raises(ProposalTimeout):
                await store.write(init, timeout_s=0.3)
        assert len(lost) == conf.max_inflight_batches
        with trio.fail_after(10):
            await store.write(init, timeout_s=5.0)  # before: never submitted, both slots held forever
        assert store.snapshot().cluster_id == "c1"
        assert store.forwarding()["batches_in_flight"] == 0


def test_a_batch_slot_goes_back_once_when_every_proposal_timed_out_or_it_was_answered() -> None:
    slots = InFlight(limit=2)
    first, second = Proposal(b"a"), Proposal(b"b")
    batch = slots.take([first, second])
    assert slots.count == 1 and slots.has_room()
    first.abandoned = True
    assert not slots.given_up(first) and slots.count == 1  # the other caller still waits
    second.abandoned = True
    assert slots.given_up(second) and slots.count == 0
    assert not slots.release(batch) and slots.count == 0  # the late answer: ignored, counted once
    retry = settle(slots.take([Proposal(b"c")]), None, FAIL_REASON.MISSING_LEADER)
    assert [p.command for p in retry] == [b"c"]
