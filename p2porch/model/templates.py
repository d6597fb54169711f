"""Swarm's service templates: ``{{.Node.Hostname}}``, ``{{.Task.Slot}}``... in a task's environment values,
host name and mount sources, expanded per task as ``docker service create`` does (pure).

Owns the placeholder names and their expansion from one task's facts; a string constant
(``{{`...`}}``, ``{{"..."}}``) is printed as written, as Go's templates print it; an unknown placeholder
is left as written. Never does I/O; the agent calls :func:`expand` when it creates a task's container.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

#: a field (``{{.Task.Slot}}``) or a string constant (``{{`{{.Swarm.NodeAddr}}`}}``, ``{{"x"}}``), which
#: Go's templates print as written: how a file passes ``{{`` through Swarm to the container
_PLACEHOLDER_RE = re.compile(
    r"\{\{\s*(?:\.(?P<field>[A-Za-z]+(?:\.[A-Za-z]+)*)|`(?P<raw>[^`]*)`|\"(?P<quoted>(?:[^\"\\]|\\.)*)\")\s*\}\}"
)


@dataclass(frozen=True, slots=True)
class TemplateContext:
    """The facts of one task that templates may name."""

    service_id: str
    service_name: str
    node_id: str
    node_hostname: str
    task_id: str
    task_slot: int
    platform_os: str = "linux"
    platform_arch: str = "x86_64"

    def values(self) -> dict[str, str]:
        return {
            "Service.ID": self.service_id,
            "Service.Name": self.service_name,
            "Node.ID": self.node_id,
            "Node.Hostname": self.node_hostname,
            "Node.Platform.OS": self.platform_os,
            "Node.Platform.Architecture": self.platform_arch,
            "Task.ID": self.task_id,
            "Task.Name": f"{self.service_name}.{self.task_slot}.{self.task_id}",
            "Task.Slot": str(self.task_slot),
        }


#: stand-in values to validate a templated field before any task exists (a host name, a path)
SAMPLE = TemplateContext("svcid", "service", "node", "node", "taskid", 1)


def has_templates(text: str) -> bool:
    return "{{" in text and _PLACEHOLDER_RE.search(text) is not None


def expand(text: str, context: TemplateContext) -> str:
    """``text`` with every known placeholder replaced by the task's value."""
    if "{{" not in text:
        return text
    values = context.values()

    def one(m: re.Match[str]) -> str:
        if m.group("field") is not None:
            return values.get(m.group("field"), m.group(0))
        if m.group("raw") is not None:
            return m.group("raw")
        try:  # Go's interpreted string: JSON's escapes are a subset of it
            return str(json.loads(f'"{m.group("quoted")}"'))
        except ValueError:
            return m.group(0)

    return _PLACEHOLDER_RE.sub(one, text)
