"""Full dumps (log compaction) written on a worker thread, so the Raft thread keeps heartbeating (shell).

pysyncobj writes a dump synchronously on its Raft thread when a custom serializer is set: it calls
``serializer(tmp, data)`` and then its module-level ``atomicReplace(tmp, dump)``. At 100,000 tasks
encoding and fsyncing the state takes seconds, longer than an election timeout, so every compaction
cost an election (docs/performance.md). Here the serializer only captures the immutable state and
starts a job; ``replace`` (installed as pysyncobj's ``atomicReplace``) skips the rename of a
deferred temp file, which the job does itself once the dump is durable; ``check`` (pysyncobj's
``serializeChecker``) reports the job's outcome once, after which pysyncobj drops the log entries
the dump covers, never before. A snapshot received from the leader that lands on the dump path
while a job runs cancels the job first, so an older dump can never replace a newer one.
Encoding goes in pieces (``pack_in_pieces``): one C call per map/array entry down to a small depth, so
the worker holds the GIL only briefly at a time and the Raft and trio threads keep running while a
100,000-task state is packed; the bytes are exactly ``msgpack.packb``'s.
Owns the job threads and their bookkeeping; never touches the Raft log itself.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
from pysyncobj.config import SERIALIZER_STATE

from .journal import durable_replace, write_file_atomic

_lock = threading.Lock()
_deferred: set[str] = set()  # temp names whose rename the job does (skip pysyncobj's)
_running: dict[str, DumpJob] = {}  # dump path -> the job writing it


class DumpJob:
    """One dump: encode on a worker thread, write ``tmp`` durably, rename it over ``dump``."""

    def __init__(self, tmp: str, dump: str, encode: Callable[[], bytes]) -> None:
        self.tmp, self.dump = tmp, dump
        self._encode = encode
        self.cancelled = False
        self.outcome: int | None = None  # SERIALIZER_STATE.SUCCESS | FAILED once finished
        self.thread = threading.Thread(target=self._run, name="p2porch-dump", daemon=True)

    def _run(self) -> None:
        try:
            data = self._encode()
            write_file_atomic(Path(self.tmp), data)
            with _lock:
                if self.cancelled:  # a received snapshot replaced the dump meanwhile: it is newer
                    raise RuntimeError("dump superseded")
                durable_replace(self.tmp, self.dump)
            self.outcome = SERIALIZER_STATE.SUCCESS
        except Exception:  # noqa: BLE001 (reported to pysyncobj as FAILED; the log is kept)
            self.outcome = SERIALIZER_STATE.FAILED
            try:
                os.unlink(self.tmp)
            except OSError:
                pass
        finally:
            with _lock:
                if _running.get(self.dump) is self:
                    del _running[self.dump]


class BackgroundDumps:
    """The dump job of one store (at most one at a time) as pysyncobj's serializer and checker see it."""

    def __init__(self) -> None:
        self._job: DumpJob | None = None
        self.written = 0  # dumps that reached the disk

    def start(self, tmp: str, dump: str, encode: Callable[[], bytes]) -> None:
        """Called on the Raft thread by the serializer: begin writing a dump (``encode`` runs later)."""
        job = DumpJob(os.fspath(tmp), os.fspath(dump), encode)
        with _lock:
            _deferred.add(job.tmp)
            _running[job.dump] = job
        self._job = job
        job.thread.start()

    def check(self) -> int:
        """pysyncobj's serializeChecker: SERIALIZING while the job runs, its outcome once, then idle."""
        job = self._job
        if job is None:
            return SERIALIZER_STATE.NOT_SERIALIZING
        if job.outcome is None:
            return SERIALIZER_STATE.SERIALIZING
        self._job = None
        if job.outcome == SERIALIZER_STATE.SUCCESS:
            self.written += 1
        return job.outcome

    def wait(self, timeout_s: float) -> None:
        """Let a running job finish (closing the store): its files are written or removed, not half."""
        job = self._job
        if job is not None:
            job.thread.join(timeout_s)


DUMP_PIECE_DEPTH = 3  # the dump map, the state's fields, one record (a task, a node) per piece


def pack_in_pieces(value: Any, depth: int) -> bytes:
    """``msgpack.packb(value, use_bin_type=True)``, byte for byte, packed one entry at a time.

    Maps (dicts) and arrays (lists, tuples) less than ``depth`` levels down are written as a header
    followed by each entry packed on its own; anything deeper (and every map key) goes in one call.
    Each call holds the GIL only for its own piece, where a single ``packb`` of a large state holds it
    for the whole encoding.
    """
    packer = msgpack.Packer(use_bin_type=True)
    pieces: list[bytes] = []

    def walk(item: Any, levels: int) -> None:
        if levels > 0 and isinstance(item, dict):
            pieces.append(packer.pack_map_header(len(item)))
            for key, entry in item.items():
                pieces.append(packer.pack(key))
                walk(entry, levels - 1)
        elif levels > 0 and isinstance(item, list | tuple):
            pieces.append(packer.pack_array_header(len(item)))
            for entry in item:
                walk(entry, levels - 1)
        else:
            pieces.append(packer.pack(item))

    walk(value, depth)
    return b"".join(pieces)


def encode_dump(head: dict[str, Any], state: dict[str, Any]) -> bytes:
    """The dump file's bytes: ``head`` (``format``, ``last``, ``prev``, ``cluster``) then ``state``."""
    return pack_in_pieces(head | {"state": state}, DUMP_PIECE_DEPTH)


def replace(src: str, dst: str) -> None:
    """pysyncobj's ``atomicReplace``: durable, skipped for a job's temp file, cancelling an older job."""
    with _lock:
        src_s, dst_s = os.fspath(src), os.fspath(dst)
        if src_s in _deferred:
            _deferred.discard(src_s)
            return
        job = _running.get(dst_s)
        if job is not None:
            job.cancelled = True
        durable_replace(src_s, dst_s)


def read_head(dump: str | os.PathLike[str]) -> tuple[tuple[Any, ...], tuple[Any, ...]] | None:
    """``(prev, last)``: the two log entries a dump covers up to, read from its head without decoding
    the state (the store writes ``format``, ``last``, ``prev`` before ``state``); None when absent."""
    try:
        f = open(dump, "rb")  # noqa: SIM115 (closed below; the unpacker reads it lazily)
    except FileNotFoundError:
        return None
    with f:
        unpacker = msgpack.Unpacker(f, raw=False, strict_map_key=False, max_buffer_size=64 << 20)
        head: dict[str, Any] = {}
        for _ in range(unpacker.read_map_header()):
            key = unpacker.unpack()
            if key == "state":
                break
            head[key] = unpacker.unpack()
            if "prev" in head and "last" in head:
                return tuple(head["prev"]), tuple(head["last"])
    return None
