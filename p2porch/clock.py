"""Clocks for the shells (shell helper): wall time for timestamps, trio time for sleeps.

Pure cores take ``now`` as an argument. The shells that call them (the leader loop, the autopilot
loop, the voter-role watcher, member services) read time only through a :class:`Clock` given to them,
and sleep only with trio (``trio.sleep``, ``trio.move_on_after``), which follows the run's trio clock.
The daemon passes :data:`SYSTEM_CLOCK`; a test passes a :class:`TrioClock` so that a loop runs under
``trio.testing.MockClock`` with wall time advancing with the mock clock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import trio

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock", "TrioClock"]


class Clock(Protocol):
    """Where a shell reads the time; it never calls ``time.time()`` itself."""

    def now(self) -> float:
        """Wall-clock seconds since the epoch (timestamps written to Raft, deadlines in state)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (durations measured locally)."""
        ...


class SystemClock:
    """The host's clocks."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


@dataclass(frozen=True)
class TrioClock:
    """Wall time as ``epoch`` plus trio's current time: under a ``MockClock`` both advance together.

    Must be read inside a trio run."""

    epoch: float = 1_700_000_000.0

    def now(self) -> float:
        return self.epoch + trio.current_time()

    def monotonic(self) -> float:
        return trio.current_time()


SYSTEM_CLOCK: Clock = SystemClock()
