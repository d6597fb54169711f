"""The scheduler's per-node accounting (pure).

Nodes come in as the model's committed ``Node`` records. ``NodeInfo`` is the scheduler's mutable working
view of one node: capacity, what is already reserved on it, how many tasks of each service it runs and
which host ports are taken. It is updated incrementally as tasks are placed and never reads cluster
state by itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..model import Node


@dataclass(frozen=True, slots=True)
class PlacedTask:
    """A task that occupies resources on a node (desired running, or not yet observed terminal)."""

    service: str  # service *name* (affinity rules name services)
    node_id: str
    cpu_nanos: int = 0
    memory_bytes: int = 0
    host_ports: tuple[tuple[str, int], ...] = ()


@dataclass(slots=True)
class NodeInfo:
    """Mutable scheduling view of one node: static attributes plus running reservations.

    Capacity 0 means "unknown": then only tasks reserving nothing of that resource fit.
    """

    node_id: str
    name: str
    hostname: str
    role: str
    availability: str
    status: str
    labels: Mapping[str, str]
    cpu_nanos: int
    memory_bytes: int
    reserved_cpu_nanos: int = 0
    reserved_memory_bytes: int = 0
    total_tasks: int = 0
    tasks_by_service: dict[str, int] = field(default_factory=dict)
    used_ports: set[tuple[str, int]] = field(default_factory=set)
    engine_down: bool = False  # its agent found its Docker engine unreachable
    restarting: bool = False  # its daemon announced a restart and is held ready (leader/restart_hold.py)
    engine_version: str = ""  # its Docker version as its gossip publishes it ("" not known)

    @classmethod
    def from_node(cls, node: Node) -> NodeInfo:
        return cls(
            node_id=node.node_id,
            name=node.name or node.node_id,
            hostname=node.hostname,
            role=node.role,
            availability=node.availability,
            status=node.status,
            labels=node.labels,
            cpu_nanos=node.cpu_nanos,
            memory_bytes=node.memory_bytes,
            engine_down=bool(node.engine_down_at),
            restarting=bool(node.restart_until),
            engine_version=node.engine_version,
        )

    def copy(self) -> NodeInfo:
        return NodeInfo(
            node_id=self.node_id,
            name=self.name,
            hostname=self.hostname,
            role=self.role,
            availability=self.availability,
            status=self.status,
            labels=self.labels,
            cpu_nanos=self.cpu_nanos,
            memory_bytes=self.memory_bytes,
            reserved_cpu_nanos=self.reserved_cpu_nanos,
            reserved_memory_bytes=self.reserved_memory_bytes,
            total_tasks=self.total_tasks,
            tasks_by_service=dict(self.tasks_by_service),
            used_ports=set(self.used_ports),
            engine_down=self.engine_down,
            restarting=self.restarting,
            engine_version=self.engine_version,
        )

    def add_task(
        self,
        service: str,
        cpu_nanos: int = 0,
        memory_bytes: int = 0,
        host_ports: Iterable[tuple[str, int]] = (),
    ) -> None:
        """Account one more task of ``service`` on this node."""
        self.reserved_cpu_nanos += cpu_nanos
        self.reserved_memory_bytes += memory_bytes
        self.total_tasks += 1
        self.tasks_by_service[service] = self.tasks_by_service.get(service, 0) + 1
        self.used_ports.update(host_ports)

    def remove_task(
        self,
        service: str,
        cpu_nanos: int = 0,
        memory_bytes: int = 0,
        host_ports: Iterable[tuple[str, int]] = (),
    ) -> None:
        """Undo :meth:`add_task` (a task stopped or moved)."""
        self.reserved_cpu_nanos -= cpu_nanos
        self.reserved_memory_bytes -= memory_bytes
        self.total_tasks -= 1
        left = self.tasks_by_service.get(service, 0) - 1
        if left > 0:
            self.tasks_by_service[service] = left
        else:
            self.tasks_by_service.pop(service, None)
        self.used_ports.difference_update(host_ports)

    @property
    def free_cpu_nanos(self) -> int:
        return self.cpu_nanos - self.reserved_cpu_nanos

    @property
    def free_memory_bytes(self) -> int:
        return self.memory_bytes - self.reserved_memory_bytes


def fullness_ppm(node: NodeInfo) -> int:
    """How full a node is for binpack, in parts per million: reserved/capacity of CPU plus of memory."""
    score = 0
    if node.cpu_nanos > 0:
        score += node.reserved_cpu_nanos * 1_000_000 // node.cpu_nanos
    if node.memory_bytes > 0:
        score += node.reserved_memory_bytes * 1_000_000 // node.memory_bytes
    return score


def build_node_infos(nodes: Iterable[Node], placed: Iterable[PlacedTask] = ()) -> list[NodeInfo]:
    """NodeInfos sorted by node id, with every placed task accounted; tasks on unknown nodes are ignored."""
    infos = {n.node_id: NodeInfo.from_node(n) for n in nodes}
    for task in placed:
        info = infos.get(task.node_id)
        if info is not None:
            info.add_task(task.service, task.cpu_nanos, task.memory_bytes, task.host_ports)
    return [infos[k] for k in sorted(infos)]
