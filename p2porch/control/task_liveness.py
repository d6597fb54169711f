"""Whether a task's recorded state is current, and so counts as running (pure).

A task's state is what its node's agent last reported. While the node is not ``ready``, or its agent
cannot reach its Docker engine, nobody can report it: a task kept there (within ``down_grace_s``, a lost
site's ``keep`` task, within ``engine_down_grace_s``) still reads ``running`` but is not counted so.
``service ls`` REPLICAS (and the API's ``running``), ``stack ls`` and the web UI count it out, and
``service ps`` says why in its message, as Swarm counts only running tasks on nodes that are not down.
Never reads the store or a clock: it is given the records.
"""

from __future__ import annotations

from ..model import DesiredState, Node, NodeStatus, Task, TaskState

__all__ = ["counts_as_running", "stale_message", "unreported_reason"]


def unreported_reason(node: Node | None) -> str:
    """Why the tasks on ``node`` are not reported now: ``removed`` (no such node: None), ``down`` (any
    status but ready: down, joining, left) or ``engine unreachable``; "" when its agent reports them."""
    if node is None:
        return "removed"
    if node.status != NodeStatus.READY:
        return "down"
    return "engine unreachable" if node.engine_down_at else ""


def counts_as_running(task: Task, node: Node | None) -> bool:
    """``task`` (on ``node``, its node's record or None) is running as far as anyone can know: its state
    is running and its node reports it."""
    return task.state == TaskState.RUNNING and not unreported_reason(node)


def stale_message(task: Task, node: Node | None) -> str:
    """``service ps``'s message for a task still meant to run, running or starting on a node that does
    not report it: its state is only the node's last report. "" for any other task (it has its own)."""
    if (
        task.node_id is None
        or task.desired_state != DesiredState.RUNNING
        or task.state not in (TaskState.RUNNING, TaskState.STARTING)
    ):
        return ""
    reason = unreported_reason(node)
    if not reason:
        return ""
    name = node.name if node is not None else task.node_id[:12]
    if reason == "down":
        return f"node {name} down: its last report (unreachable)"
    return f"node {name} {reason}: its last report"
