"""The heap trimmer: trims after its first delay, then every period, under trio's MockClock."""

from __future__ import annotations

import trio
import trio.testing

from p2porch import memtrim


def test_trim_heap_returns_rss_before_and_after() -> None:
    result = memtrim.trim_heap()
    assert result is not None  # glibc here
    before, after = result
    assert before > 0 and after > 0


def run_mocked(main) -> None:
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_trims_after_the_first_delay_then_every_period(monkeypatch) -> None:
    calls: list[float] = []
    monkeypatch.setattr(memtrim, "trim_heap", lambda: calls.append(trio.current_time()) or (2.0, 1.0))

    async def main() -> None:
        with trio.move_on_after(1000):
            await memtrim.trim_heap_periodically(first_after_s=20, period_s=300)

    run_mocked(main)
    assert calls == [20, 320, 620, 920]


def test_without_malloc_trim_it_stops_after_the_first_try(monkeypatch) -> None:
    calls: list[float] = []
    monkeypatch.setattr(memtrim, "trim_heap", lambda: calls.append(trio.current_time()))

    async def main() -> None:
        await memtrim.trim_heap_periodically(first_after_s=5, period_s=10)

    run_mocked(main)
    assert calls == [5]
