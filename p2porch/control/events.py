"""Cluster events for `p2porch events`: node, service, task, secret/config and network changes (pure).

Turns Raft change records (with the states before and after) into small event dicts, and keeps the
recent ones (``EventHistory``) for ``events --since``. It never reads the store or a clock itself.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any

from ..model import TERMINAL_STATES, Node, Service, Task
from ..raft.fsm import Change
from ..raft.state import ClusterState
from ..scheduler.jobs import shown_desired_state


def describe_change(
    change: Change,
    previous: Any,
    state: ClusterState,
    at: float,
    removed_names: Mapping[str, str] | None = None,
) -> dict[str, Any] | None:
    """One event for a change, given the record it replaces (None if new), or None if nothing a user
    cares about changed. ``state`` is a current snapshot, used only to name services and nodes;
    ``removed_names`` (service id -> name) names the tasks of services no longer in it, which stop
    after their service is removed."""
    if change.kind == "node":
        return _node_event(change, previous, change.record, at)
    if change.kind == "task" and change.op == "put":
        return _task_event(previous, change.record, state, at, removed_names or {})
    if change.kind == "service":
        name = (
            change.record.name if change.record is not None else (previous.name if previous else change.key)
        )
        verb = "removed" if change.op == "delete" else ("created" if previous is None else "updated")
        scaled = _autoscale_step(previous, change.record)
        if scaled is not None:
            return {
                "at": at,
                "type": "service",
                "action": "autoscaled",
                "service": name,
                "service_id": change.key,
                **scaled,
            }
        event = {"at": at, "type": "service", "action": verb, "service": name, "service_id": change.key}
        if verb == "updated":
            event.update(_rollout_change(previous, change.record))
        return event
    if change.kind == "secret":  # metadata only: kind, name, version (never a value or ciphertext)
        kind, _, name = change.key.partition(":")
        if change.op == "delete":
            return {
                "at": at,
                "type": kind,
                "action": "removed",
                "name": name,
                f"{kind}_id": _object_id(previous),
            }
        version = change.record.current
        resealed = previous is not None and previous.current == version  # same versions, new ciphertext
        return {
            "at": at,
            "type": kind,
            "action": "resealed" if resealed else ("created" if version == 1 else "updated"),
            "name": name,
            f"{kind}_id": change.record.object_id,
            "version": version,
        }
    if change.kind == "access_token":  # name and role only, never the digest
        if change.op == "delete":
            return {"at": at, "type": "access", "action": "removed", "name": change.key}
        return {
            "at": at,
            "type": "access",
            "action": "created",
            "name": change.key,
            "role": change.record.role,
        }
    if change.kind == "network":
        if change.op == "delete":
            name = previous.name if previous is not None else change.key
            return {
                "at": at,
                "type": "network",
                "action": "removed",
                "network": name,
                "network_id": change.key,
            }
        name = change.record.name
        return {"at": at, "type": "network", "action": "created", "network": name, "network_id": change.key}
    return None


def _object_id(record: Any) -> str | None:
    return record.object_id if record is not None else None


def _rollout_change(old: Service, new: Service) -> dict[str, Any]:
    """``update_status`` (and its ``reason``) when a service's rollout changed state: updating, paused,
    completed, rollback_started, rollback_paused, rollback_completed."""
    before, after = old.rollout, new.rollout
    if after is None or (
        before is not None and (before.state, before.started_at) == (after.state, after.started_at)
    ):
        return {}
    out: dict[str, Any] = {"update_status": str(after.state)}
    if after.reason:
        out["reason"] = after.reason
    return out


def _autoscale_step(old: Service | None, new: Service | None) -> dict[str, Any] | None:
    """The autoscaler's step a service change records (``autoscale_last`` changed), with its inputs."""
    step = new.autoscale_last if new is not None else None
    if step is None or (old is not None and old.autoscale_last == step):
        return None
    return {
        "from": step.from_replicas,
        "to": step.to_replicas,
        "reason": step.reason,
        "inputs": dict(step.inputs),
        "text": f"{step.from_replicas} -> {step.to_replicas}: {step.reason}",
    }


def _node_event(change: Change, old: Node | None, new: Node | None, at: float) -> dict[str, Any] | None:
    if change.op == "delete":
        name = old.name if old else change.key
        return {"at": at, "type": "node", "action": "removed", "node": name, "node_id": change.key}
    if new is None:
        return None
    about = {"at": at, "type": "node", "node": new.name, "node_id": change.key}
    if old is None:
        return {**about, "action": "joined", "role": new.role}
    if old.status != new.status:
        return {**about, "action": new.status}
    if old.availability != new.availability:
        return {**about, "action": new.availability}
    if old.role != new.role:  # the autopilot made it a voter or a replica (Docker: promote/demote)
        return {**about, "action": new.role, "was": old.role}
    return None


def _task_event(
    old: Task | None, new: Task, state: ClusterState, at: float, removed_names: Mapping[str, str]
) -> dict[str, Any] | None:
    """One event per change a user sees: state, desired state, node, health. A task that ended (failed,
    complete, ...) then told to stay down (desired ``shutdown``, the orchestrator's bookkeeping) is not
    another event: it showed as a second ``failed``."""
    if old is not None:
        same = (old.state, old.node_id, old.health) == (new.state, new.node_id, new.health)
        if same and (old.desired_state == new.desired_state or new.state in TERMINAL_STATES):
            return None
    service = state.services.get(new.service_id)
    name = service.name if service else removed_names.get(new.service_id, new.service_id)
    node = state.nodes.get(new.node_id) if new.node_id else None
    event: dict[str, Any] = {
        "at": at,
        "type": "task",
        "task": f"{name}.{new.slot}",
        "task_id": new.task_id,
        "node": node.name if node else None,
        "state": new.state,
        # a job's task: ``complete``, as ``service ps`` shows it (the record keeps ``running``)
        "desired_state": shown_desired_state(new) if service and service.spec.is_job else new.desired_state,
    }
    if new.health:
        event["health"] = new.health
    if new.error or new.message:
        event["detail"] = new.error or new.message
    return event


def leader_event(leader: str | None, at: float) -> dict[str, Any]:
    return {"at": at, "type": "leader", "action": "elected" if leader else "lost", "leader": leader}


HISTORY_EVENTS = 1000  # the recent events a node keeps for ``events --since`` (Docker's engine keeps 256)


class EventHistory:
    """The recent events this node described (changes and leader changes), oldest first, for
    ``events --since/--until``.

    Owns at most ``limit`` events of one cluster (``cluster_id``): the daemon keeps one for its lifetime,
    across member runs (a key or Raft role switch restarts them), and it starts empty for another
    cluster. Never reads a clock or the store; nothing of it is written to disk."""

    def __init__(self, limit: int = HISTORY_EVENTS) -> None:
        self._events: deque[dict[str, Any]] = deque(maxlen=limit)
        self.cluster_id = ""

    def of_cluster(self, cluster_id: str) -> None:
        """The events from now on are ``cluster_id``'s ("": not known yet): another cluster's are
        forgotten."""
        if cluster_id and cluster_id != self.cluster_id:
            self._events.clear()
            self.cluster_id = cluster_id

    def record(self, event: dict[str, Any]) -> None:
        self._events.append(event)

    def between(self, since: float | None, until: float | None) -> list[dict[str, Any]]:
        """The kept events at or after ``since`` and at or before ``until`` (None: unbounded), oldest
        first."""
        low = -math.inf if since is None else since
        high = math.inf if until is None else until
        return [e for e in self._events if low <= e["at"] <= high]
