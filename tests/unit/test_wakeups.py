"""The wakeup profiler: counts per suspension site, CPU per step (fake clocks), diffs, the env switch."""

from __future__ import annotations

import json
from pathlib import Path

import trio
import trio.testing

from p2porch.wakeups import MAX_KEYS, WakeupProfiler, WakeupTally, diff_reports, profiler_from_env


class FakeCpu:
    """A CPU clock that advances 1 ms per reading: every step and every loop gap costs a known amount."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


async def sleeper(times: int) -> None:
    for _ in range(times):
        await trio.sleep(1)


def test_steps_are_counted_under_the_task_and_the_p2porch_frame_it_waited_in(tmp_path: Path) -> None:
    cpu = FakeCpu()
    path = str(tmp_path / "{pid}.json")
    profiler = WakeupProfiler(path, every_s=3600, cpu_clock=cpu, wall_clock=lambda: 0.0)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sleeper, 5)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0), instruments=[profiler])
    sites = profiler.tally.steps
    woke = [k for k in sites if "sleeper" in k]
    assert len(woke) == 1  # one site: the sleeper, suspended in trio.sleep (not a p2porch frame: task name)
    # the first step starts it, five more return from the sleeps
    assert sites[woke[0]] == 6
    # each step is timed between two readings after the frame walk: exactly one fake tick each
    assert abs(profiler.tally.cpu_s[woke[0]] - 0.006) < 1e-9
    assert profiler.tally.io_waits >= 5
    assert profiler.tally.loop_cpu_s > 0
    # after_run wrote the report, named by the pid
    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1 and files[0].stem.isdigit()
    report = json.loads(files[0].read_text())
    assert report["sites"][woke[0]]["steps"] == 6


def test_a_p2porch_frame_names_the_site() -> None:
    from p2porch.supervisor import supervise
    from p2porch.wakeups import suspended_at

    keys: list[str] = []

    class Spy(trio.abc.Instrument):
        def before_task_step(self, task: trio.lowlevel.Task) -> None:
            keys.append(suspended_at(task))

    async def failing() -> None:
        raise RuntimeError("again")

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(supervise, {}, "x", failing)  # fails, then backs off in trio.sleep
            await trio.sleep(1)
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0), instruments=[Spy()])
    site = "p2porch.supervisor.supervise @ p2porch.supervisor:supervise:"
    assert any(k.startswith(site) for k in keys), keys


def test_the_tally_is_bounded() -> None:
    tally = WakeupTally()
    for i in range(MAX_KEYS + 10):
        tally.add_step(f"site{i}", 0.001)
    assert len(tally.steps) == MAX_KEYS + 1
    assert tally.steps["(other)"] == 10


def test_diff_reports_gives_rates_over_the_window() -> None:
    first = WakeupTally()
    first.add_step("a", 0.001)
    last = WakeupTally()
    last.add_step("a", 0.001)
    for _ in range(20):
        last.add_step("b", 0.0005)
        last.add_io_wait(0.5)
    last.add_io_wait(0)
    last.loop_cpu_s = 0.02
    out = diff_reports(first.report(100.0), last.report(110.0))
    assert out["seconds"] == 10.0
    assert list(out["sites"]) == ["b"]  # "a" did not wake in the window
    assert out["sites"]["b"] == {"wakeups_per_s": 2.0, "cpu_pct": 0.1, "us_per_wakeup": 500.0}
    assert out["io_waits_per_s"] == 2.1 and out["io_waits_zero_per_s"] == 0.1
    assert out["loop_cpu_pct"] == 0.2


def test_the_profiler_is_opt_in() -> None:
    assert profiler_from_env({}) == []
    [profiler] = profiler_from_env({"P2PORCH_PROFILE": "/tmp/x-{pid}.json", "P2PORCH_PROFILE_EVERY_S": "bad"})
    assert isinstance(profiler, WakeupProfiler) and profiler.every_s == 5.0
    assert "{pid}" not in str(profiler.path)
