"""The leader paces its own writes: how many tasks a round may place, from signals of its own health (pure).

Under overload (1,000 nodes x 100,000 tasks on 2 cores, issue 19) the leader proposed placements as fast
as it could plan them; every placement brings its agent's reports, the machine saturated, the leader's
Raft thread did not run for seconds, followers elected another leader, and each new leader re-planned
everything: a collapse. :class:`WritePacer` is admission control in the way of TCP's congestion window
(AIMD): the leader loop tells it, after each round, how late its Raft thread's ticks ran and how long
the round's own proposals took to commit; under pressure the round's **placement budget** is cut
(multiplicatively, at most once per ``hold_s``), without pressure it grows back (additively, with
time) and above ``ceiling`` it is off again. It never goes below ``floor`` (progress is guaranteed:
every round may place that many), and it starts off: a leader that never saw pressure is never slowed.

What the budget bounds is :func:`~.scheduling.plan_scope`'s business (repairs first, then new slots).
It owns only the budget and the times it last changed; it never reads a clock (``now`` is given) and
never writes anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["PacingLimits", "PacingSignals", "WritePacer"]


@dataclass(frozen=True)
class PacingLimits:
    """The thresholds and steps of :class:`WritePacer` (see docs/scheduler.md, "Leader self-pacing")."""

    #: a Raft tick this late (s past the period it set itself) is pressure: the shortest election
    #: timeout is 0.5 s, so a leader tick late by 0.3 s leaves its followers 0.2 s of margin
    late_tick_s: float = 0.3
    #: a proposal of the round committing this slowly (s) is pressure: a committed 1,000-item command
    #: takes milliseconds to ~0.2 s on an unloaded machine
    slow_commit_s: float = 1.0
    #: placements per round whatever the pressure: a round every ~1 s places at least this many
    floor: int = 200
    #: the first budget under pressure, when the round that saw it placed more than this
    start: int = 2000
    #: a budget grown past this is off again (no bound)
    ceiling: int = 20000
    #: the cut under pressure (the budget is multiplied by it)
    decrease: float = 0.5
    #: placements per round added per second without pressure
    increase_per_s: float = 200.0
    #: at most one cut per this many seconds (one overload seen by several rounds is cut once)
    hold_s: float = 1.0


@dataclass(frozen=True)
class PacingSignals:
    """What the loop measured since its last observation."""

    tick_late_s: float = 0.0  # the Raft thread's latest tick, past the period it had set (max)
    commit_s: float = 0.0  # the slowest commit of the round's own proposals
    placed: int = 0  # tasks the round placed

    def pressure(self, limits: PacingLimits) -> bool:
        return self.tick_late_s >= limits.late_tick_s or self.commit_s >= limits.slow_commit_s


class WritePacer:
    """Owns the leader's placement budget per round (AIMD); one leader loop uses it, one round at a time."""

    def __init__(self, limits: PacingLimits | None = None) -> None:
        self.limits = limits or PacingLimits()
        self._budget = math.inf
        self._cut_at = -math.inf
        self._grown_at = -math.inf
        self.cuts = 0  # for logs and tests

    def budget(self) -> int | None:
        """Placements the next round may make; None: no bound."""
        return None if math.isinf(self._budget) else int(self._budget)

    def observe(self, now: float, signals: PacingSignals) -> bool:
        """Take one round's (or wait's) measurements at ``now``; True if the budget was cut."""
        limits = self.limits
        if signals.pressure(limits):
            self._grown_at = now
            if now - self._cut_at < limits.hold_s:
                return False
            if math.isinf(self._budget):  # the first cut: half what the round placed, at most ``start``
                cut = signals.placed * limits.decrease if signals.placed else limits.start
                self._budget = max(float(limits.floor), min(float(limits.start), cut))
            else:
                self._budget = max(float(limits.floor), self._budget * limits.decrease)
            self._cut_at = now
            self.cuts += 1
            return True
        if not math.isinf(self._budget):
            if now > self._grown_at:
                self._budget += limits.increase_per_s * (now - self._grown_at)
            if self._budget >= limits.ceiling:
                self._budget = math.inf
        self._grown_at = now
        return False
