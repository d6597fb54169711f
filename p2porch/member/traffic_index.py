"""One node's ingress/VIP inputs across successive committed states, recomputed only for the services the
changes touched (pure).

``views.traffic_inputs(state, node_id, unreachable)`` walks every task after every burst of commits (the
backends: running, healthy tasks on live nodes); at 20,000-100,000 tasks that is tens to hundreds of
milliseconds per burst on every node. ``TrafficIndex.update(state, unreachable, changes)`` returns what
``traffic_inputs`` returns (property test against it) from the ``Change`` records the store streamed
since the previous call: only the services whose tasks or record changed get their backends again, in
the order of ``state.tasks`` (a per-service index kept in insertion order, as the FSM keeps the task
map). A reset, a node change, another unreachable set, or changes that do not lead exactly to
``state.version`` recompute everything. Never reads a clock or does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..netoverlay.ingress import IngressPort
from ..netoverlay.traffic import Backend, TrafficSettings
from ..netoverlay.vip import ServiceVip
from ..raft.fsm import Change
from ..raft.state import ClusterState
from .views import is_backend, live_nodes, traffic_of

Inputs = tuple[list[IngressPort], list[ServiceVip], TrafficSettings] | None
_FULL = (
    "reset",
    "node",
)  # the live nodes; the lease and the CIDR (settings) are read from the state each time


class TrafficIndex:
    """Owns one node's per-service task index and backends; reuse one per node for the whole stream."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self._state: ClusterState | None = None
        self._unreachable: frozenset[str] = frozenset()
        self._live: frozenset[str] = frozenset()
        self._tasks: dict[str, dict[str, None]] = {}  # service id -> its task ids, in state.tasks order
        self._service_of: dict[str, str] = {}  # task id -> service id it is filed under
        self._backends: dict[str, tuple[Backend, ...]] = {}
        self.full_rebuilds = 0
        self.rebuilt_services = 0  # services whose backends the last update recomputed

    def update(
        self, state: ClusterState, unreachable: frozenset[str] = frozenset(), changes: Iterable[Change] = ()
    ) -> Inputs:
        """The inputs for ``state``, given every change applied since the previous call's state."""
        batch = list(changes)
        dirty = self._dirty(state, unreachable, batch)
        if dirty is None:
            self._rebuild(state, unreachable)
        else:
            self._state = state
            for service_id in dirty:
                self._backends[service_id] = self._service_backends(state, service_id)
            self.rebuilt_services = len(dirty)
        return traffic_of(state, self.node_id, self._backends)

    def _dirty(
        self, state: ClusterState, unreachable: frozenset[str], changes: list[Change]
    ) -> set[str] | None:
        old = self._state
        if old is None or unreachable != self._unreachable:
            return None
        if (changes and changes[-1].version != state.version) or (
            not changes and old.version != state.version
        ):
            return None
        dirty: set[str] = set()
        for change in changes:
            if change.kind in _FULL:
                return None
            if change.kind == "service":
                dirty.add(change.key)
            elif change.kind == "task":
                self._refile(change, dirty)
        return dirty

    def _refile(self, change: Change, dirty: set[str]) -> None:
        task_id = change.key
        before = self._service_of.get(task_id)
        after = change.record.service_id if change.op == "put" and change.record is not None else None
        if before is not None and before != after:
            self._tasks.get(before, {}).pop(task_id, None)
            del self._service_of[task_id]
            dirty.add(before)
        if after is not None:
            if before != after:
                self._tasks.setdefault(after, {})[task_id] = None
                self._service_of[task_id] = after
            dirty.add(after)

    def _rebuild(self, state: ClusterState, unreachable: frozenset[str]) -> None:
        self.full_rebuilds += 1
        self._state, self._unreachable = state, unreachable
        self._live = live_nodes(state, unreachable)
        self._tasks, self._service_of = {}, {}
        for task_id, task in state.tasks.items():
            self._tasks.setdefault(task.service_id, {})[task_id] = None
            self._service_of[task_id] = task.service_id
        self._backends = {}
        for service_id in self._tasks:
            self._backends[service_id] = self._service_backends(state, service_id)
        self.rebuilt_services = len(self._tasks)

    def _service_backends(self, state: ClusterState, service_id: str) -> tuple[Backend, ...]:
        out = []
        for task_id in self._tasks.get(service_id, ()):
            task = state.tasks.get(task_id)
            if task is not None and is_backend(task, self._live):
                out.append(Backend(task.address, task.node_id == self.node_id))
        return tuple(out)
