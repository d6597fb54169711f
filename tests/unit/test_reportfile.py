"""reportfile.write_report: a regular file is replaced whole, a FIFO (standing in for /dev/null, which a
test must never touch) is written into and stays a FIFO."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

from p2porch.cpu_sampler import CpuSampler
from p2porch.reportfile import write_report


def test_a_regular_file_is_replaced_whole_and_no_temporary_file_is_left(tmp_path: Path) -> None:
    path = tmp_path / "report.txt"
    path.write_text("old report, longer than the new one\n")
    write_report(str(path), "new\n")
    assert path.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.txt"]


def test_a_path_that_is_not_a_regular_file_is_written_into_never_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "sink"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    write_report(str(fifo), "to the pipe\n")
    reader.join(timeout=10)
    assert received == [b"to the pipe\n"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # a rename would have made it a regular file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sink"]


def test_the_cpu_samplers_dump_keeps_a_device_like_path_what_it_was(tmp_path: Path) -> None:
    fifo = tmp_path / "profile"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    CpuSampler(str(fifo)).write()
    reader.join(timeout=10)
    assert received and received[0].startswith(b"# ")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
