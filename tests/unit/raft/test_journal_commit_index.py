"""The commit index's own file (raft/journal.py): written in place without a sync, checked on open.

The commit index is volatile state in Raft: a stale, torn or missing file only makes a node learn it
again, and it never touches term/vote. A failed sync fails the journal for good (fsyncgate)."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import msgpack
import pytest
from test_journal import Disk, entries, syncs_during

from p2porch.raft import journal as J
from p2porch.raft.journal import DurableJournal, pack_commit_index, unpack_commit_index


def _journal(tmp_path: Path) -> tuple[Path, DurableJournal]:
    path = tmp_path / "raft.journal"
    return path, DurableJournal(path)


def test_a_packed_index_reads_back_and_any_damage_reads_as_none() -> None:
    data = pack_commit_index(123_456_789)
    assert unpack_commit_index(data) == 123_456_789
    for cut in range(len(data)):
        assert unpack_commit_index(data[:cut]) is None  # torn: short
    for pos in range(len(data)):
        damaged = bytearray(data)
        damaged[pos] ^= 0x01
        assert unpack_commit_index(bytes(damaged)) is None  # torn: a changed byte fails the checksum
    assert unpack_commit_index(data + b"\x00") is None


def test_storing_the_commit_index_makes_no_sync_and_survives_a_process_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, j = _journal(tmp_path)
    for e in entries(9):
        j.add(*e)
    j.setRaftCommitIndex(9)
    assert syncs_during(monkeypatch, j.onOneSecondTimer) == 0  # the Raft thread never waits for a disk
    # kill -9: no _destroy, the page cache survives the process
    assert DurableJournal(path).getRaftCommitIndex() == 9


def test_an_unchanged_commit_index_is_not_written_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, j = _journal(tmp_path)
    j.setRaftCommitIndex(4)
    j.onOneSecondTimer()
    writes: list[int] = []
    real = os.pwrite
    monkeypatch.setattr(os, "pwrite", lambda fd, data, off: (writes.append(off), real(fd, data, off))[1])
    j.onOneSecondTimer()
    j.setRaftCommitIndex(4)
    j.onOneSecondTimer()
    assert writes == []
    j.setRaftCommitIndex(5)
    j.onOneSecondTimer()
    assert writes == [0]


@pytest.mark.parametrize("damage", ["torn", "missing", "empty"])
def test_a_damaged_commit_file_costs_the_commit_index_only(tmp_path: Path, damage: str) -> None:
    path, j = _journal(tmp_path)
    for e in entries(6, term=3):
        j.add(*e)
    j.setCurrentTerm(7, "127.0.0.1:2")
    j.setRaftCommitIndex(6)
    j.onOneSecondTimer()
    commit = path.with_name("raft.journal.commit")
    if damage == "torn":
        commit.write_bytes(commit.read_bytes()[:5])
    elif damage == "missing":
        commit.unlink()
    else:
        commit.write_bytes(b"")
    again = DurableJournal(path)
    assert again.getRaftCommitIndex() == 1  # pysyncobj's start value: learnt again from the leader
    assert (again.getCurrentTerm(), again.getVotedForNodeId()) == (7, "127.0.0.1:2")
    assert [again[i] for i in range(len(again))] == entries(6, term=3)


def test_after_a_power_loss_the_commit_index_never_exceeds_the_durable_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = Disk(monkeypatch)
    path, j = _journal(tmp_path)
    for e in entries(5):
        j.add(*e)
    j.setCurrentTerm(2, "a")
    j.setRaftCommitIndex(5)
    j.onOneSecondTimer()
    with j.syncs_deferred():  # entries never synced: the crash takes them, the commit index is older
        for e in entries(3, start=6):
            j.add(*e)
        j.setRaftCommitIndex(8)  # (pysyncobj never does this before the sync: here it is not stored)
    files = [path, path.with_name("raft.journal.meta"), path.with_name("raft.journal.commit")]
    disk.crash(*files)  # nothing synced the commit file: the power loss took it (0 bytes)
    again = DurableJournal(path)
    assert again.getRaftCommitIndex() <= again[-1][1]
    assert (again.getCurrentTerm(), again.getVotedForNodeId()) == (2, "a")


def test_a_journal_from_before_the_commit_file_keeps_its_commit_index(tmp_path: Path) -> None:
    path, j = _journal(tmp_path)
    for e in entries(4):
        j.add(*e)
    j._destroy()
    path.with_name("raft.journal.commit").unlink()
    meta = path.with_name("raft.journal.meta")
    meta.write_bytes(msgpack.packb({"term": 3, "voted_for": None, "commit_index": 4}))
    again = DurableJournal(path)
    assert (again.getRaftCommitIndex(), again.getCurrentTerm()) == (4, 3)
    again.setCurrentTerm(4, None)  # the next meta write drops it: the commit file has it from now on
    assert "commit_index" not in msgpack.unpackb(meta.read_bytes())
    again._destroy()
    assert DurableJournal(path).getRaftCommitIndex() == 4


def test_a_new_journal_ignores_a_commit_file_left_in_its_directory(tmp_path: Path) -> None:
    (tmp_path / "raft.journal.commit").write_bytes(pack_commit_index(99))
    _, j = _journal(tmp_path)
    assert j.getRaftCommitIndex() == 1


def _failing_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(fd: Any) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "fdatasync", fail)


def test_a_failed_deferred_sync_fails_the_journal_for_good(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, j = _journal(tmp_path)
    j.add(b"first", 1, 1)
    _failing_sync(monkeypatch)
    with pytest.raises(J.JournalFailedError), j.syncs_deferred():
        j.add(b"second", 2, 1)
        j.add(b"third", 3, 1)
    monkeypatch.undo()  # the disk "recovers": a retried fsync would report success, it is not retried
    for read in (lambda: j[-1], lambda: len(j), j.sync_deferred, lambda: j.add(b"fourth", 4, 1)):
        with pytest.raises(J.JournalFailedError):
            read()  # pysyncobj reads its last index through j[-1] before it counts a commit: it fails
    j._destroy()


def test_a_failed_sync_of_one_add_fails_the_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, j = _journal(tmp_path)
    _failing_sync(monkeypatch)
    with pytest.raises(J.JournalFailedError):
        j.add(b"first", 1, 1)
    with pytest.raises(J.JournalFailedError):
        j[0]


def test_sync_stats_count_entries_per_sync(tmp_path: Path) -> None:
    _, j = _journal(tmp_path)
    j.sync_stats.take()
    with j.syncs_deferred():
        for e in entries(7):
            j.add(*e)
    j.add(b"one", 8, 1)
    assert (j.sync_stats.adds, j.sync_stats.syncs, j.sync_stats.max_batch) == (8, 2, 7)
    assert "journal adds 8, fdatasyncs 2 (at most 7 entries in one" in j.sync_stats.take()
    assert (j.sync_stats.adds, j.sync_stats.syncs) == (0, 0)


def test_a_failed_commit_index_write_is_tried_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, j = _journal(tmp_path)
    j.setRaftCommitIndex(3)
    real = os.pwrite

    def full(fd: int, data: bytes, off: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full)
    j.onOneSecondTimer()  # the Raft tick goes on
    assert DurableJournal(path).getRaftCommitIndex() == 1
    monkeypatch.setattr(os, "pwrite", real)
    j.onOneSecondTimer()
    assert DurableJournal(path).getRaftCommitIndex() == 3
