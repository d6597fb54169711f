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

Gate = tuple[Callable[[bytes], Callable[[], bytes]], Callable[[], None], Callable[[], None]]


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Gate]:
    """``blocked(data)``: an encode that says it started (``started()`` returns then), waits in the child
    until ``release()``, then gives ``data``. Named pipes the child opens by path (it keeps no inherited
    descriptor); the test holds both open read-write, so no open blocks and no byte is lost."""
    ready, go = tmp_path.parent / f"{tmp_path.name}.ready", tmp_path.parent / f"{tmp_path.name}.go"
    os.mkfifo(ready)
    os.mkfifo(go)
    ready_fd, go_fd = os.open(ready, os.O_RDWR), os.open(go, os.O_RDWR)

    def blocked(data: bytes) -> Callable[[], bytes]:
        def encode() -> bytes:
            fd = os.open(ready, os.O_WRONLY)
            os.write(fd, b"r")
            os.close(fd)
            fd = os.open(go, os.O_RDONLY)
            os.read(fd, 1)
            os.close(fd)
            return data

        return encode

    yield blocked, lambda: os.write(go_fd, b"x") and None, lambda: os.read(ready_fd, 1) and None
    os.close(ready_fd)
    os.close(go_fd)


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


def test_the_child_holds_no_inherited_descriptor(tmp_path: Path) -> None:
    dump = tmp_path / "raft.dump"
    held = os.open(tmp_path, os.O_RDONLY)  # stands for a Raft connection, an engine socket, the lock
    try:
        job = dumps.BackgroundDumps()
        job.start(
            str(tmp_path / "raft.dump.tmp"),
            str(dump),
            lambda: " ".join(sorted(os.listdir("/proc/self/fd"), key=int)).encode(),
        )
        assert _outcome(job) == SERIALIZER_STATE.SUCCESS
    finally:
        os.close(held)
    seen = [int(fd) for fd in dump.read_bytes().split()]
    assert held not in seen and seen[:3] == [0, 1, 2] and len(seen) <= 4  # + listdir's own


def test_after_a_failed_dump_the_next_child_waits_and_the_delay_doubles(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    now = [1000.0]
    monkeypatch.setattr(dumps.time, "monotonic", lambda: now[0])
    forks: list[int] = []

    def no_fork() -> int:
        forks.append(1)
        raise BlockingIOError("fork: resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    asked_again: list[float] = []
    job = dumps.BackgroundDumps(ask_again=lambda: asked_again.append(now[0]))
    tmp, dump = str(tmp_path / "raft.dump.tmp"), str(tmp_path / "raft.dump")
    for failures, delay in ((1, dumps.RETRY_FIRST_S), (2, 2 * dumps.RETRY_FIRST_S)):
        job.start(tmp, dump, lambda: b"x")
        assert len(forks) == failures
        assert job.check() == SERIALIZER_STATE.FAILED  # the fork failed; pysyncobj asks again at once
        job.start(tmp, dump, lambda: b"x")  # too early: no fork, pysyncobj sees a dump in progress
        assert len(forks) == failures and job.check() == SERIALIZER_STATE.SERIALIZING
        now[0] += delay - 0.5
        assert job.check() == SERIALIZER_STATE.SERIALIZING and len(asked_again) == failures - 1
        now[0] += 0.5
        assert job.check() == SERIALIZER_STATE.FAILED  # over: pysyncobj asks again, with its state of now
        assert asked_again[-1] == now[0] and len(asked_again) == failures  # even for a forced dump
    assert [dumps.retry_delay(n) for n in (0, 1, 2, 3)] == [0.0, 5.0, 10.0, 20.0]
    assert dumps.retry_delay(50) == dumps.RETRY_MAX_S


def test_a_node_that_needs_a_snapshot_gets_the_dump_on_disk_while_a_new_one_is_written(
    tmp_path: Path,
) -> None:
    from pysyncobj.serializer import Serializer

    dump = tmp_path / "raft.dump"
    dump.write_bytes(b"the dump the log starts after" * 100)
    states = [SERIALIZER_STATE.SERIALIZING]
    serializer = Serializer(str(dump), 1000, False, lambda tmp, data: None, None, lambda: states[0])
    serializer.serialize((None, (1, 1), (2, 1), []), 2)  # a dump child is writing the next dump
    assert serializer.getTransmissionData("n2") is None  # pysyncobj's own: nothing until it is done
    dumps.serve_dump_while_writing(serializer)
    sent = b""
    while (chunk := serializer.getTransmissionData("n2")) is not None:
        data, _first, last = chunk
        sent += data
        if last:
            break
    assert sent == dump.read_bytes()
    assert serializer.checkSerializing()[0] == SERIALIZER_STATE.SERIALIZING  # the dump in progress kept
    dump.unlink()
    assert serializer.getTransmissionData("n3") is None  # no dump on disk: nothing to send, no error
