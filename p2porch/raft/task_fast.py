"""The task records of ``put_tasks`` and the reports of ``report_task_states``, decoded in one pass (pure).

Every voter decodes every task record twice (placed, then reported running): at 100,000 tasks the
checked decoders of ``fields.py`` (one call, one ``isinstance`` and one enum constructor per field) were
about a third of a follower's Raft thread (issue 19). These fast paths take the form an encoder of this
code writes (exact ``str``/``int``/``float`` values, enum values looked up in a dict) and build the
record directly; anything else (a wrong type, a bad enum value, a negative slot) returns None and the
caller runs the checked decoder, which accepts or refuses it exactly as before and names the field. So
a record is accepted by the fast path only if the checked one accepts it, and decodes to the same
record (tested on random and malformed inputs). :func:`evolve_task` is ``dataclasses.replace`` for a
task without its per-call field walk. No I/O.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any

from ..errors import ConfigError
from ..model import DesiredState, Task, TaskHealth, TaskState
from ..model.records import restart_policy_of

__all__ = ["evolve_task", "report_fields", "task_from_plain"]

_TASK_STATES: dict[Any, TaskState] = {s.value: s for s in TaskState}
_DESIRED: dict[Any, DesiredState] = {s.value: s for s in DesiredState}
_HEALTH: dict[Any, TaskHealth] = {s.value: s for s in TaskHealth}
_TEXT = ("error", "container_id", "address", "message", "template_hash")


def _number(value: Any) -> float | None:
    """A float for an int or float (never a bool), else None."""
    kind = type(value)
    if kind is float:
        return value
    if kind is int:
        return float(value)
    return None


def _count(value: Any) -> int | None:
    """A non-negative int (never a bool), else None."""
    return value if type(value) is int and value >= 0 else None


def task_from_plain(d: Any) -> Task | None:
    """The task of a ``put_tasks`` item as ``fields.task_from_wire`` decodes it, or None when any field
    is not in the encoder's exact form (then the checked decoder decides)."""
    if type(d) is not dict:
        return None
    get = d.get
    task_id, service_id, slot = get("task_id"), get("service_id"), get("slot")
    if type(task_id) is not str or not task_id or type(service_id) is not str or not service_id:
        return None
    if type(slot) is not int or slot < 0:
        return None
    node_id, move_to = get("node_id"), get("move_to")
    if (node_id is not None and type(node_id) is not str) or (
        move_to is not None and type(move_to) is not str
    ):
        return None
    desired = _DESIRED.get(_text_or(get("desired_state"), "running"))
    state = _TASK_STATES.get(_text_or(get("state"), "new"))
    health = _HEALTH.get(_text_or(get("health"), ""))
    if desired is None or state is None or health is None:
        return None
    texts: dict[str, str] = {}
    for name in _TEXT:
        text = _text_or(get(name), "")
        if text is None:
            return None
        texts[name] = text
    state_at = _number(get("state_at", 0.0))
    created_at, started_at, move_at = (
        _number(get(k) or 0.0) for k in ("created_at", "started_at", "move_at")
    )
    grace = _number(get("stop_grace_s", 10.0))
    if state_at is None or created_at is None or started_at is None or move_at is None:
        return None
    if grace is None or grace < 0:
        return None
    spec_version, job_iteration = _count(get("spec_version", 0)), _count(get("job_iteration", 0))
    exit_code = get("exit_code")
    if (
        spec_version is None
        or job_iteration is None
        or (exit_code is not None and type(exit_code) is not int)
    ):
        return None
    history = get("restart_history") or ()
    if type(history) is not list and type(history) is not tuple:
        return None
    restarts: list[float] = []
    for x in history:
        when = _number(x)
        if when is None:
            return None
        restarts.append(when)
    policy = get("restart_policy")
    restart_policy = None
    if policy is not None:
        if type(policy) is not dict:
            return None
        try:
            restart_policy = restart_policy_of(policy)
        except ConfigError:
            return None  # the checked decoder names the field
    return Task(
        task_id=task_id,
        service_id=service_id,
        slot=slot,
        node_id=node_id,
        desired_state=desired,
        state=state,
        state_at=state_at,
        spec_version=spec_version,
        created_at=created_at,
        started_at=started_at,
        health=health,
        exit_code=exit_code,
        restart_history=tuple(restarts),
        stop_grace_s=grace,
        move_to=move_to,
        move_at=move_at,
        job_iteration=job_iteration,
        restart_policy=restart_policy,
        error=texts["error"],
        container_id=texts["container_id"],
        address=texts["address"],
        message=texts["message"],
        template_hash=texts["template_hash"],
    )


def _text_or(value: Any, default: str) -> str | None:
    """``default`` for None, the value for a str, None for anything else."""
    if value is None:
        return default
    return value if type(value) is str else None


_REPORT_TEXT = ("error", "container_id", "address", "message")


def report_fields(report: Any) -> dict[str, Any] | None:
    """The keyword arguments ``TaskStatusReport.from_wire`` builds a report from, or None when any field
    is not in the encoder's exact form (then the checked decoder decides)."""
    if type(report) is not dict:
        return None
    task_id = report.get("task_id")
    if type(task_id) is not str or not task_id:
        return None
    out: dict[str, Any] = {"task_id": task_id}
    if "state" in report:
        state = report["state"]
        out["state"] = _TASK_STATES.get(state) if type(state) is str else None
        if out["state"] is None:
            return None
    if "state_at" in report:
        out["state_at"] = _number(report["state_at"])
        if out["state_at"] is None:
            return None
    if "health" in report:
        health = report["health"]
        out["health"] = _HEALTH.get(health) if type(health) is str else None
        if out["health"] is None:
            return None
    for name in _REPORT_TEXT:
        if name in report:
            if type(report[name]) is not str:
                return None
            out[name] = report[name]
    if "exit_code" in report:
        exit_code = report["exit_code"]
        if exit_code is not None and type(exit_code) is not int:
            return None
        out["exit_code"], out["reports_exit_code"] = exit_code, True
    return out


_TASK_FIELDS = tuple(Task.__dataclass_fields__)
_TASK_INDEX = {name: i for i, name in enumerate(_TASK_FIELDS)}
_task_values = attrgetter(*_TASK_FIELDS)


def evolve_task(task: Task, changes: dict[str, Any]) -> Task:
    """``dataclasses.replace(task, **changes)`` at half the cost (the FSM's per-task write)."""
    values = list(_task_values(task))
    for name, value in changes.items():
        values[_TASK_INDEX[name]] = value
    return Task(*values)
