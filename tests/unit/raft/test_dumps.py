"""Dump children: pysyncobj's checker sees SERIALIZING until the dump is durable, the outcome once; a snapshot
received meanwhile is never overwritten by the older dump; a child that fails, hangs, is killed or loses
the thread that forked it leaves the old dump and no stray file (real forked children, real files)."""

from __future__ import annotations

import atexit
import gc
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pysyncobj.config import SERIALIZER_STATE

from p2porch.raft import dumps


@pytest.fixture
def gate() -> Iterator[tuple[Callable[[bytes], Callable[[], bytes]], Callable[[], None], Callable[[], None]]]:
    """``blocked(data)``: an encode that says it started (``started()`` returns then), waits in the child
    until ``release()`` (pipes), then gives ``data``."""
    read_fd, write_fd = os.pipe()
    ready_read, ready_write = os.pipe()

    def blocked(data: bytes) -> Callable[[], bytes]:
        def encode() -> bytes:
            os.write(ready_write, b"r")
            os.read(read_fd, 1)
            return data

        return encode

    def release() -> None:
        os.write(write_fd, b"x")

    def started() -> None:
        os.read(ready_read, 1)

    yield blocked, release, started
    for fd in (read_fd, write_fd, ready_read, ready_write):
        os.close(fd)


def _outcome(job: dumps.BackgroundDumps, timeout_s: float = 10.0) -> int:
    deadline = time.monotonic() + timeout_s
    while (state := job.check()) == SERIALIZER_STATE.SERIALIZING:
        assert time.monotonic() < deadline, "the dump child did not finish"
        time.sleep(0.01)
    return state


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_dump_is_written_by_the_child_and_reported_once(tmp_path: Path, gate) -> None:  # type: ignore[no-untyped-def]
    blocked, release, _started = gate
    dump, tmp = tmp_path / "raft.dump", str(tmp_path / "raft.dump.tmp")
    dump.write_bytes(b"old")
    job = dumps.BackgroundDumps()
    job.start(tmp, str(dump), blocked(b"new"))
    dumps.replace(tmp, str(dump))  # what pysyncobj does right after the serializer returns: skipped
    assert job.last_pid not in (0, os.getpid())
    assert job.check() == SERIALIZER_STATE.SERIALIZING and dump.read_bytes() == b"old"
    release()
    assert _outcome(job) == SERIALIZER_STATE.SUCCESS
    assert dump.read_bytes() == b"new" and job.written == 1
    assert job.check() == SERIALIZER_STATE.NOT_SERIALIZING
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raft.dump"]
    assert _gone(job.last_pid)  # reaped, not a zombie


def test_the_child_sees_the_state_as_it_was_at_the_fork(tmp_path: Path, gate) -> None:  # type: ignore[no-untyped-def]
    blocked, release, _started = gate
    dump = tmp_path / "raft.dump"
    state = {"version": 1}
    wait_in_child = blocked(b"")
    job = dumps.BackgroundDumps()
    job.start(str(tmp_path / "raft.dump.tmp"), str(dump), lambda: wait_in_child() + repr(state).encode())
    state["version"] = 2  # the parent moves on while the child encodes
    release()
    assert _outcome(job) == SERIALIZER_STATE.SUCCESS
    assert dump.read_bytes() == b"{'version': 1}"


def test_a_snapshot_received_meanwhile_wins_over_the_older_dump(tmp_path: Path, gate) -> None:  # type: ignore[no-untyped-def]
    blocked, _release, _started = gate
    dump, tmp = tmp_path / "raft.dump", str(tmp_path / "raft.dump.tmp")
    job = dumps.BackgroundDumps()
    job.start(tmp, str(dump), blocked(b"older"))
    dumps.replace(tmp, str(dump))
    received = tmp_path / "raft.dump.1.tmp"
    received.write_bytes(b"from the leader")
    dumps.replace(str(received), str(dump))  # the install of a received snapshot: kills the child, renames
    assert _outcome(job) == SERIALIZER_STATE.FAILED  # the log is kept; pysyncobj tries again later
    assert dump.read_bytes() == b"from the leader" and job.written == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raft.dump"]
    assert _gone(job.last_pid)


def test_a_failing_encode_leaves_the_old_dump(tmp_path: Path) -> None:
    dump = tmp_path / "raft.dump"
    dump.write_bytes(b"old")
    job = dumps.BackgroundDumps()

    def encode() -> bytes:
        raise ValueError("boom")

    job.start(str(tmp_path / "raft.dump.tmp"), str(dump), encode)
    assert _outcome(job) == SERIALIZER_STATE.FAILED and dump.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raft.dump"]


def test_a_child_killed_mid_dump_leaves_the_old_dump(tmp_path: Path, gate) -> None:  # type: ignore[no-untyped-def]
    blocked, _release, _started = gate
    dump = tmp_path / "raft.dump"
    dump.write_bytes(b"old")
    job = dumps.BackgroundDumps()
    job.start(str(tmp_path / "raft.dump.tmp"), str(dump), blocked(b"new"))
    os.kill(job.last_pid, signal.SIGKILL)
    assert _outcome(job) == SERIALIZER_STATE.FAILED and dump.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raft.dump"]


def test_a_hung_child_is_killed_after_the_timeout(tmp_path: Path, gate, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    blocked, _release, _started = gate
    monkeypatch.setattr(dumps, "DUMP_CHILD_TIMEOUT_S", 0.3)
    dump = tmp_path / "raft.dump"
    job = dumps.BackgroundDumps()
    job.start(str(tmp_path / "raft.dump.tmp"), str(dump), blocked(b"never"))
    assert _outcome(job) == SERIALIZER_STATE.FAILED
    assert _gone(job.last_pid) and not dump.exists()


def test_the_child_dies_with_the_thread_that_forked_it(tmp_path: Path, gate) -> None:  # type: ignore[no-untyped-def]
    """The Raft thread (or its process) ending kills the child: no orphan writes a dump later."""
    blocked, release, started = gate
    dump = tmp_path / "raft.dump"
    job = dumps.BackgroundDumps()

    def fork_and_end() -> None:  # the thread ends once the child runs its encode (after its prctl)
        job.start(str(tmp_path / "raft.dump.tmp"), str(dump), blocked(b"x"))
        started()

    forker = threading.Thread(target=fork_and_end)
    forker.start()
    forker.join()
    assert _outcome(job) == SERIALIZER_STATE.FAILED  # SIGKILLed by the kernel when the thread ended
    release()
    assert not dump.exists() and list(tmp_path.iterdir()) == []


def test_the_child_leaves_by_os_exit_without_atexit_handlers(tmp_path: Path) -> None:
    marker = tmp_path / "atexit-ran"
    parent = os.getpid()

    def handler() -> None:
        if os.getpid() != parent:
            marker.write_text("child ran an atexit handler")

    atexit.register(handler)
    try:
        job = dumps.BackgroundDumps()
        job.start(str(tmp_path / "raft.dump.tmp"), str(tmp_path / "raft.dump"), lambda: b"ok")
        assert _outcome(job) == SERIALIZER_STATE.SUCCESS
    finally:
        atexit.unregister(handler)
    assert not marker.exists()


def test_a_failed_fork_is_reported_once_and_never_raised(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def no_fork() -> int:
        raise BlockingIOError("fork: resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    job = dumps.BackgroundDumps()
    tmp, dump = str(tmp_path / "raft.dump.tmp"), str(tmp_path / "raft.dump")
    job.start(tmp, dump, lambda: b"x")  # pysyncobj stops dumping for good if its serializer raises
    dumps.replace(tmp, dump)  # pysyncobj's rename of the temp name: skipped, nothing was written
    assert job.check() == SERIALIZER_STATE.FAILED
    assert job.check() == SERIALIZER_STATE.NOT_SERIALIZING


def test_close_kills_a_running_child(tmp_path: Path, gate) -> None:  # type: ignore[no-untyped-def]
    blocked, _release, _started = gate
    job = dumps.BackgroundDumps()
    job.start(str(tmp_path / "raft.dump.tmp"), str(tmp_path / "raft.dump"), blocked(b"x"))
    job.close()
    assert _gone(job.last_pid) and list(tmp_path.iterdir()) == []
    assert job.check() == SERIALIZER_STATE.NOT_SERIALIZING


def test_remove_stale_removes_only_dead_children_files(tmp_path: Path) -> None:
    names = [
        "raft.dump",
        "raft.dump.tmp.4242",
        "raft.dump.tmp.7",
        "raft.dump.1.tmp",
        "raft.journal",
        "raft.dump.tmp.x",
    ]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    assert dumps.remove_stale(tmp_path / "raft.dump") == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "raft.dump",
        "raft.dump.1.tmp",
        "raft.dump.tmp.x",
        "raft.journal",
    ]


def test_the_child_runs_idle_without_the_garbage_collector_and_the_parent_keeps_both(tmp_path: Path) -> None:
    dump = tmp_path / "raft.dump"
    job = dumps.BackgroundDumps()
    job.start(
        str(tmp_path / "raft.dump.tmp"),
        str(dump),
        lambda: f"{gc.isenabled()} {os.sched_getscheduler(0) == os.SCHED_IDLE}".encode(),
    )
    assert gc.isenabled() and os.sched_getscheduler(0) != os.SCHED_IDLE
    assert _outcome(job) == SERIALIZER_STATE.SUCCESS
    assert dump.read_bytes() == b"False True"
