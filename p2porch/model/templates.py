"""Swarm's service templates: ``{{.Node.Hostname}}``, ``{{.Task.Slot}}``... in a task's environment values,
host name and mount sources, expanded per task as ``docker service create`` does (pure).

Owns the placeholder names and their expansion from one task's facts; an unknown placeholder is left as
written. Never does I/O; the agent calls :func:`expand` when it creates a task's container.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PLACEHOLDER_RE = re.compile(r"\{\{\s*\.([A-Za-z]+(?:\.[A-Za-z]+)*)\s*\}\}")


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
    return _PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), text)
