"""Which spec a task was made from, and what its spec gives ``service ps`` (pure): the image and the
host-mode ports. Reads a task and its service only; never the cluster state or the engine."""

from __future__ import annotations

from typing import Any

from ..model import Service, ServiceSpec, Task

__all__ = ["task_host_ports", "task_image", "task_spec"]


def task_spec(task: Task, service: Service) -> ServiceSpec | None:
    """The spec ``task`` was made from: its service's current spec or, for a task of the spec before the
    last update, the previous one; None for an older spec's task."""
    for spec in (service.spec, service.previous_spec):
        if spec is not None and spec.template_hash() == task.template_hash:
            return spec
    return None


def task_image(task: Task, service: Service) -> str:
    """The image ``task`` was made from (Docker's ``service ps`` IMAGE); empty for an older spec's task."""
    spec = task_spec(task, service)
    return spec.image if spec is not None else ""


def task_host_ports(task: Task, service: Service) -> list[dict[str, Any]]:
    """The host-mode ports ``task``'s spec publishes on its node (Docker's task ``PortStatus``, its
    ``service ps`` PORTS); ingress ports are the service's, a host port the engine picks is unknown here."""
    spec = task_spec(task, service)
    ports = spec.all_publish if spec is not None else ()
    return [p.to_dict() for p in ports if not p.ingress and p.published is not None]
