"""Durability of the Raft journal under a simulated power loss (unsynced bytes vanish).

kill -9 cannot show a missing fsync (the page cache survives the process), so these tests model the
disk: every byte written after a file's last fsync/fdatasync is lost at the "crash". They fail
against pysyncobj's stock mmap FileJournal (PySyncObj #84) and pass against DurableJournal.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pysyncobj.journal import FileJournal

from p2porch.raft import journal as J
from p2porch.raft.journal import DurableJournal


class Disk:
    """Tracks, per inode, the file size that was durable at the last sync of that file."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.durable: dict[int, int] = {}
        self.paths: dict[int, str] = {}
        real_fdatasync, real_fsync = os.fdatasync, os.fsync

        def sync(fd: int, real: Any = real_fdatasync) -> None:
            st = os.fstat(fd)
            self.durable[st.st_ino] = st.st_size
            real(fd)

        monkeypatch.setattr(os, "fdatasync", sync)
        monkeypatch.setattr(os, "fsync", lambda fd: sync(fd, real_fsync))

    def crash(self, *paths: Path) -> None:
        """Power loss: cut every file back to its last durable size (0 if never synced)."""
        for path in paths:
            if path.exists():
                ino = path.stat().st_ino
                os.truncate(path, self.durable.get(ino, 0))


def entries(n: int, term: int = 1, start: int = 1) -> list[tuple[bytes, int, int]]:
    return [(f"cmd-{i}".encode() * 3, i, term) for i in range(start, start + n)]


def test_every_added_entry_survives_power_loss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = Disk(monkeypatch)
    path = tmp_path / "raft.journal"
    j = DurableJournal(path)
    for e in entries(50):
        j.add(*e)  # pysyncobj acks (or counts for commit) right after add() returns
    disk.crash(path)
    again = DurableJournal(path)
    assert [again[i] for i in range(len(again))] == entries(50)


def syncs_during(monkeypatch: pytest.MonkeyPatch, action: Any) -> int:
    """How many fsync/fdatasync/msync calls ``action`` made."""
    import mmap

    count = 0
    real_fdatasync, real_fsync = os.fdatasync, os.fsync

    def counted(real: Any) -> Any:
        def wrapper(*a: Any) -> Any:
            nonlocal count
            count += 1
            return real(*a)

        return wrapper

    monkeypatch.setattr(os, "fdatasync", counted(real_fdatasync))
    monkeypatch.setattr(os, "fsync", counted(real_fsync))
    real_flush = mmap.mmap.flush

    class CountingMmap(mmap.mmap):
        def flush(self, *a: Any) -> Any:
            nonlocal count
            count += 1
            return real_flush(self, *a)

    import pysyncobj.journal as stock

    monkeypatch.setattr(stock.mmap, "mmap", CountingMmap)
    action()
    return count


@pytest.mark.parametrize("kind", ["stock", "durable"])
def test_add_syncs_before_returning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """pysyncobj acknowledges an entry right after journal.add() returns, so add() must sync.

    The stock mmap FileJournal (PySyncObj #84) makes no sync at all; this is the gap we close."""
    path = tmp_path / "j"
    j = FileJournal(str(path)) if kind == "stock" else DurableJournal(path)
    count = syncs_during(monkeypatch, lambda: [j.add(*e) for e in entries(10)])
    if kind == "stock":
        assert count == 0
    else:
        assert count >= 10


def test_term_and_vote_are_durable_before_return(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = Disk(monkeypatch)
    path = tmp_path / "raft.journal"
    j = DurableJournal(path)
    j.add(b"x", 1, 0)
    j.setCurrentTerm(7, "127.0.0.1:1")
    disk.crash(path, path.with_name("raft.journal.meta"))
    again = DurableJournal(path)
    assert (again.getCurrentTerm(), again.getVotedForNodeId()) == (7, "127.0.0.1:1")


def test_truncation_and_compaction_are_durable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = Disk(monkeypatch)
    path = tmp_path / "raft.journal"
    j = DurableJournal(path)
    for e in entries(10):
        j.add(*e)
    j.deleteEntriesFrom(6)  # conflict: drop entries 7..10
    for e in entries(2, term=2, start=7):
        j.add(*e)
    j.deleteEntriesTo(3)  # compaction: keep entries 4..8
    disk.crash(path, path.with_name("raft.journal.meta"))
    again = DurableJournal(path)
    expected = entries(3, start=4) + entries(2, term=2, start=7)
    assert [again[i] for i in range(len(again))] == expected


def test_torn_tail_is_cut_off(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    j = DurableJournal(path)
    for e in entries(5):
        j.add(*e)
    j._destroy()
    with open(path, "ab") as f:
        f.write(b"\x10\x00\x00\x00garbage-half-record")
    again = DurableJournal(path)
    assert len(again) == 5 and again.torn_bytes_dropped > 0
    again.add(b"next", 6, 1)
    again._destroy()
    assert len(DurableJournal(path)) == 6


def test_corrupt_last_record_is_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    j = DurableJournal(path)
    for e in entries(5):
        j.add(*e)
    j._destroy()
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # flip a byte of the last command: its CRC no longer matches
    path.write_bytes(bytes(data))
    assert len(DurableJournal(path)) == 4


def test_corruption_before_the_tail_stops_the_node(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    j = DurableJournal(path)
    for e in entries(5):
        j.add(*e)
    second = j._offsets[1]
    j._destroy()
    data = bytearray(path.read_bytes())
    data[second + 30] ^= 0xFF  # a byte inside entry 2's command: three intact records follow
    path.write_bytes(bytes(data))
    size = len(data)
    with pytest.raises(J.JournalCorruptError) as info:
        DurableJournal(path)
    assert str(path) in str(info.value) and f"offset {second}" in str(info.value)
    assert path.stat().st_size == size  # nothing was cut


def test_not_a_journal_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    path.write_bytes(b"something else entirely")
    with pytest.raises(ValueError):
        DurableJournal(path)


def test_write_file_atomic_syncs_file_and_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    J.write_file_atomic(tmp_path / "f", b"data")
    assert (tmp_path / "f").read_bytes() == b"data" and len(synced) == 2


# --- overlapping append_entries (pysyncobj truncates matching entries it already acknowledged) ---


def test_entries_of_one_message_share_one_sync_made_before_the_block_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a follower taking a leader's message of many entries (a joining node catching up)
    disk = Disk(monkeypatch)
    path = tmp_path / "raft.journal"
    journal = DurableJournal(path)
    before = journal.syncs
    with journal.syncs_deferred():
        for idx in range(1, 51):
            journal.add(b"cmd%d" % idx, idx, 1)
        assert journal.syncs == before  # not one each
        journal.sync_deferred()  # the answer to the leader acknowledges them: on disk first
        assert journal.syncs == before + 1
        journal.add(b"late", 51, 1)
    assert journal.syncs == before + 2  # the block's end syncs what came after the answer
    journal.sync_deferred()
    assert journal.syncs == before + 2  # nothing left to sync: no syscall
    journal.add(b"outside", 52, 1)
    assert journal.syncs == before + 3  # outside a block every add syncs before it returns
    journal._destroy()
    disk.crash(path)
    assert [e[1] for e in DurableJournal(path)] == list(range(1, 53))
