"""A follower never goes back in time for a snapshot it already holds (Raft §7, raft/snapshot_guard.py).

A real pysyncobj follower (our ``RaftBridge``, file journal, no tick thread) is fed the messages a
pysyncobj leader sends, in the order that reproduces the non-monotonic read: a snapshot, entries after
it (committed and applied), then the same snapshot again (a late refusal made the leader stream it
once more, see ``test_a_late_refusal_makes_the_leader_stream_the_snapshot_again``). The leader's side
is a real pysyncobj ``Serializer`` reading a dump in the store's format.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgpack
import pysyncobj.syncobj as pso
import pytest
from pysyncobj import SyncObjConf
from pysyncobj import pickle as pso_pickle
from pysyncobj.node import TCPNode
from pysyncobj.serializer import Serializer

from p2porch.raft import dumps
from p2porch.raft.bridge import RaftBridge, install_durable_journal
from p2porch.raft.snapshot_guard import covers
from p2porch.testing.raftprocs import free_ports

NOOP = b"\x01"  # pysyncobj's no-op command: entries the state machine never sees


class _Owner:
    config = SimpleNamespace(  # what RaftBridge reads
        replica_beat_s=1.0, heartbeat_answer_period_s=0.5, election_timeout_min_s=0.5
    )

    def __init__(self) -> None:
        self.applied: list[bytes] = []

    def _apply_on_raft_thread(self, batch: bytes) -> list[Any]:
        self.applied.append(batch)
        return []


class Follower:
    """One follower and what it did: snapshots loaded, batches applied, answers sent."""

    def __init__(self, tmp: Path) -> None:
        install_durable_journal()
        me, self.leader_addr = (f"127.0.0.1:{p}" for p in free_ports(2))
        self.leader = TCPNode(self.leader_addr)
        self.loaded: list[int] = []
        self.owner = _Owner()
        conf = SyncObjConf(
            password="p2rs-unit",
            autoTick=False,
            journalFile=str(tmp / "raft.journal"),
            fullDumpFile=str(tmp / "raft.dump"),
            serializer=lambda name, data: None,
            deserializer=self._read_dump,
            useFork=False,
        )
        self.so = RaftBridge(self.owner, me, [self.leader_addr], conf)  # type: ignore[arg-type]
        self.sent: list[dict[str, Any]] = []
        self.so._SyncObj__transport.send = lambda node, message: self.sent.append(message) or True

    def _read_dump(self, file_name: str) -> tuple[Any, Any, Any]:
        body = msgpack.unpackb(Path(file_name).read_bytes(), raw=False)
        self.loaded.append(body["last"][1])
        return tuple(body["last"]), tuple(body["prev"]), []

    def receive(self, message: dict[str, Any]) -> None:
        self.so._SyncObj__onMessageReceived(self.leader, message)

    def apply(self) -> None:
        """What the next tick does first: apply the entries up to the commit index."""
        self.so._SyncObj__applyLogEntries()

    @property
    def applied(self) -> int:
        return int(self.so._SyncObj__raftLastApplied)

    @property
    def commit(self) -> int:
        return int(self.so._SyncObj__raftCommitIndex)

    def log_span(self) -> tuple[int, int]:
        raft_log = self.so._SyncObj__raftLog
        return raft_log[0][1], raft_log[-1][1]

    def batch(self, index: int) -> bytes:
        """A command of the store's one replicated method, as pysyncobj encodes it."""
        func_id = self.so._methodToID[self.so._getFuncName("apply_entry")]
        return b"\x00" + pso_pickle.dumps((func_id, (b"batch-%d" % index,)))


def write_dump(path: Path, last: int, term: int) -> bytes:
    """A dump in the store's format (head, then the state) covering the log up to ``last``."""
    head = {"format": 1, "last": [NOOP, last, term], "prev": [NOOP, last - 1, term], "cluster": []}
    data = dumps.encode_dump(head, {"services": {}, "padding": "x" * 3000})
    path.write_bytes(data)
    return data


def snapshot_stream(dump: Path, term: int, commit: int, batch: int = 1024) -> list[dict[str, Any]]:
    """The messages a pysyncobj leader sends to stream ``dump`` (its own Serializer, chunk by chunk)."""
    serializer = Serializer(str(dump), batch, False, None, None, None)
    messages = []
    while True:
        data = serializer.getTransmissionData("follower")
        messages.append({"type": "append_entries", "term": term, "commit_index": commit, "serialized": data})
        if data[2]:
            return messages


def entries(f: Follower, first: int, last: int, term: int, commit: int) -> dict[str, Any]:
    return {
        "type": "append_entries",
        "term": term,
        "commit_index": commit,
        "entries": [(f.batch(i), i, term) for i in range(first, last + 1)],
        "prevLogIdx": first - 1,
        "prevLogTerm": term,
    }


@pytest.fixture
def follower(tmp_path: Path) -> Any:
    (tmp_path / "follower").mkdir()
    f = Follower(tmp_path / "follower")
    yield f
    f.so.destroy()


def test_a_snapshot_the_follower_already_applied_past_is_not_installed_again(
    tmp_path: Path, follower: Follower
) -> None:
    dump = tmp_path / "leader.dump"
    write_dump(dump, last=40, term=3)
    for message in snapshot_stream(dump, term=3, commit=40):
        follower.receive(message)
    assert follower.loaded == [40] and follower.applied == 40
    follower.receive(entries(follower, 41, 45, term=3, commit=45))
    follower.apply()
    assert follower.applied == 45 and len(follower.owner.applied) == 5
    own_dump = (tmp_path / "follower" / "raft.dump").read_bytes()

    follower.sent.clear()
    for message in snapshot_stream(dump, term=3, commit=45):  # the same snapshot, streamed again
        follower.receive(message)
    follower.apply()

    assert follower.loaded == [40], "the snapshot was loaded over entries applied after it"
    assert follower.applied == 45 and follower.commit == 45
    assert follower.log_span() == (39, 45)
    assert len(follower.owner.applied) == 5  # nothing applied twice either
    assert (tmp_path / "follower" / "raft.dump").read_bytes() == own_dump
    assert not list((tmp_path / "follower").glob("raft.dump.*tmp*"))
    answer = follower.sent[-1]
    assert answer["type"] == "next_node_idx"
    assert (answer["next_node_idx"], answer["success"], answer["reset"]) == (41, True, True)
    assert follower.so.snapshots_refused == 1


def test_a_newer_snapshot_is_installed(tmp_path: Path, follower: Follower) -> None:
    old, new = tmp_path / "old.dump", tmp_path / "new.dump"
    write_dump(old, last=40, term=3)
    write_dump(new, last=60, term=3)
    for message in snapshot_stream(old, term=3, commit=40):
        follower.receive(message)
    follower.receive(entries(follower, 41, 45, term=3, commit=45))
    follower.apply()
    for message in snapshot_stream(new, term=3, commit=60):
        follower.receive(message)
    assert follower.loaded == [40, 60] and follower.applied == 60
    assert follower.log_span() == (59, 60) and follower.commit == 60
    assert follower.sent[-1]["next_node_idx"] == 61 and follower.sent[-1]["success"]


def test_a_snapshot_whose_last_entry_we_hold_in_another_term_replaces_our_log(
    tmp_path: Path, follower: Follower
) -> None:
    old, other = tmp_path / "old.dump", tmp_path / "other.dump"
    write_dump(old, last=40, term=3)
    write_dump(other, last=43, term=4)  # the new leader's entry 43 is of term 4; ours of term 3
    for message in snapshot_stream(old, term=3, commit=40):
        follower.receive(message)
    follower.receive(entries(follower, 41, 45, term=3, commit=40))  # never committed
    for message in snapshot_stream(other, term=4, commit=43):
        follower.receive(message)
    follower.apply()
    assert follower.loaded == [40, 43] and follower.applied == 43 and follower.log_span() == (42, 43)
    assert follower.owner.applied == []  # the old term's entries were never applied


def test_snapshot_chunks_do_not_commit_entries_they_never_checked(tmp_path: Path, follower: Follower) -> None:
    old, new = tmp_path / "old.dump", tmp_path / "new.dump"
    write_dump(old, last=40, term=3)
    write_dump(new, last=60, term=4)
    for message in snapshot_stream(old, term=3, commit=40):
        follower.receive(message)
    follower.receive(entries(follower, 41, 45, term=3, commit=40))  # a cut-off leader's, uncommitted
    stream = snapshot_stream(new, term=4, commit=60)
    assert len(stream) > 2
    for message in stream[:-1]:  # every chunk but the last, then the "no snapshot yet" message
        follower.receive(message)
        follower.apply()
    follower.receive({"type": "append_entries", "term": 4, "commit_index": 60, "serialized": None})
    follower.apply()
    assert follower.commit == 40 and follower.applied == 40
    assert follower.owner.applied == [], "entries of a cut-off leader were applied as committed"
    follower.receive(stream[-1])
    assert follower.loaded == [40, 60] and follower.applied == 60 and follower.commit == 60


def test_covers() -> None:
    raft_log = [(NOOP, 39, 3), (NOOP, 40, 3), (NOOP, 41, 3), (NOOP, 42, 4)]
    assert covers(raft_log, (NOOP, 41, 3)) and covers(raft_log, (NOOP, 42, 4))
    assert covers(raft_log, (NOOP, 30, 2))  # compacted: committed, the leader's own
    assert not covers(raft_log, (NOOP, 42, 5))  # same index, another term
    assert not covers(raft_log, (NOOP, 43, 4))  # past our log


def test_head_of_chunk_reads_the_dump_head_or_nothing(tmp_path: Path) -> None:
    data = write_dump(tmp_path / "d", last=40, term=3)
    assert dumps.head_of_chunk(data[:200]) == ((NOOP, 39, 3), (NOOP, 40, 3))
    assert dumps.head_of_chunk(data[:10]) is None  # the head is cut
    assert dumps.head_of_chunk(b"\x1f\x8b\x08gzip") is None  # pysyncobj's own dump format


def test_a_late_refusal_makes_the_leader_stream_the_snapshot_again(tmp_path: Path) -> None:
    """The leader side of the sequence (pysyncobj's own code): after a snapshot and the entries after
    it went out, an answer to an older message that says "reset to 30" puts nextIndex back below the
    log start and the next round streams the snapshot again, although the follower matched up to 45."""
    install_durable_journal()
    me, peer = (f"127.0.0.1:{p}" for p in free_ports(2))
    dump = tmp_path / "raft.dump"
    write_dump(dump, last=40, term=3)
    conf = SyncObjConf(
        password="p2rs-unit",
        autoTick=False,
        journalFile=str(tmp_path / "raft.journal"),
        fullDumpFile=str(dump),
        serializer=lambda name, data: None,
        deserializer=lambda name: Follower._read_dump(SimpleNamespace(loaded=[]), name),  # type: ignore[arg-type]
        useFork=False,
    )
    leader = RaftBridge(_Owner(), me, [peer], conf)  # type: ignore[arg-type]
    sent: list[dict[str, Any]] = []
    leader._SyncObj__transport.send = lambda node, message: sent.append(message) or True
    node = TCPNode(peer)
    try:
        leader._SyncObj__loadDumpFile(clearJournal=True)  # its log starts after the dump: 39, 40
        for i in range(41, 46):
            leader._SyncObj__raftLog.add(NOOP, i, 3)
        leader._SyncObj__raftCurrentTerm = 3
        leader._SyncObj__raftState = pso._RAFT_STATE.LEADER
        leader._SyncObj__raftCommitIndex = 45
        leader._SyncObj__connectedNodes.add(node)
        leader._SyncObj__raftMatchIndex[node] = 45
        leader._SyncObj__raftNextIndex[node] = 46
        stale = {"type": "next_node_idx", "next_node_idx": 30, "success": False, "reset": True}
        leader._SyncObj__onMessageReceived(node, stale)
        sent.clear()
        leader._SyncObj__sendAppendEntries()
    finally:
        leader.destroy()
    streamed = [m for m in sent if m.get("serialized") is not None]
    assert streamed, sent
    assert dumps.head_of_chunk(streamed[0]["serialized"][0]) == ((NOOP, 39, 3), (NOOP, 40, 3))
