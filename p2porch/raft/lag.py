"""How far behind the leader's commit index a node is, in entries and in seconds (pure).

A node is as late as the oldest committed entry it has not applied (or, seen from the leader, not
replicated): :class:`LagClock` remembers when each commit index was first heard of and drops what
the node has caught up with. A node that keeps up under constant writes therefore shows
milliseconds, not "always one entry behind". ``LAGGING_AFTER_S`` is when views flag a node.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

LAGGING_AFTER_S = 3.0
_MAX_MARKS = 256


@dataclass
class LagClock:
    """(time first heard, commit index) marks above what the node has; owns nothing else."""

    marks: deque[tuple[float, int]] = field(default_factory=deque)

    def observe(self, now: float, have: int, commit: int | None) -> float:
        """Seconds the node has been missing a committed entry (0.0 if it holds everything)."""
        if commit is not None and commit > have and (not self.marks or commit > self.marks[-1][1]):
            if len(self.marks) >= _MAX_MARKS:
                self.marks.pop()  # keep the oldest marks: they decide the lag
            self.marks.append((now, commit))
        while self.marks and self.marks[0][1] <= have:
            self.marks.popleft()
        return round(now - self.marks[0][0], 3) if self.marks else 0.0


class LagBook:
    """This node's lag clock and, while it leads, its peers' (the store's Raft thread); ``current`` is the
    latest ``(own lag_s, {peer: {"match_index", "lag_s"}})``."""

    def __init__(self) -> None:
        self._clocks: dict[str, LagClock] = {}  # "" = this node
        self.current: tuple[float, dict[str, dict[str, Any]]] = (0.0, {})

    def observe(
        self,
        now: float,
        raw: Mapping[str, Any],
        is_leader: bool,
        applied: int,
        commit: int,
        replica_hosts: Callable[[], Mapping[str, str]],
    ) -> None:
        """One status refresh: ``raw`` is pysyncobj's ``getStatus()``, ``replica_hosts`` asked only
        while this node leads."""
        own = self._clocks.setdefault("", LagClock()).observe(now, applied, commit)
        peers: dict[str, dict[str, Any]] = {}
        for addr, match in peer_matches(raw, replica_hosts()).items() if is_leader else ():
            lag = self._clocks.setdefault(addr, LagClock()).observe(now, match, commit)
            peers[addr] = {"match_index": match, "lag_s": lag}
        if not is_leader:
            self._clocks = {"": self._clocks[""]}
        self.current = (own, peers)


_MATCH_PREFIX = "match_idx_server_"
#: the key of a read-only replica's progress: ``replica@HOST`` (pysyncobj does not know its address)
REPLICA_PREFIX = "replica@"


def peer_matches(raw: Mapping[str, Any], replica_hosts: Mapping[str, str]) -> dict[str, int]:
    """The leader's match index per partner from pysyncobj's ``getStatus()``: a voter by its Raft
    address; a read-only replica, which pysyncobj knows only by a counter ("0", "1", ...), as
    ``replica@HOST``, the host its connection comes from (``replica_hosts``), unless two replicas
    connect from the same host (then neither: which is which cannot be told) or the host is unknown."""
    matches = {k.removeprefix(_MATCH_PREFIX): int(v) for k, v in raw.items() if k.startswith(_MATCH_PREFIX)}
    per_host = Counter(replica_hosts[i] for i in matches if replica_hosts.get(i))
    out: dict[str, int] = {}
    for ident, match in matches.items():
        host = replica_hosts.get(ident)
        if host is None and not ident.isdigit():
            out[ident] = match  # a voter
        elif host and per_host[host] == 1:
            out[REPLICA_PREFIX + host] = match
    return out


def progress_view(status: Any, raft_addr: str | None, is_self: bool, replica: bool = False) -> dict[str, Any]:
    """The Raft progress of one node as this node's store knows it, for ``node ls``/``node inspect``.

    ``status`` is a ``RaftStatus``. Self: applied index, distance to the leader's commit index and
    lag. Another node, seen from the leader: its match index (what it holds) and lag (a ``replica`` by
    the host its connection comes from, :func:`peer_matches`); ``match_index``
    None until the leader has heard from it (pysyncobj starts every match index at 0 when a leader takes
    over or its store restarts, as each member's does on a key switch after ``node rm``: that showed a
    just-promoted voter as ``0 (-233)`` for seconds). Otherwise unknown (None): ask the leader's node.
    """
    if is_self:
        return {
            "applied_index": status.last_applied,
            "behind_entries": max(0, status.leader_commit_index - status.last_applied),
            "lag_s": status.lag_s,
            "lagging": status.lag_s > LAGGING_AFTER_S,
        }
    peer = status.peers.get(raft_addr) if status.is_leader and raft_addr else None
    if peer is None and replica and status.is_leader and raft_addr:  # a replica by its host
        peer = status.peers.get(REPLICA_PREFIX + raft_addr.rpartition(":")[0])
    if peer is None:
        return {"applied_index": None, "behind_entries": None, "lag_s": None, "lagging": None}
    if peer["match_index"] <= 0:  # a leader (or a store restarted by a key switch) has not heard back yet
        return {"match_index": None, "behind_entries": None, "lag_s": None, "lagging": None}
    return {
        "match_index": peer["match_index"],
        "behind_entries": max(0, status.commit_index - peer["match_index"]),
        "lag_s": peer["lag_s"],
        "lagging": peer["lag_s"] > LAGGING_AFTER_S,
    }
