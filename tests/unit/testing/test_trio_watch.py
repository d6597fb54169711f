"""The trio watch keeps each late beat it logs, with the trio thread's innermost frames (what held it)."""

from __future__ import annotations

import time

import trio

from p2porch.testing.trio_watch import TrioWatch


def hold_the_trio_thread(seconds: float) -> None:
    time.sleep(seconds)


async def test_a_blocked_trio_thread_is_kept_with_where_it_was() -> None:
    watch = TrioWatch(0.05)
    async with trio.open_nursery() as nursery:
        await nursery.start(watch.run)
        await trio.sleep(0.1)
        hold_the_trio_thread(0.5)
        nursery.cancel_scope.cancel()
    assert watch.lates
    assert all(beat.late_s >= watch.threshold_s for beat in watch.lates)  # only late beats are kept
    held = [b for b in watch.lates if any("hold_the_trio_thread" in f for f in b.threads["trio"])]
    assert held and all(abs(b.at - time.time()) < 5 for b in held)  # when, and what held the thread
    kept = len(watch.lates)
    time.sleep(0.8)  # the run is over: its watching thread ended with it, nothing more is kept
    assert len(watch.lates) == kept
