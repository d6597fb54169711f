"""Task logs across nodes: this node's from its executor, another node's over the join port (shell)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from ..errors import ConflictError
from ..membership.join_service import request_stream
from ..model import Node

if TYPE_CHECKING:
    from ..membership.manager import ClusterManager

__all__ = ["LogOps"]


class LogOps:
    """Streams of ``{"task_id", "line"}`` from the agents' containers; never writes state."""

    def __init__(self, cluster: ClusterManager) -> None:
        self.cluster = cluster

    @asynccontextmanager
    async def local_logs(self, request: dict[str, Any]) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """This node's log lines of one service (``service``, ``follow``, ``tail``, ``container``,
        ``since``, ``timestamps`` in ``request``), or of one of its tasks (``task_id``: that task's
        container alone); an older node ignores ``container`` and sends the main containers' lines, and
        ignores ``since``/``timestamps``/``task_id``."""
        executor = self.cluster.board.executor
        if executor is None:
            raise ConflictError("the agent is not running on this node", field="agent")
        tail, since, task_id = request.get("tail"), request.get("since"), request.get("task_id")
        async with executor.open_logs(
            [task_id] if isinstance(task_id, str) and task_id else None,
            service_name=str(request.get("service", "")),
            follow=bool(request.get("follow")),
            tail=int(tail) if isinstance(tail, int) else None,
            container=str(request.get("container") or ""),
            since=float(since) if isinstance(since, int | float) and since > 0 else None,
            timestamps=bool(request.get("timestamps")),
        ) as channel:

            async def lines() -> AsyncIterator[dict[str, Any]]:
                async for task_id, line in channel:
                    yield {"task_id": task_id, "line": line}

            yield lines()

    @asynccontextmanager
    async def node_logs(
        self, node: Node, request: dict[str, Any]
    ) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """Log lines of one node's tasks: local from the executor, remote over the join port."""
        local = self.cluster.local
        if local is not None and node.node_id == local.node_id:
            async with self.local_logs(request) as lines:
                yield lines
            return
        if local is None:
            raise ConflictError("this node is not part of a cluster", field="cluster")
        yield request_stream(node.join_target, self.cluster.join_port, local.keys, request)
