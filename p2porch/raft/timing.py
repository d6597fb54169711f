"""Raft heartbeat and election timeouts for the round trip between the farthest voters (pure).

Raft needs ``broadcast time << election timeout << time between failures``. The defaults (heartbeat
100 ms, election 0.5-1.2 s, ``StoreConfig``) hold up to ~50 ms between voters: a heartbeat takes half
a round trip and several of them fit in the shortest election timeout. Farther apart, a follower
would start elections while heartbeats are still in flight. :func:`timing_for_rtt` keeps the
defaults up to that and scales beyond it: heartbeat twice the round trip, the election window five
to twelve heartbeats (the defaults' proportions). An idle leader heartbeats at twice the period
(``idle_heartbeat_s``: 2.5 idle heartbeats in the shortest election timeout). No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

HEARTBEAT_S = 0.1
ELECTION_MIN_HEARTBEATS = 5.0
ELECTION_MAX_HEARTBEATS = 12.0
HEARTBEATS_PER_RTT = 2.0
IDLE_HEARTBEAT_FACTOR = 2.0  # an idle leader's round period, in heartbeats (heartbeat_rounds.py)


@dataclass(frozen=True)
class RaftTiming:
    """Heartbeat period and election timeout window, in seconds."""

    heartbeat_s: float
    election_min_s: float
    election_max_s: float

    @property
    def idle_heartbeat_s(self) -> float:
        """The leader's round period while idle (``StoreConfig.idle_heartbeat_period_s``)."""
        return IDLE_HEARTBEAT_FACTOR * self.heartbeat_s


#: the measured defaults (docs/raft.md, "Settings"), kept exactly up to a 50 ms round trip
DEFAULT = RaftTiming(HEARTBEAT_S, 0.5, 1.2)


def timing_for_rtt(rtt_s: float) -> RaftTiming:
    """The timing for voters ``rtt_s`` apart (the largest round trip between two of them; 0: a LAN)."""
    heartbeat = HEARTBEATS_PER_RTT * max(rtt_s, 0.0)
    if heartbeat <= HEARTBEAT_S:
        return DEFAULT
    return RaftTiming(heartbeat, ELECTION_MIN_HEARTBEATS * heartbeat, ELECTION_MAX_HEARTBEATS * heartbeat)
