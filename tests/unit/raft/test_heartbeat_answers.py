"""HeartbeatAnswers (pure) and its hook in a real pysyncobj follower (our RaftBridge, no tick thread)."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from pysyncobj import SyncObjConf
from pysyncobj.node import TCPNode

from p2porch.errors import ConfigError
from p2porch.raft.bridge import RaftBridge
from p2porch.raft.heartbeat_answers import HeartbeatAnswers
from p2porch.raft.quiet_answers import is_empty_heartbeat
from p2porch.raft.store_config import StoreConfig
from p2porch.testing.raftprocs import free_ports


def test_a_repeat_waits_for_the_period_and_any_change_goes_at_once() -> None:
    answers = HeartbeatAnswers(period_s=0.5)
    assert answers.should_answer("L", 1, 10, 11, now=0.0)  # never answered
    answers.answered("L", 1, 10, 11, now=0.0)
    assert not answers.should_answer("L", 1, 10, 11, now=0.1)
    assert not answers.should_answer("L", 1, 10, 11, now=0.49)
    assert answers.should_answer("L", 1, 10, 11, now=0.5)  # due
    assert answers.should_answer("L", 2, 10, 11, now=0.1)  # a new term
    assert answers.should_answer("L", 1, 11, 11, now=0.1)  # the commit index moved
    assert answers.should_answer("L", 1, 10, 12, now=0.1)  # our log moved
    assert answers.should_answer("M", 1, 10, 11, now=0.1)  # another leader


def test_forget_makes_the_next_answer_go() -> None:
    answers = HeartbeatAnswers(period_s=0.5)
    answers.answered("L", 1, 10, 11, now=0.0)
    answers.forget("L")
    answers.forget("unknown")  # no record: nothing to do
    assert answers.should_answer("L", 1, 10, 11, now=0.1)


def test_period_zero_answers_every_heartbeat() -> None:
    answers = HeartbeatAnswers(period_s=0.0)
    answers.answered("L", 1, 10, 11, now=5.0)
    assert answers.should_answer("L", 1, 10, 11, now=5.0)


def test_only_an_append_without_entries_snapshot_or_chunk_is_a_heartbeat() -> None:
    beat = {
        "type": "append_entries",
        "term": 1,
        "commit_index": 0,
        "entries": [],
        "prevLogIdx": 1,
        "prevLogTerm": 0,
    }
    assert is_empty_heartbeat(beat)
    assert not is_empty_heartbeat({**beat, "entries": [(b"x", 2, 1)]})
    assert not is_empty_heartbeat({**beat, "transmission": "start", "data": b""})
    assert not is_empty_heartbeat(
        {"type": "append_entries", "term": 1, "commit_index": 0, "serialized": None}
    )


def test_config_bounds_the_answer_period_by_the_leader_fallback() -> None:
    def conf(**kw: Any) -> StoreConfig:
        return StoreConfig(self_addr=None, voters=("1.2.3.4:7947",), data_dir=".", password="x", **kw)  # type: ignore[arg-type]

    conf().validate()
    conf(heartbeat_answer_period_s=0.0).validate()
    with pytest.raises(ConfigError):
        conf(heartbeat_answer_period_s=1.0).validate()  # a quarter of 3 s at most
    conf(heartbeat_answer_period_s=2.0, connection_timeout_s=10.0, leader_fallback_timeout_s=10.0).validate()
    with pytest.raises(ConfigError):
        conf(heartbeat_answer_period_s=-0.1).validate()


class _Owner:
    config = SimpleNamespace(  # what RaftBridge reads
        replica_beat_s=1.0, heartbeat_answer_period_s=0.5, election_timeout_min_s=0.5
    )

    def _apply_on_raft_thread(self, batch: bytes) -> list[Any]:
        return []


@pytest.fixture
def follower() -> Iterator[tuple[Any, TCPNode, list[dict[str, Any]], list[float]]]:
    me, leader = (f"127.0.0.1:{p}" for p in free_ports(2))
    conf = SyncObjConf(
        password="p2ie-unit", autoTick=False, appendEntriesUseBatch=False, dynamicMembershipChange=True
    )
    so = RaftBridge(_Owner(), me, [leader], conf)  # type: ignore[arg-type]
    sent: list[dict[str, Any]] = []
    so._SyncObj__transport.send = lambda node, message: sent.append(message) or True
    clock = [100.0]
    so.answer_clock = lambda: clock[0]
    try:
        yield so, TCPNode(leader), sent, clock
    finally:
        so.destroy()


def append(prev: tuple[int, int], entries: list[Any], commit: int = 0, term: int = 1) -> dict[str, Any]:
    return {
        "type": "append_entries", "term": term, "commit_index": commit, "entries": entries,
        "prevLogIdx": prev[0], "prevLogTerm": prev[1],
    }  # fmt: skip


def test_follower_answers_repeated_heartbeats_once_per_period(follower: Any) -> None:
    so, leader, sent, clock = follower
    receive = so._SyncObj__onMessageReceived
    receive(leader, append((1, 0), []))
    assert len(sent) == 1 and sent[0]["success"] and sent[0]["next_node_idx"] == 2
    for _ in range(3):  # heartbeats that change nothing: not answered
        clock[0] += 0.125
        receive(leader, append((1, 0), []))
    assert len(sent) == 1 and so.answers_skipped == 3
    clock[0] += 0.125  # 0.5 s since the last answer: due
    receive(leader, append((1, 0), []))
    assert len(sent) == 2
    # the leader's entries are answered at once, and so is the heartbeat that moves the commit index
    receive(leader, append((1, 0), [(b"\x00a", 2, 1), (b"\x00b", 3, 1)]))
    assert len(sent) == 3 and sent[-1]["next_node_idx"] == 4
    receive(leader, append((3, 1), [], commit=3))
    assert len(sent) == 4 and sent[-1]["next_node_idx"] == 4
    receive(leader, append((3, 1), [], commit=3))
    assert len(sent) == 4
    # a new term (a new leader) is answered at once
    receive(leader, append((3, 1), [], commit=3, term=2))
    assert len(sent) == 5


def test_refusals_are_always_answered_and_reset_the_record(follower: Any) -> None:
    so, leader, sent, clock = follower
    receive = so._SyncObj__onMessageReceived
    receive(leader, append((1, 0), []))
    receive(leader, append((7, 1), []))  # we lack entry 7: refused
    receive(leader, append((7, 1), []))
    assert [m["success"] for m in sent] == [True, False, False]
    receive(leader, append((1, 0), []))  # after a refusal the next success answer goes at once
    assert len(sent) == 4 and sent[-1]["success"]


def test_a_reconnection_makes_the_next_answer_go(follower: Any) -> None:
    so, leader, sent, clock = follower
    receive = so._SyncObj__onMessageReceived
    receive(leader, append((1, 0), []))
    so._SyncObj__onNodeDisconnected(leader)
    so._SyncObj__onNodeConnected(leader)
    receive(leader, append((1, 0), []))
    assert len(sent) == 2
