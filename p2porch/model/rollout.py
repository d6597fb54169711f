"""The rollout record of a service: its last template change, as Swarm's ``UpdateStatus`` (pure).

A rollout is one template change being rolled out: a ``service update`` (or a secret rotation, a stack
deploy) or a rollback, manual or automatic. ``state`` is ``updating``, ``paused``, ``completed``,
``rollback_started``, ``rollback_paused`` or ``rollback_completed``; ``started_at`` scopes which task
failures count; ``reason`` says why it changed state; ``policy`` is, for a rollback, the
``rollback_config`` of the spec rolled back from (None: the spec's own). Written by the API with every
template change and by the leader from the orchestrator's events; never mutated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from ..errors import ConfigError
from .container import UpdateConfig


class RolloutState(StrEnum):
    UPDATING = "updating"
    PAUSED = "paused"
    COMPLETED = "completed"
    ROLLBACK_STARTED = "rollback_started"
    ROLLBACK_PAUSED = "rollback_paused"
    ROLLBACK_COMPLETED = "rollback_completed"


@dataclass(frozen=True, slots=True)
class Rollout:
    """A service's last template change (see the module docstring)."""

    state: RolloutState
    started_at: float
    reason: str = ""
    policy: UpdateConfig | None = None

    def __post_init__(self) -> None:
        if type(self.state) is not RolloutState:
            object.__setattr__(self, "state", RolloutState(self.state))

    @property
    def rollback(self) -> bool:
        return self.state.startswith("rollback")

    @property
    def completed(self) -> bool:
        return self.state in (RolloutState.COMPLETED, RolloutState.ROLLBACK_COMPLETED)

    @classmethod
    def update(cls, now: float, reason: str = "") -> Rollout:
        """A template change rolled out with the spec's ``update`` policy."""
        return cls(RolloutState.UPDATING, now, reason)

    @classmethod
    def rolling_back(cls, now: float, policy: UpdateConfig | None, reason: str) -> Rollout:
        """A rollback rolled out with ``policy`` (the rollback config of the spec left)."""
        return cls(RolloutState.ROLLBACK_STARTED, now, reason, policy)

    def paused(self, reason: str) -> Rollout:
        state = RolloutState.ROLLBACK_PAUSED if self.rollback else RolloutState.PAUSED
        return replace(self, state=state, reason=reason)

    def restarted(self, now: float) -> Rollout:
        """This paused rollout resumed at ``now``: running again, counting only failures from ``now`` (as
        swarmkit's UpdateService resets the update status; the old start counted the failures that
        paused it, which paused it again at once)."""
        if self.rollback:
            return replace(self, state=RolloutState.ROLLBACK_STARTED, started_at=now)
        return replace(self, state=RolloutState.UPDATING, started_at=now, reason="resumed")

    def done(self) -> Rollout:
        state = RolloutState.ROLLBACK_COMPLETED if self.rollback else RolloutState.COMPLETED
        return replace(self, state=state)

    def status(self) -> dict[str, Any]:
        """What ``service inspect`` and events show (the policy stays internal)."""
        return {"state": str(self.state), "started_at": self.started_at, "reason": self.reason}

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.status(),
            "policy": None if self.policy is None else self.policy.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Rollout | None:
        """A stored record, or None when there is none or it is unreadable (the service then rolls out
        as before records existed)."""
        if not isinstance(data, Mapping) or data.get("state") not in set(RolloutState):
            return None
        started = data.get("started_at")
        if isinstance(started, bool) or not isinstance(started, (int, float)):
            return None
        policy = None
        if isinstance(data.get("policy"), Mapping):
            try:
                policy = UpdateConfig.from_dict(data["policy"], "rollout.policy")
            except ConfigError:
                policy = None
        return cls(RolloutState(data["state"]), float(started), str(data.get("reason") or ""), policy)
