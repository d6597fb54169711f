"""What the placed tasks hold on each node, kept up to date task by task (pure).

``NodeUsage`` is the running sum behind :func:`~.nodeinfo.build_node_infos`: reserved CPU and memory,
task counts (in all and per service name) and host ports of every :class:`PlacedTask` added and not
removed. The leader's incremental round keeps one across rounds and swaps a changed service's tasks in
and out, instead of re-reading every task of the cluster each round; :meth:`infos` then equals
``build_node_infos(nodes, placed)`` for the same placed tasks (tested). It never reads cluster state.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable
from typing import TypeVar

from ..model import Node
from .nodeinfo import NodeInfo, PlacedTask

__all__ = ["NodeUsage"]

K = TypeVar("K", bound=Hashable)


class _Held:
    """The sums of one node."""

    __slots__ = ("cpu_nanos", "memory_bytes", "ports", "services", "tasks")

    def __init__(self) -> None:
        self.cpu_nanos = 0
        self.memory_bytes = 0
        self.tasks = 0
        self.services: Counter[str] = Counter()
        self.ports: Counter[tuple[str, int]] = Counter()  # a port counted per task holding it


class NodeUsage:
    """Per node id, the sums of the placed tasks added to it (nodes unknown to :meth:`infos` are kept
    but not shown, as ``build_node_infos`` ignores tasks on unknown nodes)."""

    def __init__(self, placed: Iterable[PlacedTask] = ()) -> None:
        self._held: dict[str, _Held] = {}
        self.add(placed)

    def add(self, placed: Iterable[PlacedTask]) -> None:
        for task in placed:
            held = self._held.get(task.node_id)
            if held is None:
                held = self._held[task.node_id] = _Held()
            held.cpu_nanos += task.cpu_nanos
            held.memory_bytes += task.memory_bytes
            held.tasks += 1
            held.services[task.service] += 1
            for port in task.host_ports:
                held.ports[port] += 1

    def remove(self, placed: Iterable[PlacedTask]) -> None:
        """Undo :meth:`add` of exactly these tasks (each was added before)."""
        for task in placed:
            held = self._held[task.node_id]
            held.cpu_nanos -= task.cpu_nanos
            held.memory_bytes -= task.memory_bytes
            held.tasks -= 1
            _decrement(held.services, task.service)
            for port in task.host_ports:
                _decrement(held.ports, port)
            if not held.tasks:
                del self._held[task.node_id]

    def infos(self, nodes: Iterable[Node]) -> list[NodeInfo]:
        """NodeInfos of ``nodes`` sorted by node id, each with what is placed on it."""
        out: dict[str, NodeInfo] = {}
        for node in nodes:
            info = out[node.node_id] = NodeInfo.from_node(node)
            held = self._held.get(node.node_id)
            if held is not None:
                info.reserved_cpu_nanos = held.cpu_nanos
                info.reserved_memory_bytes = held.memory_bytes
                info.total_tasks = held.tasks
                info.tasks_by_service = dict(held.services)
                info.used_ports = set(held.ports)
        return [out[k] for k in sorted(out)]


def _decrement(counts: Counter[K], key: K) -> None:
    left = counts[key] - 1
    if left > 0:
        counts[key] = left
    else:
        del counts[key]
