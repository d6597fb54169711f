"""One node's Raft status as the store reports it, and the leader changes it saw (pure records)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RaftStatus:
    """A point-in-time view of this node's Raft role (refreshed every ``status_refresh_s``)."""

    self_addr: str | None
    role: str  # leader | follower | candidate | replica
    is_leader: bool
    leader: str | None
    term: int
    commit_index: int
    last_applied: int
    voters: tuple[str, ...]
    connected_voters: tuple[str, ...]
    replicas_connected: int
    has_quorum: bool
    ready: bool
    state_version: int
    raft_thread_alive: bool
    leader_commit_index: int = 0  # the leader's commit index as last heard (the leader: its own)
    lag_s: float = 0.0  # how long this node has missed a committed entry (docs/raft.md, "lag")
    peers: dict[str, dict[str, Any]] = field(default_factory=dict)  # leader: {addr: match_index, lag_s}

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


class LeaderChanges:
    """Counts how often the leader this node sees changed to another node; knows nothing else."""

    def __init__(self) -> None:
        self.count = 0
        self._last: str | None = None
        self._seen: str | None = None  # the leader of the last observation, None included

    def observe(self, leader: str | None) -> bool:
        """Note the leader seen now (None: none known, which is not counted); True when it differs from
        the last observation's (another leader, or none: what ``events`` shows)."""
        changed, self._seen = leader != self._seen, leader
        if leader is None or leader == self._last:
            return changed
        if self._last is not None:
            self.count += 1
        self._last = leader
        return changed
