"""The leader's planning thread leaves the GIL to the Raft thread now and then (shell).

A full round plans every task of the cluster in pure Python: seconds at 100,000 tasks on a busy
machine, on a worker thread of the leader's process. The Raft thread of the same process (heartbeats,
appends, votes) gives the GIL up on every socket call and must win it back from the planning thread
each time, so a tick of a few dozen sends stretched past an election timeout and the new leader lost its
leadership while planning its first round (issue 19, the fifth round in docs/performance.md).
:class:`GilShare` is the round's ``checkpoint``: after every ``work_s`` of planning it sleeps ``rest_s``
(the GIL released), in which the other threads run without competing with the planner, and it ends a
round whose leader was deposed meanwhile (:class:`RoundAbandoned`: its writes would be refused anyway,
and its CPU is the new leader's). It owns only its own timing and never touches what the round decides.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["PLAN_REST_S", "PLAN_WORK_S", "GilShare", "RoundAbandoned"]

#: planning runs this long (s) between two rests ...
PLAN_WORK_S = 0.01
#: ... and then sleeps this long (s): at most ~1/6 of the planning thread's time
PLAN_REST_S = 0.002


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
        self._sleep(self.rest_s)
        self.rests += 1
        self._since = self._clock()
