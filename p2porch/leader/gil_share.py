"""The leader's planning thread checks, every few ms, that its round is still wanted (shell).

A full round plans every task of the cluster in pure Python: seconds at 100,000 tasks on a busy
machine, on a worker thread of the leader's process (issue 19). :class:`GilShare` is the round's
``checkpoint``: after every ``work_s`` of planning it ends a round whose leader was deposed meanwhile
(:class:`RoundAbandoned`: its writes would be refused anyway, and its CPU is the new leader's), and it
can sleep ``rest_s`` there (the GIL released) so that the Raft thread runs without competing with the
planner. The rest is off (0): measured at 1,000 x 100,000 it slowed the full round without keeping
the leaders' heartbeats going (the sixth round in docs/performance.md). It owns only its own timing and
never touches what the round decides.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["PLAN_REST_S", "PLAN_WORK_S", "GilShare", "RoundAbandoned"]

#: planning runs this long (s) between two checks (and rests, if any) ...
PLAN_WORK_S = 0.01
#: ... and then sleeps this long (s). 0: no rest. 2 ms was measured at 1,000 x 100,000 (the sixth round in
#: docs/performance.md): under ~10 runnable processes per core each rest cost far more than 2 ms, full
#: rounds took longer than most leaderships lasted (43 abandoned) and the leaders fell silent anyway.
PLAN_REST_S = 0.0


class RoundAbandoned(Exception):
    """The round's ``keep_going`` said no at a rest: this node no longer leads in the round's term."""


class GilShare:
    """A checkpoint that sleeps ``rest_s`` once ``work_s`` has passed since its last rest.

    ``clock`` and ``sleep`` are ``time.monotonic`` and ``time.sleep`` unless a test passes its own;
    ``rests`` counts the sleeps (for tests and logs). Called from the planning thread only."""

    def __init__(
        self,
        work_s: float = PLAN_WORK_S,
        rest_s: float = PLAN_REST_S,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.work_s = work_s
        self.rest_s = rest_s
        self._clock = clock
        self._sleep = sleep
        self._since = clock()
        self._keep_going: Callable[[], bool] | None = None
        self.rests = 0

    def restart(self, keep_going: Callable[[], bool] | None = None) -> None:
        """A round begins: its first ``work_s`` runs without a rest; at each rest ``keep_going`` (if
        given; thread-safe) is asked whether the round is still wanted."""
        self._since = self._clock()
        self._keep_going = keep_going

    def __call__(self) -> None:
        if self._clock() - self._since < self.work_s:
            return
        if self._keep_going is not None and not self._keep_going():
            raise RoundAbandoned
        if self.rest_s > 0:
            self._sleep(self.rest_s)
            self.rests += 1
        self._since = self._clock()
