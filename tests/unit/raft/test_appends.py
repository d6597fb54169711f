"""A real pysyncobj follower (our ``RaftBridge``, no tick thread) fed leader messages by hand.

The messages are built exactly as pysyncobj 0.3.17's leader builds them (``__sendAppendEntries``),
including the transmission of an entry of 64 KiB or more in pickled chunks.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from pysyncobj import SyncObjConf
from pysyncobj import pickle as pso_pickle
from pysyncobj.node import TCPNode

from p2porch.raft.appends import AppendFilter, trim_overlap
from p2porch.raft.bridge import RaftBridge
from p2porch.testing.raftprocs import free_ports

BATCH = 2**16  # pysyncobj's appendEntriesBatchSizeBytes default


class _Owner:
    config = SimpleNamespace(  # what RaftBridge reads
        replica_beat_s=1.0, heartbeat_answer_period_s=0.5, election_timeout_min_s=0.5
    )

    def _apply_on_raft_thread(self, batch: bytes) -> list[Any]:
        return []


@pytest.fixture
def follower() -> Iterator[tuple[Any, TCPNode, list[dict[str, Any]]]]:
    me, leader = (f"127.0.0.1:{p}" for p in free_ports(2))
    conf = SyncObjConf(
        password="p2rf-unit", autoTick=False, appendEntriesUseBatch=False, dynamicMembershipChange=True
    )
    so = RaftBridge(_Owner(), me, [leader], conf)  # type: ignore[arg-type]
    sent: list[dict[str, Any]] = []
    so._SyncObj__transport.send = lambda node, message: sent.append(message) or True
    try:
        yield so, TCPNode(leader), sent
    finally:
        so.destroy()


def entry(idx: int, size: int = 10, term: int = 1) -> tuple[bytes, int, int]:
    return (b"\x00" + bytes([idx % 256]) * (size - 1), idx, term)  # a regular command


def append(
    prev: tuple[int, int], entries: list[tuple[bytes, int, int]], commit: int = 0, term: int = 1
) -> dict[str, Any]:
    return {
        "type": "append_entries", "term": term, "commit_index": commit, "entries": entries,
        "prevLogIdx": prev[0], "prevLogTerm": prev[1],
    }  # fmt: skip


def transmission(
    ent: tuple[bytes, int, int], prev: tuple[int, int], commit: int = 0, term: int = 1
) -> list[dict[str, Any]]:
    """The chunks pysyncobj's leader sends for a single entry of >= 64 KiB (its logic, bug included)."""
    data = pso_pickle.dumps(ent)
    out = []
    for pos in range(0, len(data), BATCH):
        if pos == 0:
            kind = "start"
        elif pos + BATCH >= len(ent[0]):
            kind = "finish"
        else:
            kind = "process"
        out.append(
            {
                "type": "append_entries",
                "transmission": kind,
                "data": data[pos : pos + BATCH],
                "term": term,
                "commit_index": commit,
                "prevLogIdx": prev[0],
                "prevLogTerm": prev[1],
            }  # fmt: skip
        )
    return out


def log_of(so: Any) -> list[tuple[bytes, int, int]]:
    raft_log = so._SyncObj__raftLog
    return [raft_log[i] for i in range(len(raft_log))]


def feed(so: Any, node: TCPNode, messages: list[dict[str, Any]]) -> None:
    for message in messages:
        so._SyncObj__onMessageReceived(node, message)


def test_resent_large_entry_keeps_the_acknowledged_entries_after_it(follower: Any) -> None:
    so, leader, sent = follower
    ents = [entry(2), entry(3), entry(4, size=70_000), entry(5), entry(6)]
    feed(so, leader, [append((1, 0), ents)])
    assert [e[1] for e in log_of(so)] == [1, 2, 3, 4, 5, 6]
    assert sent[-1]["success"] and sent[-1]["next_node_idx"] == 7  # 5 and 6 are acknowledged
    # a late ack moved the leader's nextIndex back to 4: it re-sends the large entry 4 alone
    chunks = transmission(ents[2], prev=(3, 1))
    assert len(chunks) >= 2
    feed(so, leader, chunks)
    assert [e[1] for e in log_of(so)] == [1, 2, 3, 4, 5, 6]
    assert log_of(so)[1:] == ents
    assert sent[-1]["success"] and sent[-1]["next_node_idx"] == 5  # acknowledges what it carried


def test_large_entry_arrives_whole_even_when_the_leader_marks_finish_early(follower: Any) -> None:
    so, leader, _sent = follower
    # command length just under 2 chunks, pickled length just over: pysyncobj's leader sends two
    # "finish" chunks; the first one does not unpickle
    big = entry(2, size=2 * BATCH - 4)
    chunks = transmission(big, prev=(1, 0))
    assert [c["transmission"] for c in chunks] == ["start", "finish", "finish"]
    feed(so, leader, chunks)
    assert log_of(so)[1:] == [big]


def test_fully_held_resend_is_acknowledged_not_dropped(follower: Any) -> None:
    so, leader, sent = follower
    ents = [entry(i) for i in range(2, 9)]
    feed(so, leader, [append((1, 0), ents)])
    sent.clear()
    feed(so, leader, [append((2, 1), ents[1:3], commit=8)])  # 3..4 again while we hold up to 8
    assert [e[1] for e in log_of(so)] == list(range(1, 9))
    assert sent and sent[-1]["success"] and sent[-1]["next_node_idx"] == 5
    # it commits only what the message proved (4), not our whole log
    assert so._SyncObj__raftCommitIndex == 4


def leader_round(log: list[tuple[bytes, int, int]], next_index: int, commit: int) -> list[dict[str, Any]]:
    """What pysyncobj 0.3.17's leader (term 3) sends one follower in one ``__sendAppendEntries``."""
    messages: list[dict[str, Any]] = []
    last, single = log[-1][1], True
    while next_index <= last or single:
        prev = (next_index - 1, log[next_index - 2][2])
        batch: list[tuple[bytes, int, int]] = []
        if next_index <= last:
            size = 0
            for ent in log[next_index - 1 :]:
                batch.append(ent)
                size += len(ent[0])
                if size >= BATCH:
                    break
            next_index = batch[-1][1] + 1
        if len(batch) == 1 and len(batch[0][0]) >= BATCH:
            messages += transmission(batch[0], prev, commit=commit, term=3)
        else:
            messages.append(append(prev, batch, commit=commit, term=3))
        single = False
    return messages


def test_follower_with_an_old_term_tail_catches_up_despite_large_entries(follower: Any) -> None:
    """Issue 24: refusals of one round must agree, or the leader's nextIndex never passes the conflict."""
    so, leader, sent = follower
    common = [entry(i) for i in range(2, 6)]  # 2..5, term 1, committed
    feed(so, leader, [append((1, 0), common, commit=5)])
    stale = [entry(i, term=2) for i in range(6, 10)]  # 6..9 from a leader of term 2 that was cut off
    feed(so, leader, [{**append((5, 1), stale, commit=5), "term": 2}])
    new = [entry(i, size=70_000 if i in (8, 10) else 10, term=3) for i in range(6, 13)]
    leader_log = [(b"\x01", 1, 0), *common, *new]
    next_index, rounds = leader_log[-1][1] + 1, 0  # optimistic: it sent everything while we were away
    while log_of(so) != leader_log and rounds < 10:
        sent.clear()
        feed(so, leader, leader_round(leader_log, next_index, commit=12))
        for reply in [m for m in sent if m["type"] == "next_node_idx"]:
            if reply["reset"] or reply["success"]:  # pysyncobj's leader: take the answer as it comes
                next_index = reply["next_node_idx"]
        rounds += 1
    assert [e[1] for e in log_of(so)] == list(range(1, 13)) and log_of(so)[5:] == new, rounds
    assert rounds <= 4


def test_transmission_buffer_is_bounded() -> None:
    filt = AppendFilter(max_transmission_bytes=1000)
    log = [(b"", 1, 0)]
    head = {"type": "append_entries", "term": 1, "commit_index": 0, "prevLogIdx": 1, "prevLogTerm": 0}
    assert filt.filter(log, {**head, "transmission": "start", "data": b"x" * 600})[0] is not None
    assert filt.filter(log, {**head, "transmission": "process", "data": b"x" * 600}) == (None, None)
    # a chunk without its start is dropped (pysyncobj would concatenate bytes to a str and raise)
    assert filt.filter(log, {**head, "transmission": "finish", "data": b"x"}) == (None, None)
    assert filt.dropped == 2


def entries(n: int, term: int = 1, start: int = 1) -> list[tuple[bytes, int, int]]:
    return [(f"cmd{i}".encode(), i, term) for i in range(start, start + n)]


def test_trim_overlap_skips_entries_we_already_have() -> None:
    log = [(b"noop", 1, 0)] + entries(9, start=2)  # indexes 1..10
    trimmed, ack = trim_overlap(log, append((5, 1), entries(5, start=6)))  # 6..10: a heartbeat at 10
    assert ack is None and (trimmed["prevLogIdx"], trimmed["entries"]) == (10, [])
    stale, ack = trim_overlap(log, append((5, 1), entries(3, start=6)))  # 6..8 would cut 9..10
    assert ack == 8 and "prevLogIdx" not in stale and "entries" not in stale
    trimmed, ack = trim_overlap(log, append((5, 1), entries(7, start=6)))  # 6..12: 11, 12 are new
    assert ack is None and trimmed["prevLogIdx"] == 10 and [e[1] for e in trimmed["entries"]] == [11, 12]


def test_trim_overlap_keeps_conflicts_and_heartbeats() -> None:
    log = [(b"noop", 1, 0)] + entries(9, start=2)
    conflict = append((5, 1), entries(3, term=2, start=6))  # different term at 6: must truncate there
    assert trim_overlap(log, conflict) == (conflict, None)
    heartbeat = append((10, 1), [])
    assert trim_overlap(log, heartbeat) == (heartbeat, None)
    partial = append((5, 1), entries(2, start=6) + entries(1, term=2, start=8))
    trimmed, _ = trim_overlap(log, partial)
    assert trimmed["prevLogIdx"] == 7 and trimmed["entries"] == entries(1, term=2, start=8)
