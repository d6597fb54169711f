"""The CPU sampler charges a busy thread's CPU to the stack it is at, and nothing to a waiting one."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from p2porch.cpu_sampler import CpuSampler, start_from_env


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
    assert start_from_env({}) is None
