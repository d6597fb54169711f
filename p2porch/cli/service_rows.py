"""How services and tasks print as table rows (``service ls``, ``service ps``, ``stack ps``)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from .docker_values import current_state, ingress_ports, pretty, task_error
from .goformat import listing
from .stats import usage_cells

# the columns of task_row: `service ps` and `stack ps` print the same table
SERVICE_COLUMNS = ["id", "name", "mode", "replicas", "image", "ports", "pending"]
TASK_COLUMNS = ["id", "name", "node", "desired", "state", "since", "cpu", "mem", "error / explanation"]
#: the fields a task list's ``--format`` takes beside its columns (Docker's ``{{.Image}}``, ``{{.Ports}}``),
#: and Docker's values of two columns (``{{.DesiredState}}`` ``Running``, ``{{.CurrentState}}`` ``Running 8
#: seconds ago``: docker_values.py)
TASK_EXTRA = ("image", "ports", "desired_state", "current_state", "error")
#: Docker's value of a ``service ls`` column for ``--format``: ``{{.Ports}}``, the ingress ports only
SERVICE_EXTRA = ("ports",)
#: the fields of a row's ``{{json .}}``: docker/cli's service row's, and its task row's
SERVICE_JSON = ("id", "name", "mode", "replicas", "image", "ports")
TASK_JSON = ("id", "name", "image", "node", "desired_state", "current_state", "error", "ports")


def job_progress_text(job: dict[str, Any]) -> str:
    """A job's REPLICAS as Docker's ``service ls`` shows it: tasks running / tasks wanted at once, then
    the execution's progress (``2/2 (1/6 completed)``, ``0/3 (3/3 completed)``); slots that gave up add
    ``, 1 failed``; a cron job's also says its next tick (``0/1 (1/1 completed, next 12:05:00 UTC)``,
    ``0/0 (next ...)`` before its first), as ``kubectl get cronjob`` shows its schedule."""
    next_tick = job.get("next_tick") if job.get("schedule") else None
    when = f"next {time.strftime('%H:%M:%S', time.gmtime(next_tick))} UTC" if next_tick else ""
    if job["iteration"] == 0 and job.get("schedule"):
        return f"0/0 ({when})"
    extras = [f"{job['completed']}/{job['total']} completed"]
    if job["failed"]:
        extras.append(f"{job['failed']} failed")
    if when:
        extras.append(when)
    return f"{job.get('tasks_running', 0)}/{job.get('tasks_desired', 0)} ({', '.join(extras)})"


FAILING_ERROR_CHARS = 80  # a task's error as service ls / status quote it; service ps shows it whole


def failing_text(s: dict[str, Any]) -> str:
    """Why a service's tasks fail, short: ``3 failed: <latest error> (service ps NAME)``; "" when none."""
    failing = s.get("failing")
    if not failing:
        return ""
    error = " ".join(str(failing.get("error") or "").split())
    if len(error) > FAILING_ERROR_CHARS:
        error = error[: FAILING_ERROR_CHARS - 3] + "..."
    return f"{failing['count']} failed: {error} (service ps {s['name']})"


def ports_text(spec: dict[str, Any]) -> str:
    """The published ports as ``docker service ls`` shows them: ``*:8080->80/tcp`` on every node
    (ingress, also a port the swarm assigned: pass the view's ``endpoint_ports`` as ``publish``); a
    host-mode port ``8081->80/tcp (host)``, with its address when it binds one."""
    cells = []
    for p in spec.get("publish") or ():
        if p.get("published") is None:
            continue  # Docker picks the host port on each task's node: nothing to show cluster-wide
        mode = p.get("mode") or ("host" if p.get("host_ip") else "ingress")
        where = "*:" if mode == "ingress" else (f"{p['host_ip']}:" if p.get("host_ip") else "")
        cell = f"{where}{p['published']}->{p['target']}/{p.get('protocol') or 'tcp'}"
        cells.append(cell if mode == "ingress" else f"{cell} (host)")
    return ",".join(cells)


def service_row(s: dict[str, Any]) -> list[Any]:
    """One ``service ls`` row: id, name, mode, replicas (or a job's progress), image, published ports, and
    why tasks are missing: pending reasons, then failing tasks' latest error."""
    reasons = [f"{p['count']}: {p['explanation']}" for p in s["pending"]]
    pending = "; ".join([*reasons, failing_text(s)] if s.get("failing") else reasons)
    replicas = f"{s['running']}/{s['desired']}" + (" (update paused)" if s.get("update_paused") else "")
    if s.get("job"):
        replicas = job_progress_text(s["job"])
    return [
        s["id"][:12],
        s["name"],
        s["mode"],
        replicas,
        s["image"],
        ports_text({"publish": s["endpoint_ports"]} if "endpoint_ports" in s else s.get("spec") or {}),
        pending,
    ]


def service_listing(args: argparse.Namespace, services: list[dict[str, Any]]) -> str:
    """``service ls`` and ``stack services``: the table, or ``--format`` over each row (Docker's
    ``{{.Ports}}``: ``SERVICE_EXTRA``)."""
    rows, extras = [service_row(s) for s in services], [service_extra(s) for s in services]
    return listing(args, SERVICE_COLUMNS, rows, SERVICE_EXTRA, extras, docker_json=SERVICE_JSON)


def task_ports_text(t: dict[str, Any]) -> str:
    """A task's host-mode published ports as Docker's ``service ps`` PORTS shows them (``*:8090->80/tcp``,
    the address instead of ``*`` when the port binds one); "" for a task that publishes none."""
    return ",".join(
        f"{p.get('host_ip') or '*'}:{p['published']}->{p['target']}/{p.get('protocol') or 'tcp'}"
        for p in t.get("ports") or ()
    )


def task_extra(t: dict[str, Any], no_trunc: bool = False) -> tuple[str, str, str, str, str]:
    """A task's ``TASK_EXTRA`` values: its image, its host ports, its states and its error as Docker's
    (``"No such image: redis@sha256:6…"``: docker_values.task_error)."""
    return (
        t.get("image", ""),
        task_ports_text(t),
        pretty(t["desired_state"]),
        current_state(t["state"], state_since(t)),
        task_error(str(t.get("error") or t.get("message") or ""), no_trunc),
    )


def service_extra(s: dict[str, Any]) -> tuple[str]:
    """A service's ``SERVICE_EXTRA`` values: Docker's ``{{.Ports}}`` (``*:8080->80/tcp, ...``)."""
    return (
        ingress_ports(
            s["endpoint_ports"] if "endpoint_ports" in s else (s.get("spec") or {}).get("publish") or ()
        ),
    )


def ago(ts: float, now: float | None = None) -> str:
    """``42s ago`` / ``3m05s ago`` / ``5h02m ago`` / ``3d ago`` since a wall-clock time (0: unknown, 0s)."""
    seconds = max(0, int((time.time() if now is None else now) - ts)) if ts else 0
    if seconds >= 86400:
        return f"{seconds // 86400}d ago"
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m ago"
    return f"{seconds // 60}m{seconds % 60:02d}s ago" if seconds >= 60 else f"{seconds}s ago"


def state_since(t: dict[str, Any]) -> float:
    """When a task entered the state ``service ps`` shows: ``state_at``, except for a task told to stop
    that still runs, whose ``state_at`` is the stop order's time (a stop-first wait counts from it): it
    has been running since it started, as Docker shows a task being shut down (``Shutdown`` /
    ``Running 5 minutes ago``)."""
    if t["desired_state"] != "running" and t["state"] == "running" and t.get("started_at"):
        return float(t["started_at"])
    return float(t["state_at"])


def task_row(t: dict[str, Any], *, no_trunc: bool = False) -> list[Any]:
    """One ``service ps`` row, with the task's live CPU and memory when the node reported them; the task
    id cut to 12 characters unless ``no_trunc``. A job's task says which execution it belongs to (a cron
    job's ``tick.1`` of each tick, a job's slot after ``update --force``: otherwise alike)."""
    state = t["state"] + (f" ({t['health']})" if t.get("health") else "")
    why = str(t["error"] or t["message"] or "")
    if t.get("job_iteration"):
        why = f"{why} (execution {t['job_iteration']})" if why else f"execution {t['job_iteration']}"
    return [
        t["id"] if no_trunc else t["id"][:12],
        t["name"],
        t["node"] or "-",
        t["desired_state"],
        state,
        ago(state_since(t)),
        *usage_cells(t.get("usage")),
        why,
    ]
