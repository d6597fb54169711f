"""How long pysyncobj's Raft thread may sleep between ticks: short while there is work, long when idle (pure).

pysyncobj's tick thread polls its sockets with a timeout of ``autoTickPeriod`` and is woken early by any
message or proposal; the timeout only bounds how late timers (heartbeats, election deadlines, commits
nothing else wakes, e.g. a single voter's own) fire. A 5 ms tick keeps commits at ~1-2 ms but wakes an
idle node 200 times a second. :class:`TickPacer` keeps the short tick while proposals are in flight or
committed entries wait to be applied and the long one otherwise, cut short by the next Raft timer (an
election deadline, a heartbeat) so that a long idle period delays neither (docs/raft.md, "Settings").
Everything else a store does wakes its poll at once (a peer's message, a proposal's notifier, the
journal's sync), so the tick no longer lingers short after a commit (issue 19: every daemon's Raft thread
ticked at 200 Hz through a formation; replicas stopped in the eighteenth round, voters and the leader in
the nineteenth, docs/performance.md; the forced compaction a follower then dropped now and then was
pysyncobj's flag, cleared before the follower could dump, which the extra ticks made rarer:
``forced_dump.py``). Work seen within ``linger_s`` (a proposal, a moved commit index)
still paces the leader's append rounds (:meth:`TickPacer.round_period`): an idle leader heartbeats its
voters at a longer period; the election timeouts do not change.
:class:`TickLateness` measures how late the ticks ran, against the followers' election window as the
leader can estimate it (the leader's self-pacing reads it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .election_timeout import ElectionTimeout

TIMER_SLACK_S = 0.002


@dataclass
class TickPacer:
    """The tick period to use next; owns only the time work was last seen (no I/O, no clock)."""

    busy_period_s: float
    idle_period_s: float
    linger_s: float = 1.0
    last_work_at: float = -math.inf
    last_commit: int = -1

    def work(self, now: float) -> float:
        """A proposal is about to be submitted: the busy period, from now."""
        self.last_work_at = now
        return self.busy_period_s

    def period(
        self, now: float, commit_index: int, last_applied: int, in_flight: bool, timer_at: float = math.inf
    ) -> float:
        """Observe the Raft log once per tick; returns the period for the next tick.

        ``timer_at`` is when pysyncobj's next timer is due (a follower's election deadline, the leader's
        next heartbeat): an idle tick never sleeps past it (plus ``TIMER_SLACK_S``: pysyncobj fires a
        timer strictly after its time), so the idle period can be long without making either late."""
        if in_flight or commit_index != self.last_commit or last_applied < commit_index:
            self.last_work_at = now  # the idle rounds' notion (``idle``), not the tick's
        self.last_commit = commit_index
        if in_flight or last_applied < commit_index:
            return self.busy_period_s
        until_timer = timer_at - now + TIMER_SLACK_S
        if until_timer <= 0:  # due, yet the tick just run left it (a voter cut off from every peer)
            return self.idle_period_s
        return max(self.busy_period_s, min(self.idle_period_s, until_timer))

    def idle(self, now: float) -> bool:
        """No work seen within ``linger_s`` (a proposal, a moved commit index): the idle rounds' notion."""
        return now - self.last_work_at >= self.linger_s

    def round_period(self, now: float, busy_s: float, idle_s: float, lagging: bool = False) -> float:
        """The leader's next append round in: ``busy_s`` (the heartbeat) while work was seen within
        ``linger_s`` (a proposal, a moved commit index) or a connected peer still ``lagging`` (entries or
        a snapshot the last round had no time to send: a catching-up node gets them every heartbeat),
        else ``idle_s`` (never shorter than ``busy_s``). Proposals do not wait for either: pysyncobj
        sends their entries at once (no append batching)."""
        if lagging or not self.idle(now):
            return busy_s
        return max(busy_s, idle_s)


#: a late tick older than this no longer counts (a follower's lateness must not cap the leadership it
#: wins minutes later; a leader reads it every round, far more often)
LATENESS_WINDOW_S = 10.0


@dataclass(frozen=True)
class Lateness:
    """What :meth:`TickLateness.take` hands the leader loop (its self-pacing, ``leader/pacing.py``)."""

    late_s: float = 0.0  # the latest tick's lateness: the largest since the last take
    #: the largest lateness as a share of the followers' election window estimated just before it
    share: float = 0.0
    window_s: float = 0.0  # the window that share is of (for logs)


class TickLateness:
    """How late the Raft thread's ticks ran, and how close that came to its followers' election window.

    Lateness: the largest gap between two ticks beyond the period the first had set for itself (its poll's
    timeout), since the last :meth:`take` and within the last ``LATENESS_WINDOW_S`` (once the largest is
    older, the next tick's lateness replaces it).

    The followers' window: each voter widens its election timeout to the mean plus four deviations of the
    gaps it hears from its leader (``election_timeout.py``), between ``floor_s`` (the configured minimum)
    and ``cap_s``. The leader cannot read their estimates; it runs the same estimator over its own ticks'
    lateness, which is what its followers' gaps are made of beyond the heartbeat interval. For stalls much
    longer than that interval (the ones that matter: a window above the configured minimum needs a
    deviation over a quarter of it) the estimate is on the low side of theirs (it leaves out the interval,
    and a follower's own late ticks only widen its deviation), so a lateness judged far from it is far
    from theirs. ``share`` is a tick's lateness over the estimate *before* that tick was counted: what the
    followers held while the silence lasted.

    The Raft thread calls :meth:`tick`, the leader loop :meth:`take`; a lost update between the two threads
    costs one sample, never a wrong one. No clock: ``now`` is given."""

    def __init__(self, floor_s: float = 0.5, cap_s: float = 3.0) -> None:
        # StoreConfig's defaults: election_timeout_min_s and election_cap_s(1.2, 3.0)
        self.followers = ElectionTimeout(floor_s=floor_s, cap_s=max(floor_s, cap_s), beat_s=0.0)
        self._at: float | None = None
        self._period = 0.0
        self._late = 0.0
        self._late_at = 0.0
        self._share = 0.0
        self._share_at = 0.0
        self._window = floor_s  # the window of the largest share

    def tick(self, now: float, period: float) -> None:
        """A tick ran at ``now`` and set ``period`` for the next one."""
        if self._at is not None:
            late = max(0.0, now - self._at - self._period)
            window = self.followers.minimum(now)
            share = late / window
            self.followers.sample(late, now)
            if late > self._late or now - self._late_at > LATENESS_WINDOW_S:
                self._late, self._late_at = late, now
            if share > self._share or now - self._share_at > LATENESS_WINDOW_S:
                self._share, self._share_at, self._window = share, now, window
        self._at, self._period = now, period

    def take(self) -> Lateness:
        """The largest lateness (and share of the window) since the last call; the count starts again."""
        taken = Lateness(self._late, self._share, self._window)
        self._late = self._share = 0.0
        return taken
