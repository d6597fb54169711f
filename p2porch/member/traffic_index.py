"""One node's ingress/VIP inputs across successive committed states, recomputed only for the services the
changes touched (pure).

``views.traffic_inputs(state, node_id, unreachable)`` walks every task after every burst of commits (the
backends: running, healthy tasks on live nodes); at 20,000-100,000 tasks that is tens to hundreds of
milliseconds per burst on every node. ``TrafficIndex.update(state, unreachable, changes)`` returns what
``traffic_inputs`` returns (property test against it) from the ``Change`` records the store streamed
since the previous call: a changed task's backend is made again (or dropped) in its place, and the
backends of its service are taken again from the kept ones, in the order of ``state.tasks`` (a
per-service index kept in insertion order, as the FSM keeps the task map) without walking the service's
other tasks (issue 19: a burst of reports touches most services, a few tasks each). A changed service
record makes its tasks' backends again. A node change that makes the node live or not live makes the
backends of the tasks filed on it again (a per-node index); any other node change (a join's admission,
labels, an address) touches no backend (issue 19: a full rebuild per join on every member, 40-65 ms at
10,000 tasks). A reset, another unreachable set, or changes that do not lead exactly to
``state.version`` recompute everything. Each service's VIP and ingress ports are kept with the service
record and backends they were made from and made again only when either is another object; the services'
order is sorted again only when the services map is another object (a task's report: neither). Never
reads a clock or does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..model import Service
from ..netoverlay.ingress import IngressPort
from ..netoverlay.traffic import Backend, TrafficSettings
from ..netoverlay.vip import ServiceVip
from ..raft.fsm import Change
from ..raft.state import ClusterState
from .views import (
    ServiceTraffic,
    is_backend,
    is_live,
    live_nodes,
    service_traffic,
    traffic_joined,
    traffic_order,
)

Inputs = tuple[list[IngressPort], list[ServiceVip], TrafficSettings] | None
_FULL = ("reset",)  # the lease and the CIDR (settings) are read from the state each time


class TrafficIndex:
    """Owns one node's per-service task index and backends; reuse one per node for the whole stream."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self._state: ClusterState | None = None
        self._unreachable: frozenset[str] = frozenset()
        self._live: frozenset[str] = frozenset()
        # service id -> its task ids in state.tasks order, each with its backend (None: not one)
        self._tasks: dict[str, dict[str, Backend | None]] = {}
        self._service_of: dict[str, str] = {}  # task id -> service id it is filed under
        self._node_of: dict[str, str] = {}  # task id -> the node it is filed under (tasks on a node)
        self._on_node: dict[str, set[str]] = {}  # node id -> task ids filed under it
        self._backends: dict[str, tuple[Backend, ...]] = {}
        # the services in traffic order, for the services map (an immutable mapping, replaced whenever
        # a service changes) they were sorted from; each service's part of the inputs with the record
        # and the backends tuple it was made from (issue 19: remaking every service's VIP and ports
        # after each burst was O(services))
        self._order: tuple[Mapping[str, Service], list[Service]] | None = None
        self._parts: dict[str, tuple[Service, tuple[Backend, ...], ServiceTraffic]] = {}
        self.full_rebuilds = 0
        self.rebuilt_services = 0  # services whose backends the last update took again
        self.remade_tasks = 0  # tasks whose backend the last update made again

    def update(
        self, state: ClusterState, unreachable: frozenset[str] = frozenset(), changes: Iterable[Change] = ()
    ) -> Inputs:
        """The inputs for ``state``, given every change applied since the previous call's state."""
        batch = list(changes)
        found = self._dirty(state, unreachable, batch)
        if found is None:
            self._rebuild(state, unreachable)
        else:
            self._state = state
            dirty, changed = found
            remade = 0
            for service_id in dirty:  # a changed service record: every task of it again
                tasks = self._tasks.get(service_id, {})
                for task_id in tasks:
                    tasks[task_id] = self._backend(state, task_id)
                remade += len(tasks)
            touched = set(dirty)
            for task_id in changed:
                filed = self._service_of.get(task_id)
                if filed is not None and filed not in dirty:
                    self._tasks[filed][task_id] = self._backend(state, task_id)
                    touched.add(filed)
                    remade += 1
            for service_id in touched:  # a Backend is never falsy: filter(None) drops the Nones (in C)
                self._backends[service_id] = tuple(filter(None, self._tasks.get(service_id, {}).values()))
            self.rebuilt_services, self.remade_tasks = len(touched), remade
        return self._inputs(state)

    def _inputs(self, state: ClusterState) -> Inputs:
        """``traffic_of(state, node_id, backends)``, remaking only the parts of services whose record
        or backends are not the ones a kept part was made from."""
        if self.node_id not in state.leases:
            return None
        order = self._order
        if order is None or order[0] is not state.services:
            order = self._order = (state.services, traffic_order(state))
        parts, backends, empty = self._parts, self._backends, ()
        out: list[ServiceTraffic] = []
        for service in order[1]:
            sid = service.service_id
            found = backends.get(sid, empty)
            kept = parts.get(sid)
            if kept is None or kept[0] is not service or kept[1] is not found:
                kept = parts[sid] = (service, found, service_traffic(service, found))
            out.append(kept[2])
        if len(parts) > len(order[1]):  # removed services' parts
            for sid in parts.keys() - state.services.keys():
                del parts[sid]
        return traffic_joined(state, self.node_id, out)

    def _dirty(
        self, state: ClusterState, unreachable: frozenset[str], changes: list[Change]
    ) -> tuple[set[str], set[str]] | None:
        """(services whose record changed, tasks that changed), the task index brought up to date; None:
        recompute everything."""
        old = self._state
        if old is None or unreachable != self._unreachable:
            return None
        if (changes and changes[-1].version != state.version) or (
            not changes and old.version != state.version
        ):
            return None
        dirty: set[str] = set()
        changed: set[str] = set()
        nodes: set[str] = set()
        for change in changes:
            if change.kind in _FULL:
                return None
            if change.kind == "service":
                dirty.add(change.key)
            elif change.kind == "task":
                changed.add(change.key)
                self._refile(change, changed)
            elif change.kind == "node":
                nodes.add(change.key)
        for node_id in nodes:  # live now and not before, or the reverse: its tasks' backends again
            if is_live(state, node_id, unreachable) != (node_id in self._live):
                self._live = self._live ^ {node_id}
                changed |= self._on_node.get(node_id, set())
        return dirty, changed

    def _refile(self, change: Change, changed: set[str]) -> None:
        task_id = change.key
        before = self._service_of.get(task_id)
        after = change.record.service_id if change.op == "put" and change.record is not None else None
        if before is not None and before != after:
            self._tasks.get(before, {}).pop(task_id, None)
            del self._service_of[task_id]
            # its backends without it (an emptied service keeps its entry: an empty tuple, as a rebuild
            # of a service with no task leaves none)
            self._backends[before] = tuple(filter(None, self._tasks.get(before, {}).values()))
        if after is not None and before != after:
            self._tasks.setdefault(after, {})[task_id] = None
            self._service_of[task_id] = after
        on = change.record.node_id if change.op == "put" and change.record is not None else None
        self._file_on_node(task_id, on)

    def _file_on_node(self, task_id: str, node_id: str | None) -> None:
        was = self._node_of.get(task_id)
        if was == node_id:
            return
        if was is not None:
            self._on_node[was].discard(task_id)
            del self._node_of[task_id]
        if node_id is not None:
            self._on_node.setdefault(node_id, set()).add(task_id)
            self._node_of[task_id] = node_id

    def _rebuild(self, state: ClusterState, unreachable: frozenset[str]) -> None:
        self.full_rebuilds += 1
        self._state, self._unreachable = state, unreachable
        self._live = live_nodes(state, unreachable)
        self._tasks, self._service_of, self._node_of, self._on_node = {}, {}, {}, {}
        for task_id, task in state.tasks.items():
            self._tasks.setdefault(task.service_id, {})[task_id] = None
            self._service_of[task_id] = task.service_id
            self._file_on_node(task_id, task.node_id)
        self._backends = {}
        for service_id, tasks in self._tasks.items():
            for task_id in tasks:
                tasks[task_id] = self._backend(state, task_id)
            self._backends[service_id] = tuple(filter(None, tasks.values()))
        self.rebuilt_services, self.remade_tasks = len(self._tasks), len(self._service_of)

    def _backend(self, state: ClusterState, task_id: str) -> Backend | None:
        task = state.tasks.get(task_id)
        if task is not None and is_backend(task, self._live):
            return Backend(task.address, task.node_id == self.node_id)
        return None
