"""Every enumerated state of the domain, as ``enum.StrEnum`` (pure).

Members are ``str`` subclasses: they compare equal to their text, pack into msgpack and JSON as that
text, and ``TaskState("running")`` validates text from the wire (``ValueError`` on anything else). The
state sets the orchestrator and the agent share (terminal, failure, started) are defined here once.
"""

from __future__ import annotations

import enum


class TaskState(enum.StrEnum):
    """Observed state of a task, in lifecycle order (the agent reports STARTING..ORPHANED)."""

    NEW = "new"
    PENDING = "pending"
    ASSIGNED = "assigned"
    STARTING = "starting"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    SHUTDOWN = "shutdown"
    REJECTED = "rejected"
    ORPHANED = "orphaned"


#: observed states after which a container no longer runs
TERMINAL_STATES = frozenset(
    {TaskState.COMPLETE, TaskState.FAILED, TaskState.SHUTDOWN, TaskState.REJECTED, TaskState.ORPHANED}
)
#: observed states counted as a failure by restart condition on-failure (``complete`` is success)
FAILURE_STATES = TERMINAL_STATES - {TaskState.COMPLETE}
#: how the message of a task its restart policy will never restart begins (scheduler/restart.py); the
#: CLI's progress stops waiting when it reads it on a failure of the change it waits for
NOT_RESTARTED = "not restarted: "
#: observed states of a container that was started
STARTED_STATES = frozenset({TaskState.STARTING, TaskState.RUNNING})


class DesiredState(enum.StrEnum):
    """What the leader wants of a task."""

    RUNNING = "running"
    SHUTDOWN = "shutdown"


class TaskHealth(enum.StrEnum):
    """A running task's health check result; NONE when the container has no check."""

    NONE = ""
    STARTING = "starting"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


class NodeRole(enum.StrEnum):
    """Raft role of a member: a voter takes part in elections, a replica only follows the log."""

    VOTER = "voter"
    REPLICA = "replica"


class Availability(enum.StrEnum):
    """Operator setting of a node: active takes tasks, pause takes no new ones, drain moves them off."""

    ACTIVE = "active"
    PAUSE = "pause"
    DRAIN = "drain"


class NodeStatus(enum.StrEnum):
    """Committed liveness of a node (from gossip, written by the leader); LEFT after ``p2porch leave``.

    JOINING from admission until gossip first sees the node alive (it takes no tasks before that); a
    replica joining from its own address is admitted READY (membership/admission_plan.py), and the
    leader marks a READY node its gossip never sees DOWN after a grace (leader/unseen.py).
    """

    JOINING = "joining"
    READY = "ready"
    DOWN = "down"
    LEFT = "left"


def node_status_text(status: str, engine_reachable: bool, restarting: bool = False) -> str:
    """A node's status as users read it (``node ls`` STATUS, the web UI's node table, the API's
    ``status_text``): ``ready (restarting)`` while the leader holds it for the restart its daemon
    announced, ``ready (engine unreachable)`` while its agent cannot reach its Docker engine (in both its
    containers may serve, but it takes no new tasks), else its status."""
    if status == NodeStatus.READY and restarting:
        return "ready (restarting)"
    if status == NodeStatus.READY and not engine_reachable:
        return "ready (engine unreachable)"
    return str(status)


class GossipState(enum.StrEnum):
    """A member's state in the SWIM gossip view."""

    ALIVE = "alive"
    SUSPECT = "suspect"
    DEAD = "dead"
    LEFT = "left"
