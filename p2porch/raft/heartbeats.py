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

from collections import deque
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
    """Per replica: (commit index, time) of the last round that sent to it, and which replicas are quiet.
    Owns nothing else.

    A round's cost must not grow with the replicas it leaves out (issue 19: an idle leader of 1,000
    replicas). :meth:`quiet` looks at every replica only when the log's end or the commit index moved
    since it last did, or :meth:`changed` said a replica's next index may have moved (an answer, a
    connection, a new leadership). Otherwise it looks only at the replicas sent to since its last call
    and at those whose period ran out (a queue by the time they were sent to), and answers what the
    full look would. Set algebra on the nodes runs in C on their stored hashes; each ``d[node]`` is a
    call of pysyncobj's ``Node.__hash__`` (Python), so per-replica lookups are kept to the few above.
    """

    period_s: float  # a quiet replica still hears from the leader this often (< the connection timeout)
    _sent: dict[Hashable, tuple[int, float]] = field(default_factory=dict)
    _quiet: set[Hashable] = field(default_factory=set)  # as of the last quiet(), before its ``& replicas``
    _expiry: deque[tuple[float, list[Hashable]]] = field(default_factory=deque)  # _quiet by time sent to
    _fresh: list[tuple[float, list[Hashable]]] = field(default_factory=list)  # sent to since quiet()
    _basis: tuple[int, int] | None = None  # (last log index, commit index) of _quiet; None: look at all
    full_looks = 0  # calls of quiet() that looked at every replica (tests, benchmarks)

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
        present = replicas if isinstance(replicas, set | frozenset) else set(replicas)
        state = (last_log_index, commit_index)
        fresh, self._fresh = self._fresh, []
        if self._basis != state:
            self.full_looks += 1
            self._basis, self._expiry = state, deque()
            found = self._quiet_of(present, next_index, state, now)
            by_time: dict[float, list[Hashable]] = {}
            for node, at in found.items():
                by_time.setdefault(at, []).append(node)
            self._expiry.extend(sorted(by_time.items()))
            self._quiet = set(found)
            return set(found)
        quiet, expiry = self._quiet, self._expiry
        while expiry and now - expiry[0][0] >= self.period_s:  # their period ran out (unless sent since)
            for node in expiry.popleft()[1]:
                sent = self._sent.get(node)
                if sent is None or now - sent[1] >= self.period_s:
                    quiet.discard(node)
        for at, nodes in fresh:  # (in the order sent: the queue stays sorted by time)
            if found := self._quiet_of(nodes, next_index, state, now):
                quiet.update(found)
                expiry.append((at, list(found)))  # (all sent to at ``at``, or later: checked when due)
        return quiet & present

    def _quiet_of(
        self,
        nodes: Iterable[Hashable],
        next_index: Mapping[Hashable, int],
        state: tuple[int, int],
        now: float,
    ) -> dict[Hashable, float]:
        """Those of ``nodes`` that may be left out, looked at one by one, with when they were sent to."""
        last_log_index, commit_index = state
        out: dict[Hashable, float] = {}
        for node in nodes:
            sent = self._sent.get(node)
            if (
                sent is not None
                and next_index.get(node, 0) > last_log_index
                and sent[0] == commit_index
                and now - sent[1] < self.period_s
            ):
                out[node] = sent[1]
        return out

    def sent(self, replicas: Iterable[Hashable], commit_index: int, now: float) -> None:
        """A round went to ``replicas``."""
        nodes = list(replicas)
        for node in nodes:
            self._sent[node] = (commit_index, now)
        if nodes:
            self._fresh.append((now, nodes))

    def changed(self) -> None:
        """A replica's next index may have moved outside a round (an answer moved it, a replica
        connected or went away, a new leadership): the next :meth:`quiet` looks at every replica."""
        self._basis = None

    def forget(self, present: Iterable[Hashable]) -> None:
        """Drop the records of replicas no longer connected."""
        gone = set(self._sent)  # (copied on the dict's stored hashes, then set algebra: no Node.__hash__)
        gone.difference_update(present if isinstance(present, set | frozenset) else set(present))
        for node in gone:
            del self._sent[node]
        self._quiet.difference_update(gone)


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
