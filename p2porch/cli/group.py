"""The task-group flags of ``service create/update`` (``--sidecar``, ``--init-container``) and how a group's
containers print in ``service ps``/``inspect`` (shell; the group is validated by ``model.group``, see
docs/task-groups.md)."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import P2POrchError

__all__ = ["GROUP_FLAGS", "add_group_flags", "group_changes", "group_lines", "group_spec", "group_task_rows"]

#: spec field -> the flag a user gave
GROUP_FLAGS = {"sidecars": "--sidecar", "init_containers": "--init-container"}
_CSV = (
    'name=N,image=I[,command="CMD ..."][,env=K=V][,publish=P][,health-cmd="..."]'
    "[,reserve-cpu=C][,reserve-memory=M]"
)


def add_group_flags(p: argparse.ArgumentParser, *, default: Any, create: bool) -> None:
    """``--sidecar`` and ``--init-container`` (repeatable; on update they replace the whole list)."""
    p.add_argument(
        "--sidecar",
        action="append",
        default=default,
        metavar=_CSV,
        help="a container run beside the main one in each task: same address and localhost (repeatable)",
    )
    p.add_argument(
        "--init-container",
        action="append",
        default=default,
        metavar=_CSV.replace("[,publish=P]", "").replace('[,health-cmd="..."]', ""),
        help="a container run to completion before the main one starts, in the order given (repeatable)",
    )
    if not create:
        p.add_argument("--clear-sidecars", action="store_true", default=default, help="drop every sidecar")
        p.add_argument(
            "--clear-init-containers", action="store_true", default=default, help="drop every init container"
        )


def group_changes(given: dict[str, Any]) -> dict[str, Any]:
    """The spec fields the group flags set (the CSV strings go to ``ServiceSpec.from_dict`` as they are)."""
    out: dict[str, Any] = {}
    if given.get("clear_sidecars"):
        out["sidecars"] = []
    if given.get("clear_init_containers"):
        out["init_containers"] = []
    if "sidecar" in given:
        out["sidecars"] = list(given["sidecar"])
    if "init_container" in given:
        out["init_containers"] = list(given["init_container"])
    return out


def group_spec(client: Any, service: str) -> dict[str, Any]:
    """The service's spec for ``group_task_rows`` ({} when it cannot be read: the rows stay as they are)."""
    try:
        spec: dict[str, Any] = client.get(f"/services/{service}")["spec"]
        return spec
    except P2POrchError:
        return {}


def _members(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [("init", c) for c in spec.get("init_containers") or ()] + [
        ("sidecar", c) for c in spec.get("sidecars") or ()
    ]


def group_lines(spec: dict[str, Any]) -> list[str]:
    """``service inspect`` lines: one per container of the group (none for a one-container service)."""
    members = _members(spec)
    if not members:
        return []
    lines = [f"Containers: main ({spec['image']})"]
    for kind, c in members:
        command = f": {' '.join(c['command'])}" if c.get("command") else ""
        ports = ", ".join(str(p.get("target")) for p in c.get("publish") or ())
        lines.append(f"  {kind} {c['name']} ({c['image']}{command})" + (f" ports {ports}" if ports else ""))
    return lines


def group_task_rows(spec: dict[str, Any], rows: list[list[Any]]) -> list[list[Any]]:
    """``service ps`` rows with, under each task, one ``\\_ NAME (kind, image)`` row per other container."""
    members = _members(spec)
    if not members:
        return rows
    out: list[list[Any]] = []
    for row in rows:
        out.append(row)
        for kind, c in members:
            out.append(["", f" \\_ {c['name']} ({kind}, {c['image']})", *([""] * (len(row) - 2))])
    return out
