"""A durable Raft journal for pysyncobj (shell: file I/O on the Raft thread, and a leader's fdatasync on
a worker thread of its own).

pysyncobj's own FileJournal writes entries into an mmap and never msyncs it, and stores the commit
index through a rename without fsync (PySyncObj #84, #197). This journal implements the same duck-typed
interface (``add``, ``clear``, ``deleteEntriesFrom``, ``deleteEntriesTo``, indexing, term/vote and
commit-index accessors) with plain appends and ``fdatasync`` before every method returns (a follower
taking one message of many entries syncs once for them all, before it answers: ``syncs_deferred``),
so an entry is on disk before pysyncobj can acknowledge it to a leader, and a leader's drain is synced
by a worker thread while the leader counts itself only up to ``durable_index`` (durable_commit.py), and
``currentTerm``/``votedFor`` are on disk before a vote leaves the node (``<path>.meta``, fsynced and
renamed). The commit index, volatile state in Raft, has its own file ``<path>.commit`` written in place
with no sync (a stale, torn or missing one only makes the node learn it again: docs/raft.md). A failed
write or sync fails the journal for good (:class:`JournalFailedError`): after it nothing reads the
entries, so none that may not be on disk is acknowledged or counted. Records carry a CRC so a torn
tail left by a crash (an incomplete or corrupt *last* record) is cut off on open; a corrupt record
with intact data after it is not a crash artefact, so opening stops with :class:`JournalCorruptError`
naming the file and offset instead of dropping entries that may be acknowledged (docs/raft.md says
what the operator does). It never imports pysyncobj and never talks to the network.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack

from ..errors import RaftError

MAGIC = b"P2PRJ001"
_HEADER = struct.Struct("<IIQQ")  # command length, crc32, index, term


class JournalCorruptError(RaftError):
    """A journal record before the last one fails its checksum: the node must not start on it."""


class JournalFailedError(RaftError):
    """A write or sync of the journal failed: its entries may not be on disk, so it is not used again
    (a retried fsync can report success for pages the kernel already dropped); restart the node."""


_COMMIT = struct.Struct("<QI")  # commit index, crc32 of its 8 bytes


def pack_commit_index(index: int) -> bytes:
    """The commit-index file's content: the index and its checksum (a torn write fails the check)."""
    raw = struct.pack("<Q", index)
    return raw + struct.pack("<I", zlib.crc32(raw))


def unpack_commit_index(data: bytes) -> int | None:
    """The index in a commit-index file, or None when it is missing, short or torn."""
    if len(data) != _COMMIT.size:
        return None
    index, crc = _COMMIT.unpack(data)
    return int(index) if zlib.crc32(data[:8]) == crc else None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that after a crash either the old or the new content is there."""
    tmp = path.with_name(path.name + ".tmp")
    try:  # a leftover temp file keeps its mode through O_TRUNC: start a new one, 0600
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def durable_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Rename ``src`` over ``dst`` so the new content survives a power loss once this returns.

    fsync the file (its data may still be only in the page cache), rename, fsync the directory.
    """
    fd = os.open(src, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(src, dst)
    _fsync_dir(Path(dst).parent)


def _record(command: bytes, idx: int, term: int) -> bytes:
    head = struct.pack("<QQ", idx, term)
    crc = zlib.crc32(command, zlib.crc32(head))
    return _HEADER.pack(len(command), crc, idx, term) + command


class DurableJournal:
    """Append-only, fdatasync'ed entry log, a meta file (term, vote) and a commit-index file.

    Owns the files ``<path>``, ``<path>.meta`` and ``<path>.commit``; entries are also kept in memory as
    ``(command, index, term)`` tuples, as pysyncobj expects. It never stores a commit index past the
    entries synced here (:meth:`_commit_to_store`), and never lets a torn commit-index file touch
    term/vote.

    A leader's appends may be synced by a worker thread (:meth:`syncs_in_background`): ``durable_index``
    is the highest index an ``fdatasync`` that began after its write returned, so the leader counts
    itself towards a commit only up to it (``leader_commit.py``). The worker is the only other thread
    that touches the file: it syncs, it never writes, truncates or closes.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)
        self._meta_path = self._path.with_name(self._path.name + ".meta")
        self._entries: list[tuple[bytes, int, int]] = []
        self._offsets: list[int] = []  # file offset where each entry's record starts
        self.torn_bytes_dropped = 0
        self.syncs = 0
        self._commit_path = self._path.with_name(self._path.name + ".commit")
        self._meta: dict[str, Any] = self._load_meta()
        # journals written before the commit-index file kept it in the meta file: read it once from there
        legacy = self._meta.pop("commit_index", None)
        self._deferring = False  # inside syncs_deferred(): add() leaves the fdatasync to its end
        self._failed: BaseException | None = None
        # The background sync (a leader's appends): ``_lock`` guards the indexes, the stats and the
        # worker's request flags; ``_file_lock`` is held by the worker for its whole fdatasync and by
        # every change other than an append (truncate, compact, clear, close), so the worker never
        # syncs a descriptor that is being replaced and no index moves under it. Order: file, then lock.
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._file_lock = threading.Lock()
        self._written_index = 0  # the last entry written to the file
        self._durable_index = 0  # the last entry an fdatasync made durable
        self._sync_requested = False
        self._stopping = False
        self._worker: threading.Thread | None = None
        #: Called by the worker (its own thread) after it made more entries durable: the Raft thread's
        #: wake-up, so the leader counts itself at once instead of at its next timer.
        self.on_durable: Callable[[], None] | None = None
        self.sync_stats = SyncStats()
        self._created = False
        self._fd = self._open_and_load()
        self._commit_fd, stored = self._open_commit()
        if self._created:  # a new journal (its directory was wiped): an old commit index means nothing
            stored = legacy = None
        self._commit_index = stored if stored is not None else int(legacy if legacy is not None else 1)
        self._commit_stored = stored

    # --- loading ---------------------------------------------------------------------------------

    def _load_meta(self) -> dict[str, Any]:
        try:
            data = self._meta_path.read_bytes()
        except FileNotFoundError:
            return {}
        meta = msgpack.unpackb(data, raw=False)
        if not isinstance(meta, dict):
            raise ValueError(f"{self._meta_path}: bad journal meta")
        return meta

    def _open_commit(self) -> tuple[int, int | None]:
        fd = os.open(self._commit_path, os.O_RDWR | os.O_CREAT, 0o600)
        return fd, unpack_commit_index(os.pread(fd, _COMMIT.size + 1, 0))

    def _open_and_load(self) -> int:
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        data = b""
        with open(fd, "rb", closefd=False) as f:
            data = f.read()
        if not data:
            self._created = True
            os.write(fd, MAGIC)
            os.fsync(fd)
            _fsync_dir(self._path.parent)
            return fd
        if not data.startswith(MAGIC):
            os.close(fd)
            raise ValueError(f"{self._path} is not a p2porch journal")
        pos = len(MAGIC)
        while pos + _HEADER.size <= len(data):
            length, crc, idx, term = _HEADER.unpack_from(data, pos)
            end = pos + _HEADER.size + length
            if end > len(data):
                break
            command = data[pos + _HEADER.size : end]
            if zlib.crc32(command, zlib.crc32(struct.pack("<QQ", idx, term))) != crc:
                if end < len(data):  # intact-looking data follows: not a torn write
                    os.close(fd)
                    raise JournalCorruptError(
                        f"{self._path}: corrupt record at offset {pos} (entry {idx}, term {term}) with "
                        f"{len(data) - end} bytes after it; refusing to start. Move the Raft directory "
                        "aside and let the node resynchronise from the cluster (docs/raft.md)"
                    )
                break
            self._entries.append((command, idx, term))
            self._offsets.append(pos)
            pos = end
        if pos != len(data):  # torn or corrupt tail from a crash: cut it off
            self.torn_bytes_dropped = len(data) - pos
            os.ftruncate(fd, pos)
        # what was read may be only in the page cache (a kill -9 before a sync): durable from here on
        os.fsync(fd)
        os.lseek(fd, pos, os.SEEK_SET)
        if self._entries:
            self._written_index = self._durable_index = self._entries[-1][1]
        return fd

    # --- pysyncobj journal interface -------------------------------------------------------------

    def add(self, command: bytes, idx: int, term: int) -> None:
        self._check()
        command = bytes(command)
        try:
            offset = os.lseek(self._fd, 0, os.SEEK_END)
            view = memoryview(_record(command, idx, term))
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            raise self._fail(exc) from exc
        with self._lock:
            if self._written_index <= self._durable_index:  # all before ``idx`` is durable: in the file, or
                self._durable_index = max(self._durable_index, idx - 1)  # before it (a synced dump's)
            self._written_index = idx
        self.sync_stats.added()
        if not self._deferring:
            self._sync()
        self._entries.append((command, idx, term))
        self._offsets.append(offset)

    @property
    def durable_index(self) -> int:
        """The highest entry index known to be on disk here (0: none); entries are durable in order."""
        return self._durable_index

    @property
    def unsynced(self) -> bool:
        """Whether entries were written that no finished fdatasync covers yet."""
        return self._written_index > self._durable_index

    @contextlib.contextmanager
    def syncs_deferred(self) -> Iterator[None]:
        """Entries added inside the block share one fdatasync, at its end at the latest (a follower
        taking a leader's message of many entries: a joining node catching up on the whole log).
        Whoever acknowledges an entry to the leader calls :meth:`sync_deferred` first."""
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
            self.sync_deferred()

    def sync_deferred(self) -> None:
        """Make the entries added since the last fdatasync durable (nothing to do: no syscall). Does not
        wait for a background sync: it syncs itself, so an answer never waits behind the worker."""
        self._check()
        if self.unsynced:
            self._sync()

    @contextlib.contextmanager
    def syncs_in_background(self) -> Iterator[None]:
        """Entries added inside the block are synced by the worker thread after it (a leader's drain:
        sent to the followers at once, counted by the leader only up to :attr:`durable_index`)."""
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
            self.request_sync()

    def request_sync(self) -> None:
        """Ask the worker to sync what was written so far (returns at once; starts the worker)."""
        self._check()
        with self._lock:
            if self._written_index <= self._durable_index or self._stopping:
                return
            self._sync_requested = True
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._sync_worker, name="raft-journal-sync", daemon=True
                )
                self._worker.start()
            self._wake.notify()

    def _sync_worker(self) -> None:
        while True:
            with self._lock:
                while not self._sync_requested and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    return
                self._sync_requested = False
            with self._file_lock:
                with self._lock:
                    fd, target = self._fd, self._written_index
                    if self._failed is not None or fd < 0 or target <= self._durable_index:
                        continue
                started = time.monotonic()
                try:
                    background_fdatasync(fd)
                except OSError as exc:  # the journal fails: nothing after this counts or acknowledges
                    self._failed = exc
                    continue
                self._synced(target, time.monotonic() - started, worker=True)
            callback = self.on_durable
            if callback is not None:
                with contextlib.suppress(Exception):  # a closed notifier: the next tick counts it anyway
                    callback()

    def clear(self) -> None:
        self._check()
        with self._file_lock:
            self._entries = []
            self._offsets = []
            os.ftruncate(self._fd, len(MAGIC))
            self._sync()
            with self._lock:
                self._written_index = self._durable_index = 0

    def deleteEntriesFrom(self, entryFrom: int) -> None:  # noqa: N802 (pysyncobj's name)
        self._check()
        if entryFrom >= len(self._entries):
            return
        with self._file_lock:
            os.ftruncate(self._fd, self._offsets[entryFrom])
            self._sync()
            del self._entries[entryFrom:]
            del self._offsets[entryFrom:]
            last = self._entries[-1][1] if self._entries else 0
            with self._lock:
                self._written_index = self._durable_index = last

    def deleteEntriesTo(self, entryTo: int) -> None:  # noqa: N802
        self._check()
        with self._file_lock:
            self._compact(entryTo)

    def _compact(self, entryTo: int) -> None:  # noqa: N803
        keep = self._entries[entryTo:]
        tmp = self._path.with_name(self._path.name + ".compact")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        offsets = []
        try:
            pos = os.write(fd, MAGIC)
            chunks = []
            for command, idx, term in keep:
                rec = _record(command, idx, term)
                offsets.append(pos)
                pos += len(rec)
                chunks.append(rec)
            blob = memoryview(b"".join(chunks))
            while blob:
                blob = blob[os.write(fd, blob) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self._path)
        _fsync_dir(self._path.parent)
        os.close(self._fd)
        self._fd = os.open(self._path, os.O_RDWR)
        os.lseek(self._fd, 0, os.SEEK_END)
        self._entries = list(keep)
        self._offsets = offsets
        with self._lock:  # the new file holds exactly the entries kept, fsynced
            self._durable_index = self._written_index

    def __getitem__(self, item: Any) -> Any:
        if self._failed is not None:  # pysyncobj reads its log index here before it counts a commit
            self._check()
        return self._entries[item]

    def __len__(self) -> int:
        self._check()
        return len(self._entries)

    def _destroy(self) -> None:
        with self._lock:  # the worker ends (a sync it runs finishes first: it holds the file lock)
            self._stopping = True
            self._wake.notify()
        if self._failed is None:
            with contextlib.suppress(OSError, JournalFailedError):  # a clean stop: entries, commit index
                if self.unsynced:
                    self._sync()
                self._store_commit_index()
                os.fdatasync(self._commit_fd)
        with self._file_lock:
            for name in ("_fd", "_commit_fd"):
                fd = getattr(self, name, -1)
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)
                    setattr(self, name, -1)

    def flush(self) -> None:
        self._sync()

    def setRaftCommitIndex(self, raftCommitIndex: int) -> None:  # noqa: N802
        self._commit_index = raftCommitIndex  # stored by the next onOneSecondTimer

    def getRaftCommitIndex(self) -> int:  # noqa: N802
        return self._commit_index

    def setCurrentTerm(self, term: int, votedForNodeId: str | None) -> None:  # noqa: N802, N803
        # Raft: term and vote must be durable before any message reflecting them is sent.
        self._meta["term"] = term
        self._meta["voted_for"] = votedForNodeId
        self._store_meta()

    def getCurrentTerm(self) -> int:  # noqa: N802
        return int(self._meta.get("term", 0))

    def getVotedForNodeId(self) -> str | None:  # noqa: N802
        voted = self._meta.get("voted_for")
        return None if voted is None else str(voted)

    def onOneSecondTimer(self) -> None:  # noqa: N802
        """Store the commit index if it changed: one 12-byte write into the page cache, no sync (Raft
        thread). The value stored never passes :attr:`durable_index` while entries wait for a sync, so
        every entry up to it is on disk here (docs/raft.md, "The leader's syncs and the commit index on
        disk"). A failed write is tried again a second later: a missing value costs only learning it
        again."""
        if self._commit_to_store() != self._commit_stored and self._failed is None:
            with contextlib.suppress(OSError):
                self._store_commit_index()

    # --- a replica's lowered term (journal_start.py says why) --------------------------------------

    def vote_floor(self) -> tuple[int, str | None] | None:
        """The highest term this node saved before it lowered its term, and its vote in that term."""
        floor = self._meta.get("vote_floor")
        return None if floor is None else (int(floor[0]), None if floor[1] is None else str(floor[1]))

    def lower_term(self, term: int) -> None:
        """Save ``term`` (below the current one) with no vote; the current term and its vote become the
        vote floor unless a floor at least as high is kept already. One atomic meta write."""
        floor = self.vote_floor()
        if floor is None or floor[0] < self.getCurrentTerm():
            self._meta["vote_floor"] = [self.getCurrentTerm(), self.getVotedForNodeId()]
        self._meta["term"] = term
        self._meta["voted_for"] = None
        self._store_meta()

    def raise_to_vote_floor(self) -> tuple[int, int] | None:
        """Drop the vote floor, first raising the term back to it with the vote cast in it if the saved
        term is not above it. Returns ``(old, new)`` terms when it raised or restored a vote."""
        floor = self.vote_floor()
        if floor is None:
            return None
        old = self.getCurrentTerm()
        del self._meta["vote_floor"]
        raised = old <= floor[0]
        if raised:  # a replica never votes: at the floor's term the only vote is the one kept
            self._meta["term"], self._meta["voted_for"] = floor
        self._store_meta()
        return (old, floor[0]) if raised else None

    # --- internals -------------------------------------------------------------------------------

    def _store_meta(self) -> None:
        write_file_atomic(self._meta_path, msgpack.packb(self._meta, use_bin_type=True))

    def _commit_to_store(self) -> int:
        """The commit index, but never past an entry not yet durable here: a leader commits on its
        followers' copies alone while its own sync is pending (``leader_commit.py``)."""
        with self._lock:
            if self._written_index > self._durable_index:
                return max(1, min(self._commit_index, self._durable_index))
        return self._commit_index

    def _store_commit_index(self) -> None:
        index = self._commit_to_store()
        if os.pwrite(self._commit_fd, pack_commit_index(index), 0) != _COMMIT.size:
            raise OSError(f"{self._commit_path}: short write")
        self._commit_stored = index

    def _check(self) -> None:
        if self._failed is not None:
            raise JournalFailedError(f"{self._path}: a write or sync failed earlier ({self._failed})")

    def _fail(self, exc: BaseException) -> JournalFailedError:
        self._failed = exc
        return JournalFailedError(f"{self._path}: {exc}; the journal is not used again, restart the node")

    def _sync(self) -> None:
        """fdatasync on the calling (Raft) thread; everything written before it is durable after it."""
        self._check()
        target = self._written_index
        started = time.monotonic()
        try:
            os.fdatasync(self._fd)
        except OSError as exc:
            raise self._fail(exc) from exc
        self._synced(target, time.monotonic() - started)

    def _synced(self, target: int, seconds: float, worker: bool = False) -> None:
        with self._lock:
            self._durable_index = max(self._durable_index, target)
            self.syncs += 1
        self.sync_stats.synced(seconds, worker)


def background_fdatasync(fd: int) -> None:
    """The worker's sync (a module function so a test process can hold it: ``raft/node.py``)."""
    os.fdatasync(fd)


class SyncStats:
    """Counters of one journal's appends and fdatasyncs, taken (and reset) by the leader's flow log. The
    Raft thread and the journal's worker both count: a lock of its own keeps every count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.adds = self.syncs = self.unsynced = self.max_batch = 0
        self.sync_s = self.max_sync_s = 0.0
        self.worker_syncs, self.worker_s = 0, 0.0

    def added(self) -> None:
        with self._lock:
            self.adds += 1
            self.unsynced += 1

    def synced(self, seconds: float, worker: bool = False) -> None:
        with self._lock:
            self.syncs += 1
            self.sync_s += seconds
            self.max_sync_s = max(self.max_sync_s, seconds)
            self.max_batch = max(self.max_batch, self.unsynced)
            self.unsynced = 0
            if worker:
                self.worker_syncs += 1
                self.worker_s += seconds

    def take(self) -> str:
        with self._lock:
            text = (
                f"journal adds {self.adds}, fdatasyncs {self.syncs} "
                f"(at most {self.max_batch} entries in one; {self.sync_s:.3f} s in all, "
                f"longest {self.max_sync_s:.3f} s; "
                f"{self.worker_syncs} on the worker thread, {self.worker_s:.3f} s)"
            )
            self.adds = self.syncs = self.max_batch = self.worker_syncs = 0
            self.sync_s = self.max_sync_s = self.worker_s = 0.0
        return text
