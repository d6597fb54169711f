"""A durable Raft journal for pysyncobj (shell: file I/O on the Raft thread).

pysyncobj's own FileJournal writes entries into an mmap and never msyncs it, and stores the commit
index through a rename without fsync (PySyncObj #84, #197). This journal implements the same duck-typed
interface (``add``, ``clear``, ``deleteEntriesFrom``, ``deleteEntriesTo``, indexing, term/vote and
commit-index accessors) with plain appends and ``fdatasync`` before every method returns, so an entry
is on disk before pysyncobj can acknowledge it to a leader or count it towards a commit, and
``currentTerm``/``votedFor`` are on disk before a vote leaves the node. Records carry a CRC so a torn
tail left by a crash (an incomplete or corrupt *last* record) is cut off on open; a corrupt record
with intact data after it is not a crash artefact, so opening stops with :class:`JournalCorruptError`
naming the file and offset instead of dropping entries that may be acknowledged (docs/raft.md says
what the operator does). It never imports pysyncobj and never talks to the network.
"""

from __future__ import annotations

import contextlib
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import msgpack

from ..errors import RaftError

MAGIC = b"P2PRJ001"
_HEADER = struct.Struct("<IIQQ")  # command length, crc32, index, term


class JournalCorruptError(RaftError):
    """A journal record before the last one fails its checksum: the node must not start on it."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that after a crash either the old or the new content is there."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
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
    """Append-only, fdatasync'ed entry log plus a small meta file (term, vote, commit index).

    Owns the files ``<path>`` and ``<path>.meta``; entries are also kept in memory as
    ``(command, index, term)`` tuples, as pysyncobj expects.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)
        self._meta_path = self._path.with_name(self._path.name + ".meta")
        self._entries: list[tuple[bytes, int, int]] = []
        self._offsets: list[int] = []  # file offset where each entry's record starts
        self.torn_bytes_dropped = 0
        self.syncs = 0
        self._meta: dict[str, Any] = self._load_meta()
        self._meta_dirty = False
        self._fd = self._open_and_load()

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

    def _open_and_load(self) -> int:
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        data = b""
        with open(fd, "rb", closefd=False) as f:
            data = f.read()
        if not data:
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
            os.fsync(fd)
        os.lseek(fd, pos, os.SEEK_SET)
        return fd

    # --- pysyncobj journal interface -------------------------------------------------------------

    def add(self, command: bytes, idx: int, term: int) -> None:
        command = bytes(command)
        offset = os.lseek(self._fd, 0, os.SEEK_END)
        record = _record(command, idx, term)
        view = memoryview(record)
        while view:
            view = view[os.write(self._fd, view) :]
        self._sync()
        self._entries.append((command, idx, term))
        self._offsets.append(offset)

    def clear(self) -> None:
        self._entries = []
        self._offsets = []
        os.ftruncate(self._fd, len(MAGIC))
        self._sync()

    def deleteEntriesFrom(self, entryFrom: int) -> None:  # noqa: N802 (pysyncobj's name)
        if entryFrom >= len(self._entries):
            return
        os.ftruncate(self._fd, self._offsets[entryFrom])
        self._sync()
        del self._entries[entryFrom:]
        del self._offsets[entryFrom:]

    def deleteEntriesTo(self, entryTo: int) -> None:  # noqa: N802
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

    def __getitem__(self, item: Any) -> Any:
        return self._entries[item]

    def __len__(self) -> int:
        return len(self._entries)

    def _destroy(self) -> None:
        self.onOneSecondTimer()
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1

    def flush(self) -> None:
        self._sync()

    def setRaftCommitIndex(self, raftCommitIndex: int) -> None:  # noqa: N802
        if self._meta.get("commit_index") != raftCommitIndex:
            self._meta["commit_index"] = raftCommitIndex
            self._meta_dirty = True

    def getRaftCommitIndex(self) -> int:  # noqa: N802
        return int(self._meta.get("commit_index", 1))

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
        if self._meta_dirty:
            self._store_meta()

    # --- internals -------------------------------------------------------------------------------

    def _store_meta(self) -> None:
        write_file_atomic(self._meta_path, msgpack.packb(self._meta, use_bin_type=True))
        self._meta_dirty = False

    def _sync(self) -> None:
        os.fdatasync(self._fd)
        self.syncs += 1


def lower_replica_term(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """Before a read-only replica opens ``path``: set its saved term down to its last entry's term.

    A replica never votes, so its term only decides which leaders it listens to (pysyncobj ignores an
    ``append_entries`` of a lower term and, unlike Raft, does not tell that leader). A voter that was
    removed (or cut off) keeps starting elections and raising its term; restarted as a replica with
    that term, it would ignore the real leader, whose term is lower, for ever and never catch up again.
    No leader's term is below the last term in this log (a later leader's term is higher than every
    term before it), so the lowered term still refuses leaders older than what this node has seen.
    The vote is forgotten with it (it belonged to the higher term). Returns ``(old, new)`` when it
    lowered the term, else None. Never creates the journal.
    """
    if not Path(path).exists():
        return None
    journal = DurableJournal(path)
    try:
        term = journal.getCurrentTerm()
        last = journal[-1][2] if len(journal) else 0
        if term <= last:
            return None
        journal.setCurrentTerm(last, None)
        return term, last
    finally:
        journal._destroy()


def align_to_dump(path: str | os.PathLike[str], prev: tuple[Any, ...], last: tuple[Any, ...]) -> int:
    """Before pysyncobj opens ``path``: make the journal start at the dump's ``prev`` entry.

    A dump is renamed into place before the log it covers is cut (``dumps.py`` writes it on a worker
    thread; the cut waits for the next Raft tick). pysyncobj, loading a dump whose two entries are not
    the journal's first two, clears the whole journal, losing every entry appended after the dump
    began: acknowledged writes when a crash or a stop lands in that window. Cutting the journal to the
    dump's entries here keeps them. A journal that does not hold ``prev`` followed by ``last`` is left
    alone. Returns the number of entries dropped (all covered by the dump); never creates the journal.
    """
    if not Path(path).exists():
        return 0
    journal = DurableJournal(path)
    try:
        first = journal[0][1] if len(journal) else None
        at = None if first is None else prev[1] - first
        if at is None or at <= 0 or at + 1 >= len(journal):
            return 0
        if tuple(journal[at]) != tuple(prev) or tuple(journal[at + 1]) != tuple(last):
            return 0
        journal.deleteEntriesTo(at)
        return at
    finally:
        journal._destroy()
