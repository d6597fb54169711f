"""A dump renamed into place before its log was cut must not cost the entries appended after it.

Background dumps (``dumps.py``) rename the dump when the worker finishes and the journal is cut on a
later Raft tick. A crash or a stop in between leaves a new dump beside an uncut journal; pysyncobj,
loading a dump whose entries are not the journal's first two, clears the whole journal. The store
cuts the journal to the dump's entries first (``journal.align_to_dump``), so pysyncobj keeps the rest.
A real ``RaftBridge`` (pysyncobj) with the durable journal loads the dump here.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgpack
from pysyncobj import SyncObjConf

from p2porch.raft import dumps
from p2porch.raft.bridge import RaftBridge, install_durable_journal
from p2porch.raft.journal import DurableJournal
from p2porch.raft.journal_start import align_to_dump
from p2porch.testing.raftprocs import free_ports

ENTRIES = [(f"cmd{i}".encode(), i, 1) for i in range(1, 11)]  # (command, index, term) 1..10


class _Owner:
    config = SimpleNamespace(  # what RaftBridge reads
        replica_beat_s=1.0, heartbeat_answer_period_s=0.5, election_timeout_min_s=0.5
    )

    def _apply_on_raft_thread(self, batch: bytes) -> list[Any]:
        return []


def _journal(path: Path) -> None:
    journal = DurableJournal(path)
    for entry in ENTRIES:
        journal.add(*entry)
    journal._destroy()


def _dump(path: Path, prev: tuple[Any, ...], last: tuple[Any, ...]) -> None:
    """The head the store writes (``RaftStore._write_dump``) before its state."""
    head = {"format": 1, "last": list(last), "prev": list(prev), "cluster": [], "state": {"big": "x" * 999}}
    path.write_bytes(msgpack.packb(head, use_bin_type=True))


def test_read_head_returns_the_dump_entries_without_the_state(tmp_path: Path) -> None:
    assert dumps.read_head(tmp_path / "absent") is None
    _dump(tmp_path / "raft.dump", ENTRIES[3], ENTRIES[4])
    assert dumps.read_head(tmp_path / "raft.dump") == (ENTRIES[3], ENTRIES[4])


def test_align_cuts_only_a_journal_that_holds_the_dump_entries(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    assert align_to_dump(path, ENTRIES[3], ENTRIES[4]) == 0 and not path.exists()
    _journal(path)
    assert align_to_dump(path, ENTRIES[3], (b"other", 5, 2)) == 0  # not this log's entry: left alone
    assert align_to_dump(path, ENTRIES[3], ENTRIES[4]) == 3
    journal = DurableJournal(path)
    assert [tuple(e) for e in journal[0 : len(journal)]] == ENTRIES[3:]
    journal._destroy()
    assert align_to_dump(path, ENTRIES[3], ENTRIES[4]) == 0  # already aligned


def test_entries_after_the_dump_survive_a_restart_before_the_cut(tmp_path: Path, monkeypatch) -> None:
    journal, dump = tmp_path / "raft.journal", tmp_path / "raft.dump"
    _journal(journal)
    _dump(dump, ENTRIES[3], ENTRIES[4])  # the dump covers 1..5; 6..10 were appended meanwhile

    def read(file_name: str) -> tuple[Any, Any, Any]:
        body = msgpack.unpackb(Path(file_name).read_bytes(), raw=False)
        return tuple(body["last"]), tuple(body["prev"]), []

    install_durable_journal()
    conf = SyncObjConf(
        password="p2rf-unit",
        autoTick=False,
        journalFile=str(journal),
        fullDumpFile=str(dump),
        serializer=lambda file_name, data: None,  # never called here
        deserializer=read,
        useFork=False,
        dynamicMembershipChange=True,
    )
    reads = []
    load = DurableJournal._open_and_load
    monkeypatch.setattr(DurableJournal, "_open_and_load", lambda self: reads.append(self) or load(self))
    so = RaftBridge(_Owner(), None, [f"127.0.0.1:{free_ports(1)[0]}"], conf)  # type: ignore[arg-type]
    try:
        assert len(reads) == 1 and so._SyncObj__raftLog is reads[0]  # the cut journal, read once
        so._SyncObj__loadDumpFile(clearJournal=False)  # what pysyncobj's first tick does
        log = so._SyncObj__raftLog
        assert [tuple(log[i]) for i in range(len(log))] == ENTRIES[3:]
    finally:
        so.destroy()
