"""Background dumps: pysyncobj's checker sees SERIALIZING until the dump is durable, the outcome once, and a
snapshot received meanwhile is never overwritten by the older dump (real files, a real worker thread)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from pysyncobj.config import SERIALIZER_STATE

from p2porch.raft import dumps


def _blocked(data: bytes) -> tuple[threading.Event, threading.Event, Callable[[], bytes]]:
    started, release = threading.Event(), threading.Event()

    def encode() -> bytes:
        started.set()
        assert release.wait(10)
        return data

    return started, release, encode


def _finish(job: dumps.BackgroundDumps) -> int:
    job.wait(10)
    return job.check()


def test_dump_is_written_by_the_worker_and_reported_once(tmp_path: Path) -> None:
    dump, tmp = tmp_path / "raft.dump", str(tmp_path / "raft.dump.tmp")
    dump.write_bytes(b"old")
    job = dumps.BackgroundDumps()
    started, release, encode = _blocked(b"new")
    job.start(tmp, str(dump), encode)
    dumps.replace(tmp, str(dump))  # what pysyncobj does right after the serializer returns: skipped
    assert started.wait(10)
    assert job.check() == SERIALIZER_STATE.SERIALIZING and dump.read_bytes() == b"old"
    release.set()
    assert _finish(job) == SERIALIZER_STATE.SUCCESS
    assert dump.read_bytes() == b"new" and job.written == 1
    assert job.check() == SERIALIZER_STATE.NOT_SERIALIZING
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raft.dump"]


def test_a_snapshot_received_meanwhile_wins_over_the_older_dump(tmp_path: Path) -> None:
    dump, tmp = tmp_path / "raft.dump", str(tmp_path / "raft.dump.tmp")
    job = dumps.BackgroundDumps()
    started, release, encode = _blocked(b"older")
    job.start(tmp, str(dump), encode)
    dumps.replace(tmp, str(dump))
    assert started.wait(10)
    received = tmp_path / "raft.dump.1.tmp"
    received.write_bytes(b"from the leader")
    dumps.replace(str(received), str(dump))  # the install of a received snapshot: a real rename
    release.set()
    assert _finish(job) == SERIALIZER_STATE.FAILED  # the log is kept; pysyncobj tries again later
    assert dump.read_bytes() == b"from the leader" and job.written == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raft.dump"]


def test_a_failing_encode_leaves_the_old_dump(tmp_path: Path) -> None:
    dump = tmp_path / "raft.dump"
    dump.write_bytes(b"old")
    job = dumps.BackgroundDumps()

    def encode() -> bytes:
        raise ValueError("boom")

    job.start(str(tmp_path / "raft.dump.tmp"), str(dump), encode)
    assert _finish(job) == SERIALIZER_STATE.FAILED and dump.read_bytes() == b"old"
