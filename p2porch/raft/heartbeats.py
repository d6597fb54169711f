"""Which read-only replicas an idle leader may skip in a heartbeat round (pure: no pysyncobj, no clock).

pysyncobj's leader sends an append (a heartbeat when there is nothing new) to every voter and every
read-only replica each ``appendEntriesPeriod``: with 17 replicas and a 100 ms period that is 170
encrypted messages a second to nodes that do not vote and have nothing to learn. A replica only needs a
message when there are entries it lacks or the commit index moved since it last heard (or its
connection would time out). :class:`ReplicaHeartbeats` remembers, per replica, the commit index and time
of the last round that included it, and names the replicas that need nothing now. Voters are never
skipped: their heartbeats hold off elections.

An idle replica's connection carries one heartbeat and one answer per period, so pysyncobj's read timeout
(``connectionTimeout``, 3 s: it drops a connection silent that long, checked whenever the connection
reads or sends) must be longer than that period on both of its ends, and only on replica connections:
voters keep theirs (it caps a follower's adaptive election timeout, election_timeout.py, and bounds how
long a silently lost voter still looks connected).
:func:`replica_connection_timeout_s` is that longer timeout.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field

#: a replica connection's read timeout, in idle replica heartbeats: one late or lost beat is not a drop
REPLICA_TIMEOUT_BEATS = 2.5


def replica_connection_timeout_s(beat_s: float, connection_timeout_s: float) -> float:
    """The read timeout of a read-only replica's connection to a voter, at both ends (the replica's to each
    voter, each voter's to the replica): ``REPLICA_TIMEOUT_BEATS`` idle heartbeats, never shorter than
    the voters' own ``connection_timeout_s``."""
    return max(connection_timeout_s, REPLICA_TIMEOUT_BEATS * beat_s)


@dataclass
class ReplicaHeartbeats:
    """Per replica: (commit index, time) of the last round that sent to it. Owns nothing else."""

    period_s: float  # a quiet replica still hears from the leader this often (< the connection timeout)
    _sent: dict[Hashable, tuple[int, float]] = field(default_factory=dict)

    def quiet(
        self,
        replicas: Iterable[Hashable],
        next_index: Mapping[Hashable, int],
        last_log_index: int,
        commit_index: int,
        now: float,
    ) -> set[Hashable]:
        """The replicas this round may leave out: they hold every entry, know the commit index, and
        heard from the leader less than ``period_s`` ago."""
        out = set()
        for node in replicas:
            sent = self._sent.get(node)
            if (
                sent is not None
                and next_index.get(node, 0) > last_log_index
                and sent[0] == commit_index
                and now - sent[1] < self.period_s
            ):
                out.add(node)
        return out

    def sent(self, replicas: Iterable[Hashable], commit_index: int, now: float) -> None:
        """A round went to ``replicas``."""
        for node in replicas:
            self._sent[node] = (commit_index, now)

    def forget(self, present: Iterable[Hashable]) -> None:
        """Drop the records of replicas no longer connected."""
        keep = set(present)
        for node in list(self._sent):
            if node not in keep:
                del self._sent[node]


@dataclass
class EarlyRounds:
    """When the leader sends its next append round ahead of the heartbeat period (pure, no clock).

    A node that just connected (a joining replica, a voter the autopilot added) and a follower that
    told the leader where to resume (its log is shorter: a new node always answers the first round
    so) would otherwise wait up to a whole heartbeat period for their entries, twice for a new node.
    Early rounds come at once but at most one per ``min_gap_s``, so a follower that keeps refusing
    cannot make the leader spin. Owns only when the last early round was due.
    """

    min_gap_s: float
    last_due: float = float("-inf")

    def due(self, now: float, scheduled: float) -> float:
        """When the next round should go, given it is ``scheduled`` by the heartbeat period."""
        due = max(now, self.last_due + self.min_gap_s)
        if due >= scheduled:
            return scheduled
        self.last_due = due
        return due
