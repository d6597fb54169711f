"""Typed values inside Raft commands and the checks that build them from decoded msgpack (pure).

Every check raises :class:`~p2porch.errors.ConfigError` naming the field; nothing else. The node and
task decoders build the model's records from their plain command form; ``TaskPut``/``TaskRemove`` are
the items of ``PutTasks`` and ``TaskStatusReport`` those of ``ReportTaskStates``. No I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from ..errors import ConfigError
from ..model import Availability, DesiredState, Node, NodeRole, NodeStatus, Task, TaskHealth, TaskState
from ..model.records import JobStatus, restart_policy_of
from .task_fast import report_fields, task_from_plain

E = TypeVar("E", bound=StrEnum)


def invalid(message: str, field: str | None = None) -> ConfigError:
    return ConfigError(message, field=field)


def get(body: Mapping[str, Any], name: str, kind: type | tuple[type, ...], *, optional: bool = False) -> Any:
    """``body[name]`` of type ``kind`` (bool is never an int here); None when optional and absent."""
    if name not in body or body[name] is None:
        if optional:
            return None
        raise invalid(f"missing field {name!r}", name)
    value = body[name]
    if isinstance(value, bool) and kind is not bool:
        raise invalid(f"field {name!r} must be {kind}, not bool", name)
    if not isinstance(value, kind):
        raise invalid(f"field {name!r} has type {type(value).__name__}", name)
    return value


def text(body: Mapping[str, Any], name: str) -> str:
    """A required non-empty string."""
    value = get(body, name, str)
    if not value:
        raise invalid(f"field {name!r} is empty", name)
    return str(value)


def optional_text(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise invalid(f"{name} must be a string or nil", name)
    return value


def labels(value: Any, name: str) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise invalid(f"{name} must map strings to strings", name)
    return dict(value)


def port(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
        raise invalid(f"{name} must be a port number", name)
    return value


def port_or_zero(value: Any, name: str) -> int:
    """A port number, or 0 for "the cluster default" (an advertised port behind a NAT)."""
    return 0 if value == 0 and not isinstance(value, bool) else port(value, name)


def non_negative(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise invalid(f"{name} must be a non-negative integer", name)
    return value


def number(value: Any, name: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise invalid(f"{name} must be a number", name)
    return float(value)


def non_negative_number(value: Any, name: str) -> float:
    """A finite number >= 0 (a time)."""
    found = number(value, name)
    if not math.isfinite(found) or found < 0:
        raise invalid(f"{name} must be a non-negative number", name)
    return found


def bounded_text(value: Any, name: str, limit: int) -> str:
    """A string (maybe empty) of at most ``limit`` characters."""
    if not isinstance(value, str) or len(value) > limit:
        raise invalid(f"{name} must be a string of at most {limit} characters", name)
    return value


MAX_KEY_TEXT = 256  # base64 of a public key (44) or a key envelope (108), with room to spare


def key_text(value: Any, name: str) -> str:
    """A base64 key or envelope (checked for shape only: the FSM never opens keys)."""
    if not isinstance(value, str) or len(value) > MAX_KEY_TEXT:
        raise invalid(f"{name} must be a base64 string of at most {MAX_KEY_TEXT} characters", name)
    return value


def version_or_none(body: Mapping[str, Any], name: str) -> int | None:
    value: int | None = get(body, name, int, optional=True)
    return value


def choice(value: Any, name: str, enum: type[E]) -> E:
    try:
        return enum(value)
    except ValueError:
        raise invalid(f"{name} must be one of {', '.join(e.value for e in enum)}", name) from None


def node_from_wire(d: Any) -> Node:
    """An ``add_node`` record; ``joined_at`` and ``version`` are the FSM's to set."""
    if not isinstance(d, Mapping):
        raise invalid("node must be a map", "node")
    return Node(
        node_id=text(d, "node_id"),
        name=text(d, "name"),
        addr=text(d, "addr"),
        raft_port=port(d.get("raft_port"), "raft_port"),
        gossip_port=port(d.get("gossip_port"), "gossip_port"),
        role=choice(d.get("role", "replica"), "role", NodeRole),
        availability=choice(d.get("availability", "active"), "availability", Availability),
        labels=labels(d.get("labels", {}), "labels"),
        cpu_nanos=non_negative(d.get("cpu_nanos", 0), "cpu_nanos"),
        memory_bytes=non_negative(d.get("memory_bytes", 0), "memory_bytes"),
        status=choice(d.get("status", "ready"), "status", NodeStatus),
        key_pub=key_text(d.get("key_pub", ""), "key_pub"),
        join_port=port_or_zero(d.get("join_port", 0), "join_port"),
        vxlan_port=port_or_zero(d.get("vxlan_port", 0), "vxlan_port"),
    )


def _task_str(d: Mapping[str, Any], name: str, default: str = "") -> str:
    value = d.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise invalid(f"{name} must be a string", name)
    return value


def task_from_wire(d: Any) -> Task:
    """A ``put_tasks`` record (its ``version`` is the FSM's to set): the one-pass decoder of
    ``task_fast`` for the encoder's exact form, else :func:`checked_task` (the same record, or the
    error naming the field)."""
    fast = task_from_plain(d)
    return checked_task(d) if fast is None else fast


def checked_task(d: Any) -> Task:
    """A ``put_tasks`` record, every field checked on its own."""
    if not isinstance(d, Mapping):
        raise invalid("task must be a map", "task")
    slot = d.get("slot")
    if not isinstance(slot, int) or isinstance(slot, bool) or slot < 0:
        raise invalid("slot must be a non-negative integer", "slot")
    grace = number(d.get("stop_grace_s", 10.0), "stop_grace_s")
    if grace < 0:
        raise invalid("stop_grace_s must be a non-negative number", "stop_grace_s")
    spec_version = d.get("spec_version", 0)
    if not isinstance(spec_version, int) or isinstance(spec_version, bool) or spec_version < 0:
        raise invalid("spec_version must be a non-negative integer", "spec_version")
    exit_code = d.get("exit_code")
    if exit_code is not None and (not isinstance(exit_code, int) or isinstance(exit_code, bool)):
        raise invalid("exit_code must be an integer or nil", "exit_code")
    history = d.get("restart_history") or ()
    if not isinstance(history, list | tuple) or not all(
        isinstance(x, int | float) and not isinstance(x, bool) for x in history
    ):
        raise invalid("restart_history must be a list of numbers", "restart_history")
    job_iteration = non_negative(d.get("job_iteration", 0), "job_iteration")
    policy = d.get("restart_policy")
    if policy is not None and not isinstance(policy, Mapping):
        raise invalid("restart_policy must be a map or nil", "restart_policy")
    return Task(
        task_id=text(d, "task_id"),
        service_id=text(d, "service_id"),
        slot=slot,
        node_id=optional_text(d, "node_id"),
        move_to=optional_text(d, "move_to"),
        desired_state=choice(_task_str(d, "desired_state", "running"), "desired_state", DesiredState),
        state=choice(_task_str(d, "state", "new"), "state", TaskState),
        state_at=number(d.get("state_at", 0.0), "state_at"),
        error=_task_str(d, "error"),
        container_id=_task_str(d, "container_id"),
        address=_task_str(d, "address"),
        message=_task_str(d, "message"),
        spec_version=spec_version,
        template_hash=_task_str(d, "template_hash"),
        created_at=number(d.get("created_at") or 0.0, "created_at"),
        started_at=number(d.get("started_at") or 0.0, "started_at"),
        move_at=number(d.get("move_at") or 0.0, "move_at"),
        health=choice(_task_str(d, "health"), "health", TaskHealth),
        exit_code=exit_code,
        restart_history=tuple(float(x) for x in history),
        stop_grace_s=grace,
        job_iteration=job_iteration,
        restart_policy=None if policy is None else restart_policy_of(policy),
    )


@dataclass(frozen=True, slots=True)
class TaskPut:
    """Create (``task_version=0``), update (its current version) or blindly write (None) a task."""

    task: Task
    task_version: int | None

    @property
    def task_id(self) -> str:
        return self.task.task_id

    def to_wire(self) -> dict[str, Any]:
        return {"op": "put", "task": self.task.to_dict(), "task_version": self.task_version}


@dataclass(frozen=True, slots=True)
class TaskRemove:
    """Forget a task record (conditional on ``task_version`` unless None)."""

    task_id: str
    task_version: int | None

    def to_wire(self) -> dict[str, Any]:
        return {"op": "remove", "task_id": self.task_id, "task_version": self.task_version}


TaskItem = TaskPut | TaskRemove


def job_status(value: Any) -> JobStatus:
    """A service's job bookkeeping from a command body (absent: never written)."""
    if value is None:
        return JobStatus()
    if not isinstance(value, Mapping):
        raise invalid("job must be a map", "job")
    iteration = value.get("iteration")
    return JobStatus(
        iteration=None if iteration is None else non_negative(iteration, "job.iteration"),
        started_at=number(value.get("started_at") or 0.0, "job.started_at"),
        cron_last_tick=number(value.get("cron_last_tick") or 0.0, "job.cron_last_tick"),
        cron_missed=non_negative(value.get("cron_missed", 0), "job.cron_missed"),
        cron_skipped=non_negative(value.get("cron_skipped", 0), "job.cron_skipped"),
    )


def task_item(item: Any, i: int) -> TaskItem:
    if not isinstance(item, Mapping):
        raise invalid(f"items[{i}] must be a map", "items")
    expected = item.get("task_version")
    if expected is not None and (not isinstance(expected, int) or isinstance(expected, bool)):
        raise invalid(f"items[{i}].task_version must be an integer", "task_version")
    op = item.get("op")
    if op == "put":
        return TaskPut(task_from_wire(item.get("task")), expected)
    if op == "remove":
        return TaskRemove(text(item, "task_id"), expected)
    raise invalid(f"items[{i}].op must be put or remove", "op")


_REPORT_TEXT = ("error", "container_id", "address", "message")


@dataclass(frozen=True, slots=True)
class TaskStatusReport:
    """What an agent saw of one task; None fields are not reported (``exit_code`` counts when
    ``reports_exit_code``, where None then means the container has no exit code)."""

    task_id: str
    state: TaskState | None = None
    state_at: float | None = None
    error: str | None = None
    container_id: str | None = None
    address: str | None = None
    message: str | None = None
    health: TaskHealth | None = None
    exit_code: int | None = None
    reports_exit_code: bool = False

    def updates(self) -> dict[str, Any]:
        """The task fields this report sets."""
        out = {
            n: getattr(self, n)
            for n in ("state", "state_at", *_REPORT_TEXT, "health")
            if getattr(self, n) is not None
        }
        if self.reports_exit_code:
            out["exit_code"] = self.exit_code
        return out

    def to_wire(self) -> dict[str, Any]:
        return {"task_id": self.task_id, **self.updates()}

    @classmethod
    def from_wire(cls, report: Any, i: int) -> TaskStatusReport:
        """The report at ``reports[i]``: the encoder's exact form in one pass (``task_fast``), else
        :meth:`checked` (the same report, or the error naming the field)."""
        fast = report_fields(report)
        return cls.checked(report, i) if fast is None else cls(**fast)

    @classmethod
    def checked(cls, report: Any, i: int) -> TaskStatusReport:
        """The report at ``reports[i]``, every field checked on its own."""
        if not isinstance(report, Mapping):
            raise invalid(f"reports[{i}] must be a map", "reports")
        for name in ("state", *_REPORT_TEXT, "health"):
            if name in report and not isinstance(report[name], str):
                raise invalid(f"reports[{i}].{name} must be a string", name)
        exit_code = report.get("exit_code")
        if exit_code is not None and (not isinstance(exit_code, int) or isinstance(exit_code, bool)):
            raise invalid(f"reports[{i}].exit_code must be an integer or nil", "exit_code")
        state_at = report.get("state_at")
        return cls(
            task_id=text(report, "task_id"),
            state=choice(report["state"], "state", TaskState) if "state" in report else None,
            state_at=None if "state_at" not in report else number(state_at, f"reports[{i}].state_at"),
            health=choice(report["health"], "health", TaskHealth) if "health" in report else None,
            exit_code=exit_code,
            reports_exit_code="exit_code" in report,
            **{n: report[n] for n in _REPORT_TEXT if n in report},
        )
