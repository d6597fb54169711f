"""The rollout record kept in a stored service spec, and what the leader writes when it changes (pure).

Beside the user's fields a stored spec carries ``rollout``: the state of its last template change, as
Swarm's ``UpdateStatus`` (``updating``, ``paused``, ``completed``, ``rollback_started``,
``rollback_paused``, ``rollback_completed``), when it started, why it changed (``reason``), and for a
rollback the ``policy`` (the ``rollback_config`` of the spec rolled back from) that rolls it out. The API
writes a new record with every template change; the leader pauses it, rolls it back or completes it from
the orchestrator's events. Nothing here reads a clock or writes: callers pass ``now`` and commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from ..scheduler.rollout import Rollout
from ..scheduler.spec import UpdateConfig

ROLLOUT_KEY = "rollout"
ROLLOUT_STATES = (
    "updating",
    "paused",
    "completed",
    "rollback_started",
    "rollback_paused",
    "rollback_completed",
)


def update_started(now: float, reason: str = "") -> dict[str, Any]:
    """The record of a template change rolled out with the spec's ``update`` policy."""
    return {"state": "updating", "started_at": now, "reason": reason}


def rollback_started(now: float, policy: Mapping[str, Any] | None, reason: str) -> dict[str, Any]:
    """The record of a rollback rolled out with ``policy`` (the rollback config of the spec left)."""
    record: dict[str, Any] = {"state": "rollback_started", "started_at": now, "reason": reason}
    if policy is not None:
        record["policy"] = dict(policy)
    return record


def paused(record: Mapping[str, Any], reason: str) -> dict[str, Any]:
    """``record`` paused by a failure: ``paused`` or ``rollback_paused``."""
    rollback = str(record.get("state", "")).startswith("rollback")
    return {**dict(record), "state": "rollback_paused" if rollback else "paused", "reason": reason}


def completed(record: Mapping[str, Any]) -> dict[str, Any]:
    rollback = str(record.get("state", "")).startswith("rollback")
    return {**dict(record), "state": "rollback_completed" if rollback else "completed"}


def orchestrator_rollout(stored: Mapping[str, Any]) -> Rollout | None:
    """The orchestrator's view of a stored spec's rollout record (None when there is none or it is
    unreadable: the service then rolls out as before records existed)."""
    record = stored.get(ROLLOUT_KEY)
    if not isinstance(record, Mapping) or record.get("state") not in ROLLOUT_STATES:
        return None
    started = record.get("started_at")
    if isinstance(started, bool) or not isinstance(started, (int, float)):
        return None
    policy = None
    if isinstance(record.get("policy"), Mapping):
        try:
            policy = UpdateConfig.from_dict(record["policy"], "rollout.policy")
        except ConfigError:
            policy = None
    state = str(record["state"])
    return Rollout(
        started_at=float(started),
        rollback=state.startswith("rollback"),
        completed=state.endswith("completed"),
        policy=policy,
    )


def rollout_status(stored: Mapping[str, Any]) -> dict[str, Any] | None:
    """What ``service inspect`` shows: state, started_at and reason (the policy stays internal)."""
    record = stored.get(ROLLOUT_KEY)
    if not isinstance(record, Mapping):
        return None
    return {k: record[k] for k in ("state", "started_at", "reason") if k in record}
