"""The interface the agent's worker drives a container engine through (pure: typing only).

An executor owns one engine connection. Its methods never raise for a task's own failure (a missing
image, a bad command): those come back as ``StartOutcome.error``. They raise ``ExecutorError`` only
when the engine itself cannot be reached or answers nonsense.
"""

from __future__ import annotations

from collections.abc import Collection
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from .model import ContainerEvent, NodeCapacity, ObservedContainer, TaskAssignment
from .plan import StartOutcome


class Executor(Protocol):
    async def list_containers(self) -> list[ObservedContainer]:
        """Every p2porch-managed container on the engine, running or not."""
        ...

    async def start(self, assignment: TaskAssignment, container_id: str = "") -> StartOutcome:
        """Create (unless ``container_id`` is given) and start the task's container."""
        ...

    async def remove(self, container_id: str, stop_grace_s: float) -> None:
        """Stop (SIGTERM, SIGKILL after the grace) and remove a container; gone already is fine."""
        ...

    async def capacity(self) -> NodeCapacity:
        """CPUs and memory of the engine's host."""
        ...

    def open_events(self) -> AbstractAsyncContextManager[Any]:
        """A receive channel of ``ContainerEvent`` for managed containers (async iterable)."""
        ...

    def open_logs(
        self,
        task_ids: Collection[str] | None = None,
        *,
        service_name: str = "",
        follow: bool = False,
        tail: int | None = None,
        container: str = "",
        since: float | None = None,
        timestamps: bool = False,
    ) -> AbstractAsyncContextManager[Any]:
        """A receive channel of ``(task_id, line)`` from the matching containers (async iterable);
        ``container`` names one container of a task group ("" = the main one); ``since`` (epoch
        seconds) drops older lines, ``timestamps`` prefixes each with the engine's RFC 3339 time."""
        ...


__all__ = ["ContainerEvent", "Executor"]
