"""This node's view of its Raft group at one moment (a plain record; the store computes it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["RaftStatus"]


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
