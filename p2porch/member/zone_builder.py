"""The DNS zone input of successive committed states, rebuilt only where the changes touched it (pure).

``views.dns_zone(state)`` walks every task: ~1.2 s at 100,000 tasks, on every node after every burst of
commits. ``ZoneBuilder.update(state, changes)`` returns a ``ZoneData`` equal to
``dns_zone(state, nameservers, local_node)`` (tested on seeded random change sequences) from the
``Change`` records the store streamed since the previous call: only the services whose tasks or record
changed get new task entries; the others keep the very same list objects, which lets the resolver's
``ZoneCompiler`` reuse their compiled names without comparing them. A reset, a node whose region
label or down status changed, or changes that do not lead exactly to ``state.version`` rebuild everything.
Owns its task index (service id -> task ids); never reads a clock or does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..dns.zone import TaskEntry, ZoneData
from ..model import Task
from ..raft.fsm import Change
from ..raft.state import ClusterState
from .views import _region, _task_ports, node_down, task_entries, zone_of


class ZoneBuilder:
    """Builds one node's zone input; keeps the per-service task entries of the last state it saw."""

    def __init__(self, nameservers: tuple[str, ...] = (), local_node: str = "") -> None:
        self.nameservers = nameservers
        self.local_node = local_node
        self._state: ClusterState | None = None
        self._task_ids: dict[str, set[str]] = {}  # service id -> ids of its tasks
        self._entries: dict[str, list[TaskEntry]] = {}  # service id -> entries as dns_zone lists them
        self.rebuilt_services = 0  # services whose entries the last update recomputed
        self.full_rebuilds = 0

    def update(self, state: ClusterState, changes: Iterable[Change] = ()) -> ZoneData:
        """The zone input of ``state``, given every change applied since the previous call's state."""
        dirty = self._dirty(state, list(changes))
        if dirty is None:
            self.full_rebuilds += 1
            self._task_ids = {}
            for task in state.tasks.values():
                self._task_ids.setdefault(task.service_id, set()).add(task.task_id)
            self._entries = {}
            dirty = set(state.services)
        self._state = state
        for service_id in dirty:
            self._entries.pop(service_id, None)
            if service_id in state.services:
                self._entries[service_id] = self._service_entries(state, service_id)
        self.rebuilt_services = len(dirty)
        return self._zone(state)

    def _dirty(self, state: ClusterState, changes: list[Change]) -> set[str] | None:
        """Service ids whose entries changed, with the task index brought up to date; None: rebuild."""
        old = self._state
        if old is None or (changes and changes[-1].version != state.version):
            return None
        if not changes and old.version != state.version:
            return None
        dirty: set[str] = set()
        for change in changes:
            if change.kind in ("reset", "cluster"):
                return None
            if change.kind == "node":
                if _region(old, change.key) != _region(state, change.key):
                    return None  # the site of every task on it changed
                if node_down(old, change.key) != node_down(state, change.key):
                    return None  # every task on it left (or rejoined) the answers
            elif change.kind == "service":
                dirty.add(change.key)
            elif change.kind == "task":
                self._move_task(change.key, dirty)
                now = state.tasks.get(change.key)
                if now is not None:
                    self._task_ids.setdefault(now.service_id, set()).add(change.key)
                    dirty.add(now.service_id)
        return dirty

    def _move_task(self, task_id: str, dirty: set[str]) -> None:
        """Drop ``task_id`` from the index under the service it was filed under (if any)."""
        assert self._state is not None
        before = self._state.tasks.get(task_id)
        if before is not None:
            ids = self._task_ids.get(before.service_id)
            if ids is not None:
                ids.discard(task_id)
            dirty.add(before.service_id)

    def _service_entries(self, state: ClusterState, service_id: str) -> list[TaskEntry]:
        ports = _task_ports(state.services[service_id].spec)
        tasks: list[Task] = [state.tasks[t] for t in self._task_ids.get(service_id, ()) if t in state.tasks]
        return task_entries(state, tasks, ports)

    def _zone(self, state: ClusterState) -> ZoneData:
        return zone_of(state, self._entries, self.nameservers, self.local_node)
