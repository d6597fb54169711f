"""reportfile.write_report: a regular file is replaced whole, a FIFO (standing in for /dev/null, which a
test must never touch) is written into and stays a FIFO."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

from p2porch.cpu_sampler import CpuSampler
from p2porch.reportfile import write_report


def test_a_regular_file_is_replaced_whole_and_no_temporary_file_is_left(tmp_path: Path) -> None:
    path = tmp_path / "report.txt"
    path.write_text("old report, longer than the new one\n")
    write_report(str(path), "new\n")
    assert path.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.txt"]


def _written_into_fifo(tmp_path: Path, write: Callable[[str], None]) -> bytes:
    """What ``write(path)`` sent into a FIFO at ``path`` (read by a thread); the FIFO must stay one."""
    fifo = tmp_path / "sink"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    write(str(fifo))
    reader.join(timeout=10)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # a rename would have made it a regular file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sink"]
    return received[0] if received else b""


def test_a_path_that_is_not_a_regular_file_is_written_into_never_replaced(tmp_path: Path) -> None:
    assert _written_into_fifo(tmp_path, lambda path: write_report(path, "to the pipe\n")) == b"to the pipe\n"


def test_the_cpu_samplers_dump_keeps_a_device_like_path_what_it_was(tmp_path: Path) -> None:
    assert _written_into_fifo(tmp_path, lambda path: CpuSampler(path).write()).startswith(b"# ")


def test_a_symlink_is_replaced_never_written_through(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("must stay\n")
    link = tmp_path / "report"
    link.symlink_to(target)
    write_report(str(link), "report\n")
    assert not link.is_symlink() and link.read_text() == "report\n"
    assert target.read_text() == "must stay\n"
