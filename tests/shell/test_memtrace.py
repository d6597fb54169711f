"""The opt-in heap tracing aid (p2porch/memtrace.py): off without its variable, a loadable snapshot on
SIGUSR2 with it; the allocators' statistics on SIGUSR2 with ``P2PORCH_MALLOC_STATS``, without tracing."""

from __future__ import annotations

import gc
import json
import os
import signal
import tracemalloc
import weakref
from pathlib import Path
from typing import Any

import trio

from p2porch.memtrace import (
    ENV_FRAMES,
    ENV_PATH,
    ENV_STATS,
    census_garbage,
    dump_on_signal,
    malloc_totals,
    pymalloc_totals,
    start_from_env,
    stats_from_env,
)


def test_nothing_is_traced_without_the_variable() -> None:
    assert start_from_env({}) is None
    assert start_from_env({ENV_PATH: ""}) is None


def test_the_allocators_statistics_are_written_on_sigusr2_without_tracing(tmp_path: Path) -> None:
    assert stats_from_env({}) is None
    prefix = stats_from_env({ENV_STATS: str(tmp_path / "m-{pid}")})
    assert prefix == str(tmp_path / f"m-{os.getpid()}")
    stderr_before = os.fstat(2)
    kept = [bytearray(300_000) for _ in range(3)]  # above glibc's mmap threshold: mmapped on their own

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(dump_on_signal, None, signal.SIGUSR2, prefix)
            await trio.sleep(0.05)
            os.kill(os.getpid(), signal.SIGUSR2)
            with trio.fail_after(10):
                while not os.path.exists(f"{prefix}.pymalloc.txt"):
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()

    trio.run(main)
    glibc = malloc_totals(Path(f"{prefix}.malloc.xml").read_text())
    assert glibc["heaps"] >= 1 and glibc["system_current_bytes"] > 0
    assert glibc["total_mmap_count"] >= 3 and glibc["total_mmap_bytes"] >= 3 * 300_000
    obmalloc = pymalloc_totals(Path(f"{prefix}.pymalloc.txt").read_text())
    assert obmalloc["arenas_allocated_current"] >= 1 and obmalloc["bytes_in_allocated_blocks"] > 0
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (stderr_before.st_dev, stderr_before.st_ino)  # stderr is back
    assert not os.path.exists(f"{prefix}.tmp")
    del kept


def test_a_snapshot_is_written_on_sigusr2_and_holds_what_was_allocated(tmp_path: Path) -> None:
    was_tracing = tracemalloc.is_tracing()
    path = start_from_env({ENV_PATH: str(tmp_path / "heap-{pid}.snap"), ENV_FRAMES: "2"})
    try:
        assert path == str(tmp_path / f"heap-{os.getpid()}.snap")
        assert tracemalloc.is_tracing() and tracemalloc.get_traceback_limit() >= 1
        kept = [bytearray(1000) for _ in range(200)]  # ~200 KB allocated on this line

        async def main() -> None:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(dump_on_signal, path)
                await trio.sleep(0.05)  # the receiver is installed
                os.kill(os.getpid(), signal.SIGUSR2)
                with trio.fail_after(10):
                    while not os.path.exists(path):
                        await trio.sleep(0.01)
                nursery.cancel_scope.cancel()

        trio.run(main)
        snapshot = tracemalloc.Snapshot.load(path)
        here = [s for s in snapshot.statistics("filename") if s.traceback[0].filename == __file__]
        assert here and here[0].size >= 200 * 1000
        assert not os.path.exists(f"{path}.tmp")
        modules = json.loads(Path(f"{path}.modules").read_text())
        assert "p2porch.memtrace" in modules and "trio" in modules and modules == sorted(modules)
        del kept
    finally:
        if not was_tracing:
            tracemalloc.stop()


def test_the_daemon_command_runs_the_daemon_and_ends_with_it(monkeypatch: Any, tmp_path: Path) -> None:
    """``p2porch daemon`` with the variable: the snapshot task runs beside the daemon and stops with it."""
    import argparse
    import types

    import p2porch.cli.daemon as cli_daemon
    import p2porch.daemon
    import p2porch.logs

    ran: list[str] = []

    class _Daemon:
        def __init__(self, config: Any, pid_file: Any = None) -> None:
            pass

        async def run(self) -> None:
            await trio.sleep(0.05)
            os.kill(os.getpid(), signal.SIGUSR2)  # the snapshot task answers while the daemon runs
            with trio.fail_after(10):
                while not list(tmp_path.glob("*.snap")):
                    await trio.sleep(0.01)
            ran.append("daemon")

    config = types.SimpleNamespace(log=types.SimpleNamespace(format="text", level="info"))
    monkeypatch.setattr(p2porch.daemon, "Daemon", _Daemon)
    monkeypatch.setattr(cli_daemon, "load_daemon_config", lambda args: config)
    monkeypatch.setattr(p2porch.logs, "setup_logging", lambda *a: None)
    monkeypatch.setenv(ENV_PATH, str(tmp_path / "d-{pid}.snap"))
    was_tracing, hooks = tracemalloc.is_tracing(), gc.callbacks[:]
    try:
        assert cli_daemon.cmd_daemon(argparse.Namespace(pid_file=None)) == 0
    finally:
        gc.callbacks[:] = hooks  # the daemon's gc freeze hook (gc_freeze.py) is not this test process's,
        gc.unfreeze()  # nor what it froze
        if not was_tracing:
            tracemalloc.stop()
    assert ran == ["daemon"]
    assert (tmp_path / f"d-{os.getpid()}.snap").exists()


class _Cyclic:
    def __init__(self) -> None:
        self.me = self
        self.proxy = weakref.proxy(self)  # a weak proxy that dies with the cycle: census must not trip on it


def _raise_and_keep() -> None:
    try:
        raise ValueError("kept")
    except ValueError as error:
        kept = error  # frame -> error -> traceback -> frame: a cycle
        assert kept


def test_the_census_counts_cyclic_garbage_by_type_and_place_and_frees_it(tmp_path: Path) -> None:
    census_garbage(str(tmp_path / "warm"))  # whatever this process held before
    for _ in range(30):
        _Cyclic()
        _raise_and_keep()
    census = census_garbage(str(tmp_path / "c"))
    by_type = {name: count for name, count, _ in census["by_type"]}  # type: ignore[attr-defined]
    assert by_type[f"{__name__}._Cyclic"] == 30
    assert by_type["builtins.ValueError"] == 30 and by_type["builtins.traceback"] >= 30
    where = dict(census["by_where"])  # type: ignore[call-overload]
    assert any(":_raise_and_keep:" in place and count >= 30 for place, count in where.items())
    assert json.loads((tmp_path / "c.garbage.json").read_text())["objects"] == census["objects"]
    assert (tmp_path / "c.after.pymalloc.txt").exists()
    again = census_garbage(str(tmp_path / "again"))
    assert isinstance(again["objects"], int) and again["objects"] < 30  # freed: the next census is clean


def test_a_failing_dump_is_logged_and_the_receiver_goes_on(tmp_path: Path, caplog: Any) -> None:
    prefix = str(tmp_path / "missing-dir" / "m")  # cannot be written

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(dump_on_signal, None, signal.SIGUSR2, prefix, True)
            await trio.sleep(0.05)
            os.kill(os.getpid(), signal.SIGUSR2)
            await trio.sleep(0.3)
            (tmp_path / "missing-dir").mkdir()
            os.kill(os.getpid(), signal.SIGUSR2)  # the receiver still answers
            with trio.fail_after(10):
                while not os.path.exists(f"{prefix}.garbage.json"):
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert "the dump failed" in caplog.text
