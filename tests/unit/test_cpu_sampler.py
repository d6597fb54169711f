"""The CPU sampler charges a busy thread's CPU to the stack it is at, and nothing to a waiting one."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from p2porch.cli.daemon import _run_daemon
from p2porch.cpu_sampler import (
    DEFAULT_EVERY_S,
    ENV_EVERY,
    ENV_PATH,
    CpuSampler,
    start_from_env,
    thread_cpu_ns,
)


def spin_until(stop: threading.Event) -> None:
    while not stop.is_set():
        sum(range(1000))


def wait_until(stop: threading.Event, waiting: threading.Event) -> None:
    waiting.set()
    stop.wait()


def test_a_busy_thread_is_charged_to_its_stack_and_a_waiting_one_is_not(tmp_path: Path) -> None:
    stop, waiting = threading.Event(), threading.Event()
    busy = threading.Thread(target=spin_until, args=(stop,), name="busy")
    idle = threading.Thread(target=wait_until, args=(stop, waiting), name="idle")
    busy.start()
    idle.start()
    sampler = CpuSampler(str(tmp_path / "cpu.txt"))
    try:
        waiting.wait()
        time.sleep(0.05)  # the idle thread waits now
        sampler.look()  # the baseline of every thread
        start = time.thread_time()
        while time.thread_time() - start < 0.05:  # this thread's own CPU: lets the busy one run too
            sum(range(1000))
        time.sleep(0.05)
        sampler.look()
    finally:
        stop.set()
        busy.join()
        idle.join()
    charged = {key.split(" ", 1)[1]: us for key, us in sampler.totals.items()}
    assert any(k.startswith("busy;") and "spin_until" in k and us > 0 for k, us in charged.items())
    assert not any(k.startswith("idle;") for k in charged)
    sampler.write()
    lines = (tmp_path / "cpu.txt").read_text().splitlines()
    assert lines[0].startswith("# ") and any(line.startswith("@") and " busy;" in line for line in lines[1:])


def test_nothing_runs_without_the_variable() -> None:
    before = {t.ident for t in threading.enumerate()}
    assert start_from_env({}) is None
    assert start_from_env({ENV_PATH: ""}) is None
    assert {t.ident for t in threading.enumerate()} == before  # no sampler thread started


def spend_then_wait(stop: threading.Event, spent: threading.Event) -> None:
    start = time.thread_time()
    while time.thread_time() - start < 0.02:
        sum(range(1000))
    spent.set()
    stop.wait()


def test_an_exited_threads_clock_is_an_error_not_a_read_of_freed_memory() -> None:
    thread = threading.Thread(target=lambda: None)
    thread.start()
    native_id = thread.native_id
    thread.join()  # Python's side is done; the kernel thread ends just after
    assert native_id is not None
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/self/task/{native_id}") and time.monotonic() < deadline:
        time.sleep(0.001)
    with pytest.raises(OSError):
        thread_cpu_ns(native_id)
    assert thread_cpu_ns(threading.get_native_id()) > 0


def test_a_thread_started_after_the_baseline_is_charged_its_first_interval_and_forgotten_when_gone(
    tmp_path: Path,
) -> None:
    sampler = CpuSampler(str(tmp_path / "cpu.txt"))
    sampler.look()  # the baseline
    assert not sampler.totals
    stop, spent = threading.Event(), threading.Event()
    late = threading.Thread(target=spend_then_wait, args=(stop, spent), name="late")
    late.start()
    try:
        spent.wait()
        sampler.look()  # its first look: all its CPU, not a baseline
        tracked = sampler.tracked
    finally:
        stop.set()
        late.join()
    assert any(" late;" in key and us > 0 for key, us in sampler.totals.items()), sampler.totals
    sampler.look()
    assert sampler.tracked == tracked - 1  # the exited thread is not kept


def test_lines_over_the_cap_are_counted_as_dropped(tmp_path: Path) -> None:
    sampler = CpuSampler(str(tmp_path / "cpu.txt"), max_keys=1)
    sampler._charge("@0 a;x", 5)
    sampler._charge("@0 b;y", 7)
    sampler._charge("@0 a;x", 1)
    assert sampler.totals == {"@0 a;x": 6} and sampler.dropped_us == 7
    sampler.write()
    assert "# dropped 7 us (over 1 lines)" in (tmp_path / "cpu.txt").read_text()


def test_writes_from_several_threads_each_use_their_own_temporary_file(tmp_path: Path) -> None:
    sampler = CpuSampler(str(tmp_path / "cpu.txt"))
    sampler._charge("@0 a;x", 5)
    errors: list[BaseException] = []

    def write_many() -> None:
        try:
            for _ in range(100):
                sampler.write()
        except BaseException as exc:
            errors.append(exc)

    writers = [threading.Thread(target=write_many) for _ in range(4)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert errors == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cpu.txt"]  # no temporary file left


def test_stop_joins_the_sampler_thread_and_writes(tmp_path: Path) -> None:
    path = tmp_path / "cpu.txt"
    sampler = start_from_env({ENV_PATH: str(path), ENV_EVERY: "0.001"})
    assert sampler is not None
    sampler.stop()
    assert not any(t.name == "cpu-sampler" for t in threading.enumerate())
    assert path.read_text().startswith("# ")


@pytest.mark.parametrize("every", ["fast", "0", "-1", "nan", "inf"])
def test_a_malformed_interval_is_logged_and_the_default_used(
    tmp_path: Path, every: str, caplog: pytest.LogCaptureFixture
) -> None:
    sampler = start_from_env({ENV_PATH: str(tmp_path / "cpu.txt"), ENV_EVERY: every})
    assert sampler is not None
    sampler.stop()
    assert sampler.every_s == DEFAULT_EVERY_S
    assert any(ENV_EVERY in r.getMessage() and repr(every) in r.getMessage() for r in caplog.records)


def test_the_daemon_stops_its_sampler_when_it_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Daemon:
        async def run(self) -> None:
            pass

    path = tmp_path / "cpu-{pid}.txt"
    monkeypatch.setenv(ENV_PATH, str(path))
    for name in ("P2PORCH_TRACEMALLOC", "P2PORCH_MALLOC_STATS", "P2PORCH_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    assert _run_daemon(Daemon()) == 0
    assert not any(t.name == "cpu-sampler" for t in threading.enumerate())  # stopped, not left running
    assert (tmp_path / f"cpu-{os.getpid()}.txt").exists()
