"""The leader paces its own writes: how many tasks a round may place, from signals of its own health (pure).

Under overload (1,000 nodes x 100,000 tasks on 2 cores, issue 19) the leader proposed placements as fast
as it could plan them; every placement brings its agent's reports, the machine saturated, the leader's
Raft thread did not run for seconds, followers elected another leader, and each new leader re-planned
everything: a collapse. :class:`WritePacer` is admission control in the way of TCP's congestion window
(AIMD): the leader loop tells it, after each round, how late its Raft thread's ticks ran and how long the
round's own proposals took to commit; under pressure the round's **placement budget** is cut
(multiplicatively), without pressure it grows back (additively, with time) and above ``ceiling`` it is
off again. It never goes below ``floor`` (progress is guaranteed: every round may place that many), and
it starts off: a leader that never saw pressure is never slowed.

Pressure is what endangers the leadership or is caused by the leader's own writes, not lateness as such
(on a machine at load 15-20 every tick ran >= 0.3 s late whatever the leader placed, and a fixed 0.3 s
threshold held the budget at its floor):

- **danger**: a tick late by ``danger_share`` of the followers' election window as the leader estimates
  it (``raft/pacer.py`` ``TickLateness``: their adaptive estimator run over its own ticks), or a commit of
  the round taking ``slow_commit_s``; cut at most once per ``hold_s``;
- **a rise caused by placing**: the recent lateness (an average over ``recent_s``) well above its
  baseline (over ``baseline_s``) while the leader placed tasks within ``recent_s``; cut at most once per
  ``recent_s`` (the average needs that long to show what the cut did). Lateness that rises while the
  leader places nothing is not its writes' doing and cuts nothing.

Lateness that is high but steady and far from the window grows the budget: the machine is slow, the leader
is not what makes it slower. Repairs get their own budget, never below ``repair_floor`` (see
:meth:`WritePacer.repair_budget`). What the budgets bound is :func:`~.scheduling.plan_scope`'s business.
It owns only the budget, the two averages and the times they changed; it never reads a clock (``now`` is
given) and never writes anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["PacingLimits", "PacingSignals", "WritePacer"]


@dataclass(frozen=True)
class PacingLimits:
    """The thresholds and steps of :class:`WritePacer` (see docs/scheduler.md, "Leader self-pacing")."""

    #: a tick late by this share of the followers' estimated election window is pressure: their window is
    #: at least the configured minimum (0.5 s: a 0.25 s late tick) and, on a slow machine, up to the cap
    #: (3 s: 1.5 s); the estimate leaves out the heartbeat interval a follower's silence also holds
    danger_share: float = 0.5
    #: the recent lateness at least ``rise_ratio`` times its baseline plus ``rise_margin_s`` is a rise
    rise_ratio: float = 1.5
    rise_margin_s: float = 0.1
    #: how far back the recent lateness looks (s, the time constant of its average), and how recently the
    #: leader must have placed tasks for a rise to be its writes' doing
    recent_s: float = 5.0
    #: how far back the baseline looks (s)
    baseline_s: float = 30.0
    #: a proposal of the round committing this slowly (s) is pressure: a committed 1,000-item command
    #: takes milliseconds to ~0.2 s on an unloaded machine
    slow_commit_s: float = 1.0
    #: placements per round whatever the pressure: a round every ~1 s places at least this many
    floor: int = 200
    #: repairs per round whatever the pressure (a lost zone's tasks are replaced before any new task)
    repair_floor: int = 1000
    #: the first budget under pressure, when the round that saw it placed more than this
    start: int = 2000
    #: a budget grown past this is off again (no bound)
    ceiling: int = 20000
    #: the cut under pressure (the budget is multiplied by it)
    decrease: float = 0.5
    #: placements per round added per second without pressure
    increase_per_s: float = 200.0
    #: at most one cut for danger per this many seconds (one overload seen by several rounds is cut once)
    hold_s: float = 1.0


@dataclass(frozen=True)
class PacingSignals:
    """What the loop measured since its last observation."""

    tick_late_s: float = 0.0  # the Raft thread's latest tick, past the period it had set (max)
    #: the largest lateness as a share of the followers' election window estimated before it (see
    #: ``raft/pacer.py`` ``Lateness``)
    tick_share: float = 0.0
    commit_s: float = 0.0  # the slowest commit of the round's own proposals
    placed: int = 0  # tasks the round placed

    def danger(self, limits: PacingLimits) -> bool:
        """A tick too close to the followers' window, or a slow commit."""
        return self.tick_share >= limits.danger_share or self.commit_s >= limits.slow_commit_s


class WritePacer:
    """Owns the leader's placement budget per round (AIMD); one leader loop uses it, one round at a time."""

    def __init__(self, limits: PacingLimits | None = None) -> None:
        self.limits = limits or PacingLimits()
        self._budget = math.inf
        self._cut_at = -math.inf
        self._grown_at = -math.inf
        self._seen_at: float | None = None  # the last observation (the averages' clock)
        self._placed_at = -math.inf  # the last observation with placements
        self.recent = 0.0  # the lateness averaged over ``recent_s``
        self.baseline = 0.0  # ... and over ``baseline_s``
        self.cuts = 0  # for logs and tests
        self.why = ""  # what the last cut was for: "danger" or "rise" (for logs)

    def budget(self) -> int | None:
        """Placements the next round may make; None: no bound."""
        return None if math.isinf(self._budget) else int(self._budget)

    def repair_budget(self) -> int | None:
        """Repairs the next round may make (a lost node's tasks, restarts, a rollout's replacements): the
        placement budget, never below ``repair_floor``; None (no bound) while the placement budget is off.
        A lost zone's thousands of repairs go out in chunks the leader can write and keep its place."""
        budget = self.budget()
        return None if budget is None else max(budget, self.limits.repair_floor)

    def rising(self, now: float) -> bool:
        """The recent lateness well above its baseline while this leader placed tasks within ``recent_s``."""
        limits = self.limits
        if now - self._placed_at > limits.recent_s:
            return False
        return self.recent >= limits.rise_ratio * self.baseline + limits.rise_margin_s

    def observe(self, now: float, signals: PacingSignals) -> bool:
        """Take one round's (or wait's) measurements at ``now``; True if the budget was cut."""
        limits = self.limits
        self._average(now, signals.tick_late_s)
        if signals.placed > 0:
            self._placed_at = now
        danger = signals.danger(limits)
        rising = not danger and self.rising(now)
        if danger or rising:
            self._grown_at = now
            if now - self._cut_at < (limits.hold_s if danger else limits.recent_s):
                return False
            if math.isinf(self._budget):  # the first cut: half what the round placed, at most ``start``
                cut = signals.placed * limits.decrease if signals.placed else limits.start
                self._budget = max(float(limits.floor), min(float(limits.start), cut))
            else:
                self._budget = max(float(limits.floor), self._budget * limits.decrease)
            self._cut_at = now
            self.cuts += 1
            self.why = "danger" if danger else "rise"
            return True
        if not math.isinf(self._budget):
            if now > self._grown_at:
                self._budget += limits.increase_per_s * (now - self._grown_at)
            if self._budget >= limits.ceiling:
                self._budget = math.inf
        self._grown_at = now
        return False

    def _average(self, now: float, late: float) -> None:
        """Both averages of the lateness, weighted by the time since the last observation."""
        if self._seen_at is None:
            self.recent = self.baseline = late
        elif now > self._seen_at:
            dt = now - self._seen_at
            self.recent += (1.0 - math.exp(-dt / self.limits.recent_s)) * (late - self.recent)
            self.baseline += (1.0 - math.exp(-dt / self.limits.baseline_s)) * (late - self.baseline)
        self._seen_at = now if self._seen_at is None else max(self._seen_at, now)
