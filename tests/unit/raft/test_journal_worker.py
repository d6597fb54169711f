"""The journal's worker sync (raft/journal.py ``syncs_in_background``): ``durable_index`` never claims an
entry a power loss could take, the worker never syncs a file being replaced, a failed sync fails the
journal, and the commit index on disk never passes the durable entries."""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_journal import Disk, entries

from p2porch.raft import journal as J
from p2porch.raft.journal import DurableJournal


class Held:
    """The worker's fdatasync waits for ``release``; ``inodes`` are the file's before and after it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entered, self.released = threading.Event(), threading.Event()
        self.inodes: list[tuple[int, int]] = []
        real = J.background_fdatasync

        def held(fd: int) -> None:
            before = os.fstat(fd).st_ino
            self.entered.set()
            assert self.released.wait(10)
            real(fd)
            self.inodes.append((before, os.fstat(fd).st_ino))

        monkeypatch.setattr(J, "background_fdatasync", held)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[DurableJournal]:
    j = DurableJournal(tmp_path / "raft.journal")
    yield j
    j._destroy()


def _durable(j: DurableJournal) -> threading.Event:
    done = threading.Event()
    j.on_durable = done.set
    return done


def test_the_worker_makes_a_drain_durable_and_says_so(journal: DurableJournal) -> None:
    for e in entries(3):
        journal.add(*e)
    assert journal.durable_index == 3 and not journal.unsynced  # outside a block: synced on return
    done = _durable(journal)
    syncs = journal.syncs
    with journal.syncs_in_background():
        for e in entries(4, start=4):
            journal.add(*e)
        assert journal.durable_index == 3 and journal.unsynced
    assert done.wait(10)
    assert journal.durable_index == 7 and not journal.unsynced
    assert journal.syncs == syncs + 1  # the four shared one fdatasync
    assert "fdatasyncs 4 (at most 4 entries in one" in (line := journal.sync_stats.take())
    assert "; 1 on the worker thread" in line  # the leader's flow log tells the two apart


def test_a_power_loss_never_takes_an_entry_below_the_durable_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = Disk(monkeypatch)
    path = tmp_path / "raft.journal"
    j = DurableJournal(path)
    for e in entries(2):
        j.add(*e)
    held = Held(monkeypatch)
    with j.syncs_in_background():
        for e in entries(5, start=3):
            j.add(*e)
    assert held.entered.wait(10)
    durable = j.durable_index
    assert durable == 2  # the worker's sync has not returned: nothing it covers counts yet
    disk.crash(path)  # the power fails while the worker waits
    again = DurableJournal(path)
    assert len(again) >= durable and [again[i] for i in range(durable)] == entries(2)
    again._destroy()
    held.released.set()
    j._destroy()


def test_a_follower_answer_does_not_wait_for_the_worker(
    journal: DurableJournal, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = Held(monkeypatch)
    with journal.syncs_in_background():  # led, then stepped down with the sync still pending
        for e in entries(3):
            journal.add(*e)
    assert held.entered.wait(10)
    journal.sync_deferred()  # a follower's answer: it syncs on its own thread
    assert journal.durable_index == 3 and not journal.unsynced
    held.released.set()


def test_compaction_waits_for_the_workers_sync(
    journal: DurableJournal, monkeypatch: pytest.MonkeyPatch
) -> None:
    for e in entries(4):
        journal.add(*e)
    held = Held(monkeypatch)
    done = _durable(journal)
    with journal.syncs_in_background():
        for e in entries(4, start=5):
            journal.add(*e)
    assert held.entered.wait(10)
    compaction = threading.Thread(target=journal.deleteEntriesTo, args=(3,))
    compaction.start()
    compaction.join(0.3)  # it waits for the file lock the worker holds (a wait, not an assertion)
    held.released.set()
    compaction.join(10)
    assert done.wait(10)
    assert held.inodes and held.inodes[0][0] == held.inodes[0][1]  # never synced a replaced file
    assert journal._failed is None
    assert [journal[i] for i in range(len(journal))] == entries(5, start=4)
    assert journal.durable_index == 8


def test_a_failed_worker_sync_fails_the_journal(
    journal: DurableJournal, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal.add(*entries(1)[0])
    failed = threading.Event()

    def fail(fd: int) -> None:
        failed.set()
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(J, "background_fdatasync", fail)
    with journal.syncs_in_background():
        journal.add(b"second", 2, 1)
    assert failed.wait(10)
    with journal._file_lock:  # the worker has recorded the failure once it let go of the file
        pass
    assert journal.durable_index == 1
    for read in (lambda: journal[-1], lambda: len(journal), journal.sync_deferred, journal.request_sync):
        with pytest.raises(J.JournalFailedError):
            read()  # the leader's commit count reads journal[-1] first: nothing counts after the failure


def test_the_commit_index_on_disk_never_passes_the_durable_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "raft.journal"
    j = DurableJournal(path)
    for e in entries(3):
        j.add(*e)
    held = Held(monkeypatch)
    with j.syncs_in_background():
        for e in entries(3, start=4):
            j.add(*e)
    assert held.entered.wait(10)
    j.setRaftCommitIndex(6)  # the followers' copies committed it while the leader's sync is pending
    j.onOneSecondTimer()
    commit = path.with_name("raft.journal.commit")
    assert J.unpack_commit_index(commit.read_bytes()) == 3
    done = _durable(j)
    held.released.set()
    assert done.wait(10)
    j.onOneSecondTimer()
    assert J.unpack_commit_index(commit.read_bytes()) == 6
    j._destroy()


def test_entries_after_a_clear_count_from_the_snapshot(
    journal: DurableJournal, monkeypatch: pytest.MonkeyPatch
) -> None:
    for e in entries(3):
        journal.add(*e)
    journal.clear()  # a snapshot was installed: the journal starts again after its index
    assert journal.durable_index == 0
    journal.add(b"after", 101, 2)
    assert journal.durable_index == 101
    held = Held(monkeypatch)
    with journal.syncs_in_background():
        journal.add(b"next", 102, 2)
    assert held.entered.wait(10)
    assert journal.durable_index == 101
    held.released.set()


def test_a_reopened_journal_holds_its_entries_durable(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    j = DurableJournal(path)
    with j.syncs_deferred():
        for e in entries(4):
            j.add(*e)
    j._destroy()
    again = DurableJournal(path)
    assert again.durable_index == 4  # opening syncs what it read
    again._destroy()
