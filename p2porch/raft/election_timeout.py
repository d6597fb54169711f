"""A voter's adaptive election timeout: how long a silence from its leader must last before it counts
(pure: no pysyncobj, no clock; callers pass ``now``).

A fixed window (0.5-1.2 s, ``StoreConfig``) deposes a leader that is alive but slow: on a saturated
machine (issue 19, 1,000 x 100,000: ~30 processes on 2 cores) a follower heard its leader with gaps of
0.5-1.1 s, won a pre-vote every 5-10 s, and each new leader was as starved as the last. As TCP sets its
retransmission timeout from the round trips it measured (RFC 6298: SRTT + 4·RTTVAR) and as Lifeguard
makes SWIM wait longer for slow members, :class:`ElectionTimeout` follows the gaps between messages from
the current leader and widens the window to ``mean + 4·deviation`` of those gaps, never below the
configured minimum and never above ``cap_s``.

Two choices differ from RFC 6298, because the costs are not symmetric (deposing a live leader re-plans
every task; a real death is mostly seen at once as a dropped connection, pre_vote_elections.py):

* the deviation rises to a sample's deviation at once and then falls with time (``decay_s``), as Linux's
  estimator does with its per-round-trip ``mdev_max``; with RFC 6298's per-sample weights, the ten
  heartbeats a second that follow a 2 s stall would wash it out within a second;
* gaps across a change of leader (another node or another term) are no samples: the silence of an
  election is not a leader's slowness.

The mean and deviation stay across a change of leader (the machine, not the leader, is slow). It owns
these two numbers and the leader it follows; it never sends, never reads a clock, never touches Raft.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass

DEVIATIONS = 4.0  # RFC 6298's K
MEAN_WEIGHT = 1.0 / 8.0  # RFC 6298's alpha, per sample
DECAY_S = 10.0  # the deviation falls by e in this long: a 2 s stall is forgotten ~30 s later
CAP_FACTOR = 5.0  # the adapted minimum grows to at most this many times the configured maximum


def election_cap_s(max_s: float, connection_s: float) -> float:
    """The most the adapted minimum grows to: ``CAP_FACTOR`` times the configured maximum, and never past
    the connection timeout (the transport drops a connection silent that long, and a dropped leader
    counts as lost at once, so a longer hold would never be used)."""
    return max(max_s, min(CAP_FACTOR * max_s, connection_s))


@dataclass
class ElectionTimeout:
    """One voter's estimate of its leader's gaps, and the election window it makes.

    ``floor_s``: the configured minimum election timeout; ``cap_s`` the most the minimum may grow to;
    ``beat_s`` the heartbeat period (the mean before any sample)."""

    floor_s: float
    cap_s: float
    beat_s: float
    decay_s: float = DECAY_S
    mean_s: float = -1.0  # the smoothed gap (set from beat_s)
    dev_s: float = 0.0  # the deviation as of dev_at
    dev_at: float = 0.0
    leader: tuple[Hashable, int] | None = None  # (node, term) this voter last heard as its leader
    heard_at: float = 0.0
    samples: int = 0

    def __post_init__(self) -> None:
        if self.mean_s < 0:
            self.mean_s = self.beat_s

    def heard(self, node: Hashable, term: int, now: float) -> bool:
        """A message from ``node``, leading in ``term``, arrived at ``now``; True when it was a gap sample
        (the same leader as the last one heard)."""
        leader = (node, term)
        if leader != self.leader:  # a new leader (or the first): its first message starts its gaps
            self.leader, self.heard_at = leader, now
            return False
        gap = now - self.heard_at
        self.heard_at = now
        if gap < 0:
            return False
        self.sample(gap, now)
        return True

    def sample(self, gap: float, now: float) -> None:
        """One silence of ``gap`` s, ended at ``now``, into the mean and the deviation (the leader's
        self-pacing feeds its own ticks' lateness here: ``raft/pacer.py`` ``TickLateness``)."""
        dev = max(abs(gap - self.mean_s), self.deviation(now))  # RFC 6298: before the mean moves
        self.dev_s, self.dev_at = dev, now
        self.mean_s += MEAN_WEIGHT * (gap - self.mean_s)
        self.samples += 1

    def lost(self) -> None:
        """The connection to the leader dropped: its next message (if any) starts a new run of gaps."""
        self.leader = None

    def deviation(self, now: float) -> float:
        """The deviation decayed to ``now``."""
        if self.dev_s <= 0:
            return 0.0
        return self.dev_s * math.exp(-max(0.0, now - self.dev_at) / self.decay_s)

    def minimum(self, now: float) -> float:
        """The shortest silence that counts as a dead leader at ``now``: the election timeout's minimum
        and the pre-vote hold (a voter that heard its leader more recently refuses a pre-vote)."""
        estimate = self.mean_s + DEVIATIONS * self.deviation(now)
        return min(self.cap_s, max(self.floor_s, estimate))


def lost_leader_delay_s(min_s: float, max_s: float, draw: float, *, wait_minimum: bool = False) -> float:
    """How long a voter whose connection to its leader dropped waits before its pre-vote: the configured
    window's width, not its minimum (``draw`` in [0, 1), the caller's RNG).

    The minimum is there to wait out the gaps of a leader that is alive; a closed connection is no gap (the
    leader's process died, or its silence already outlasted the connection timeout, which the adapted
    minimum never passes). The spread stays, so two followers that saw the same drop seldom campaign in
    the same round trip (1-2 % of kills did, measured over 250 in the eleventh round, docs/performance.md;
    a slot of the width per survivor did not do better: a refused first pre-vote is asked again 0.2-0.4 s
    later, in the next slot); stickiness stays too: a voter that still hears the leader refuses the
    pre-vote. ``wait_minimum`` (benchmarks only, ``bench/raft_failover_trials.py``): the rule before the
    tenth round, minimum + width x draw."""
    spread = max(0.0, max_s - min_s) * min(max(draw, 0.0), 1.0)
    return min_s + spread if wait_minimum else spread
