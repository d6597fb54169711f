"""The leader's planning thread checks, every few ms, that its round is still wanted (shell).

A full round plans every task of the cluster in pure Python: seconds at 100,000 tasks on a busy
machine, on a worker thread of the leader's process (issue 19). :class:`LeadershipCheck` is the round's
``checkpoint``: after every ``work_s`` of planning it ends a round whose leader was deposed meanwhile
(:class:`RoundAbandoned`: its writes would be refused anyway, and its CPU is the new leader's). The
module's name is from its first form, which could also sleep at each check to share the GIL with the
Raft thread; that rest was removed (measured at 1,000 x 100,000 it slowed the full round without
keeping the leaders' heartbeats going: the sixth round in docs/performance.md). It owns only its own
timing and never touches what the round decides.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["PLAN_WORK_S", "LeadershipCheck", "RoundAbandoned"]

#: planning runs this long (s) between two checks of the round's leadership
PLAN_WORK_S = 0.01


class RoundAbandoned(Exception):
    """The round's ``keep_going`` said no at a check: this node no longer leads in the round's term."""


class LeadershipCheck:
    """A checkpoint that asks ``keep_going`` once ``work_s`` has passed since its last check.

    ``clock`` is ``time.monotonic`` unless a test passes its own. Called from the planning thread only."""

    def __init__(self, work_s: float = PLAN_WORK_S, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.work_s = work_s
        self._clock = clock
        self._since = clock()
        self._keep_going: Callable[[], bool] | None = None

    def restart(self, keep_going: Callable[[], bool] | None = None) -> None:
        """A round begins: its first ``work_s`` runs without a check; at each check ``keep_going`` (if
        given; thread-safe) is asked whether the round is still wanted."""
        self._since = self._clock()
        self._keep_going = keep_going

    def __call__(self) -> None:
        now = self._clock()
        if now - self._since < self.work_s:
            return
        self._since = now
        if self._keep_going is not None and not self._keep_going():
            raise RoundAbandoned
