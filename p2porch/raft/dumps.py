"""Full dumps (log compaction) encoded and written by a forked child, so the Raft thread keeps heartbeating
(shell: processes, files).

pysyncobj writes a dump synchronously on its Raft thread when a custom serializer is set: it calls
``serializer(tmp, data)`` and then its module-level ``atomicReplace(tmp, dump)``. At 100,000 tasks encoding
and fsyncing the state takes seconds, longer than an election timeout. A worker thread (the previous form)
still held the GIL in bursts while it encoded, and with three voters dumping at once on two cores the leader
missed heartbeats in about half the runs (docs/performance.md). So the serializer forks: the child inherits
the immutable state at the compaction index copy-on-write, encodes it with one ``msgpack.packb`` at the lowest
CPU priority (``SCHED_IDLE``), writes ``<tmp>.<child pid>`` and fsyncs it, then ``os._exit``\\ s; the parent's
threads never wait on it. Meanwhile a node that needs a snapshot gets the previous dump, still the one the log
starts after (:func:`serve_dump_while_writing`). ``check`` (pysyncobj's ``serializeChecker``, Raft thread)
reaps the child without blocking and, once it exited 0, renames its file over the dump and fsyncs the
directory; only then does pysyncobj drop the log entries the dump covers. ``replace`` (installed as
pysyncobj's ``atomicReplace``) skips the rename of the temp name the serializer was given, and a snapshot
received from the leader that lands on the dump path while a child runs kills the child first, so an older
dump never replaces a newer one.

The child runs only code that takes no lock another thread of the parent could have held at the fork
(the trio thread, worker threads, logging): the state's ``to_dict`` (plain objects), msgpack's C packer
and raw ``os`` calls. It first closes every inherited descriptor but 0-2 and makes itself the OOM
killer's first choice, disables the garbage collector (no finalizer of an inherited object runs),
restores the default signal dispositions, asks the kernel to kill it if the Raft thread that forked it
ends (``PR_SET_PDEATHSIG``), never logs or prints through Python's buffered streams, and leaves by
``os._exit`` whatever happens (no atexit handler, no flush of inherited buffers). A child still running
after ``DUMP_CHILD_TIMEOUT_S`` is killed and the dump reported failed (the log is kept); after a failed
dump the next child waits :func:`retry_delay`.
Owns the dump children and their bookkeeping; never touches the Raft log itself.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import re
import signal
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import msgpack
from pysyncobj.config import SERIALIZER_STATE

from .journal import durable_replace

log = logging.getLogger(__name__)

DUMP_CHILD_TIMEOUT_S = 300.0  # a child still running then is killed (a lock it should never take?)
RETRY_FIRST_S = 5.0  # after a failed dump the next is forked no sooner than this; doubling per failure
RETRY_MAX_S = 300.0
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

# Python 3.12+ warns at every fork of a multi-threaded process; this one is deliberate (module docstring).
warnings.filterwarnings("ignore", message=r"This process .* is multi-threaded", category=DeprecationWarning)


def _libc_prctl() -> Any:
    """libc's prctl, looked up now: the child must not dlopen (the loader's lock)."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


_prctl = _libc_prctl()
_lock = threading.Lock()
_deferred: set[str] = set()  # temp names pysyncobj was given whose rename we do (skip pysyncobj's)
_running: dict[str, DumpJob] = {}  # dump path -> the child writing it


def child_file(tmp: str, pid: int) -> str:
    """The file the child ``pid`` writes: its own name, so an orphan can never write into a newer dump."""
    return f"{tmp}.{pid}"


def remove_stale(dump: str | os.PathLike[str]) -> int:
    """Remove the files of dump children that died with their parent (at start); how many."""
    path = Path(dump)
    pattern = re.compile(re.escape(path.name) + r"\.tmp\.\d+")
    removed = 0
    for entry in path.parent.iterdir() if path.parent.is_dir() else ():
        if pattern.fullmatch(entry.name):
            entry.unlink(missing_ok=True)
            removed += 1
    return removed


def _write_durable(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _lowest_priority() -> None:
    """SCHED_IDLE (nice 19 where that is refused): the child gets only CPU no other task wants, so the
    Raft threads of this and the other voters are never made to wait for an encoding."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (OSError, AttributeError):
        os.nice(19)


def _first_to_die() -> None:
    """Make the child the OOM killer's first choice (it copies much of the heap as it encodes)."""
    try:
        fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
    except OSError:
        return
    try:
        os.write(fd, b"1000")
    except OSError:
        pass
    finally:
        os.close(fd)


def _child(tmp: str, encode: Callable[[], bytes], parent: int) -> NoReturn:
    """The forked child: encode, write ``child_file`` durably, ``os._exit`` (0 on success)."""
    code = 1
    try:
        # no inherited descriptor stays open while the child lives: a Raft connection or engine socket
        # the parent closes must really close (FIN), the daemon lock must stay the parent's alone
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        _first_to_die()
        gc.disable()  # already off since the fork; no finalizer may take a lock another thread held
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())  # no Python handler runs here
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # dies with the Raft thread that forked it
        _lowest_priority()
        if os.getppid() == parent:  # else the parent died before the line above
            _write_durable(child_file(tmp, os.getpid()), encode())
            code = 0
    except BaseException as exc:  # noqa: BLE001 (reported by the exit code; stderr unbuffered, no lock)
        try:
            os.write(2, f"p2porch dump child {os.getpid()}: {exc!r}\n".encode())
        except BaseException:  # noqa: BLE001, S110
            pass
    finally:
        os._exit(code)


class DumpJob:
    """One dump child: ``pid`` writes ``child_file(tmp, pid)``; the parent renames it over ``dump``."""

    def __init__(self, tmp: str, dump: str, pid: int, started: float) -> None:
        self.tmp, self.dump, self.pid, self.started = tmp, dump, pid, started
        self.path = child_file(tmp, pid)
        self.cancelled = False

    def poll(self, now: float) -> int | None:
        """Reap the child if it exited (never waits): SUCCESS once its file is renamed over the
        dump durably, FAILED otherwise (its file removed); None while it runs."""
        try:
            rpid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # reaped by someone else: its outcome is unknown
            rpid, status = self.pid, 1
        if rpid == 0:
            if now - self.started < DUMP_CHILD_TIMEOUT_S:
                return None
            log.warning("dump child %d still running after %.0f s: killed", self.pid, now - self.started)
            self.kill()
            return SERIALIZER_STATE.FAILED
        if os.waitstatus_to_exitcode(status) == 0:
            with _lock:
                if not self.cancelled:  # a received snapshot replaced the dump meanwhile: it is newer
                    try:
                        durable_replace(self.path, self.dump)
                        return SERIALIZER_STATE.SUCCESS
                    except OSError as exc:
                        log.warning("dump %s not renamed into place: %s", self.path, exc)
        Path(self.path).unlink(missing_ok=True)
        return SERIALIZER_STATE.FAILED

    def kill(self) -> None:
        """SIGKILL the child, reap it and remove its file (the dump it would have written is dropped)."""
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        Path(self.path).unlink(missing_ok=True)


def retry_delay(failures: int) -> float:
    """Seconds before the next dump after ``failures`` failed ones in a row (0: none failed)."""
    return 0.0 if failures <= 0 else min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** min(failures - 1, 16))


class BackgroundDumps:
    """The dump child of one store (at most one at a time) as pysyncobj's serializer and checker see it.

    After a failed dump (fork refused, child failed or killed) pysyncobj asks for the next one on its
    next tick; the next child is forked only after :func:`retry_delay` (a full encode per tick would
    follow a full disk or a starved child). Meanwhile ``check`` says SERIALIZING, so pysyncobj neither
    asks again nor logs every tick, and reports FAILED once the delay is over so that it asks again
    with its state of then. pysyncobj cleared its "forced" flag when it asked for the deferred dump, so
    ``ask_again`` (its ``forceLogCompaction``) is called first: a forced compaction is never dropped."""

    def __init__(self, ask_again: Callable[[], None] | None = None) -> None:
        self._ask_again = ask_again
        self._job: DumpJob | None = None
        self._fork_failed = False
        self._failures = 0  # failed dumps in a row
        self._retry_at = 0.0  # monotonic: no child is forked before it
        self._waiting = False  # a dump was asked for before _retry_at: not started
        self.written = 0  # dumps that reached the disk
        self.last_pid = 0  # the latest dump child (benchmarks sample its memory)

    def start(self, tmp: str, dump: str, encode: Callable[[], bytes]) -> None:
        """Called on the Raft thread by the serializer: fork a child that encodes and writes the dump.

        ``encode`` runs in the child only, on the state as it was at the fork. Never raises: a failed
        fork is reported by the next ``check`` (pysyncobj stops dumping for good if a serializer raises).
        """
        tmp, dump = os.fspath(tmp), os.fspath(dump)
        with _lock:
            _deferred.add(tmp)
        if time.monotonic() < self._retry_at:
            self._waiting = True
            return
        parent, collecting = os.getpid(), gc.isenabled()
        gc.disable()  # from before the fork: no collection (no finalizer) runs in the child at all
        try:
            pid = os.fork()
        except OSError as exc:
            log.warning("cannot fork a dump child: %s", exc)
            self._fork_failed = True
            return
        finally:
            if collecting and os.getpid() == parent:
                gc.enable()
        if pid == 0:
            _child(tmp, encode, parent)
        job = DumpJob(tmp, dump, pid, time.monotonic())
        with _lock:
            _running[dump] = job
        self._job, self.last_pid = job, pid

    def check(self) -> int:
        """pysyncobj's serializeChecker: SERIALIZING while the child runs, its outcome once, then idle."""
        now = time.monotonic()
        if self._waiting:
            if now < self._retry_at:
                return SERIALIZER_STATE.SERIALIZING
            self._waiting = False
            if self._ask_again is not None:
                self._ask_again()
            return SERIALIZER_STATE.FAILED  # pysyncobj asks again on its next tick, with its state of then
        if self._fork_failed:
            self._fork_failed = False
            return self._failed(now)
        job = self._job
        if job is None:
            return SERIALIZER_STATE.NOT_SERIALIZING
        outcome = job.poll(now)
        if outcome is None:
            return SERIALIZER_STATE.SERIALIZING
        self._forget(job)
        if outcome == SERIALIZER_STATE.SUCCESS:
            self.written += 1
            self._failures = 0
            return outcome
        return self._failed(now)

    def _failed(self, now: float) -> int:
        self._failures += 1
        delay = retry_delay(self._failures)
        self._retry_at = now + delay
        log.warning(
            "dump failed (%d in a row): the next one in %.0f s at the earliest", self._failures, delay
        )
        return SERIALIZER_STATE.FAILED

    def close(self) -> None:
        """Closing the store: kill a running child (its dump is dropped; the journal still has the log)."""
        job = self._job
        if job is not None:
            job.kill()
            self._forget(job)

    def _forget(self, job: DumpJob) -> None:
        self._job = None
        with _lock:
            if _running.get(job.dump) is job:
                del _running[job.dump]


def serve_dump_while_writing(serializer: Any) -> None:
    """Let pysyncobj's ``serializer`` send the dump on disk to a node that needs one while a new dump
    is being written.

    pysyncobj's ``getTransmissionData`` sends nothing while a dump is in progress, so a new or lagging
    node would wait for the child (minutes at 100,000 tasks on a busy machine). The dump on disk is
    still the one the log starts after: pysyncobj drops log entries only once the new dump is in place,
    so it is exactly what that node needs; a transmission already open keeps reading its own file."""
    original = serializer.getTransmissionData
    file_name = serializer._Serializer__fileName

    def get_transmission_data(transmission_id: Any) -> Any:
        in_progress = serializer._Serializer__pid
        if in_progress == 0:
            return original(transmission_id)
        open_already = transmission_id in serializer._Serializer__transmissions
        if file_name is None or not (open_already or os.path.exists(file_name)):
            return None  # no dump yet: the log starts at its beginning, nobody needs one
        serializer._Serializer__pid = 0  # the Raft thread's own state, read and put back on it
        try:
            return original(transmission_id)
        finally:
            serializer._Serializer__pid = in_progress

    serializer.getTransmissionData = get_transmission_data


def encode_dump(head: dict[str, Any], state: dict[str, Any]) -> bytes:
    """The dump file's bytes: ``head`` (``format``, ``last``, ``prev``, ``cluster``) then ``state``."""
    return msgpack.packb(head | {"state": state}, use_bin_type=True)


def replace(src: str, dst: str) -> None:
    """pysyncobj's ``atomicReplace``: durable, skipped for a child's temp name, killing an older child."""
    with _lock:
        src_s, dst_s = os.fspath(src), os.fspath(dst)
        if src_s in _deferred:
            _deferred.discard(src_s)
            return
        job = _running.get(dst_s)
        if job is not None:
            job.cancelled = True
            try:
                os.kill(job.pid, signal.SIGKILL)  # reaped (and its file removed) by the next check
            except ProcessLookupError:
                pass
        durable_replace(src_s, dst_s)


def read_head(dump: str | os.PathLike[str]) -> tuple[tuple[Any, ...], tuple[Any, ...]] | None:
    """``(prev, last)``: the two log entries a dump covers up to, read from its head without decoding
    the state (the store writes ``format``, ``last``, ``prev`` before ``state``); None when absent."""
    try:
        f = open(dump, "rb")  # noqa: SIM115 (closed below; the unpacker reads it lazily)
    except FileNotFoundError:
        return None
    with f:
        return _head(msgpack.Unpacker(f, raw=False, strict_map_key=False, max_buffer_size=64 << 20))


def head_of_chunk(chunk: bytes) -> tuple[tuple[Any, ...], tuple[Any, ...]] | None:
    """``(prev, last)`` from the first bytes of a dump (a snapshot's first transmitted chunk); None
    when they do not hold a whole head (another format, or a head longer than the chunk)."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=max(len(chunk), 1))
    unpacker.feed(chunk)
    try:
        return _head(unpacker)
    except (msgpack.OutOfData, ValueError, TypeError):
        return None


def _head(unpacker: msgpack.Unpacker) -> tuple[tuple[Any, ...], tuple[Any, ...]] | None:
    head: dict[str, Any] = {}
    for _ in range(unpacker.read_map_header()):
        key = unpacker.unpack()
        if key == "state":
            break
        head[key] = unpacker.unpack()
        if "prev" in head and "last" in head:
            return tuple(head["prev"]), tuple(head["last"])
    return None
