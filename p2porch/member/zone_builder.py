"""The DNS zone input of successive committed states, rebuilt only where the changes touched it (pure).

``views.dns_zone(state)`` walks every task: ~1.2 s at 100,000 tasks, on every node after every burst of
commits. ``ZoneBuilder.update(state, changes)`` returns a ``ZoneData`` equal to
``dns_zone(state, nameservers, local_node)`` (tested on seeded random change sequences) from the
``Change`` records the store streamed since the previous call: only the services whose tasks or record
changed get new task entries; the others keep the very same list objects, which lets the resolver's
``ZoneCompiler`` reuse their compiled names without comparing them. A reset, a node whose region
label or down status changed, or changes that do not lead exactly to ``state.version`` rebuild everything.
Within a changed service, a task's entry is made again only when its record (by identity) or the
service's ports changed, and kept as the previous object when equal to it (a report that changed only a
message); an unchanged list of entries is the previous list object (issue 19: a burst of reports touches
most services, rarely what their names answer), and a changed list holds the same objects for the
unchanged tasks, which lets the compilers patch a service per entry that came or went. Owns its task
index (service id -> task ids) and those entries; never reads a clock or does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..dns.zone import PortEntry, TaskEntry, ZoneData
from ..model import Task
from ..raft.fsm import Change
from ..raft.state import ClusterState
from .views import _region, _task_ports, node_down, task_entry, task_order, zone_of


class ZoneBuilder:
    """Builds one node's zone input; keeps the per-service task entries of the last state it saw."""

    def __init__(self, nameservers: tuple[str, ...] = (), local_node: str = "") -> None:
        self.nameservers = nameservers
        self.local_node = local_node
        self._state: ClusterState | None = None
        self._task_ids: dict[str, set[str]] = {}  # service id -> ids of its tasks
        self._entries: dict[str, list[TaskEntry]] = {}  # service id -> entries as dns_zone lists them
        # task id -> (its record, ports, its entry) as last made: valid while nodes' regions and down
        # statuses stay (their change rebuilds everything)
        self._made: dict[str, tuple[Task, tuple[PortEntry, ...], TaskEntry]] = {}
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
            self._made = {}
            dirty = set(state.services)
        self._state = state
        for service_id in dirty:
            old = self._entries.pop(service_id, None)
            if service_id in state.services:
                self._entries[service_id] = self._service_entries(state, service_id, old)
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
                if now is None:
                    self._made.pop(change.key, None)
                else:
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

    def _service_entries(
        self, state: ClusterState, service_id: str, old: list[TaskEntry] | None
    ) -> list[TaskEntry]:
        ports = _task_ports(state.services[service_id].spec)
        tasks: list[Task] = [state.tasks[t] for t in self._task_ids.get(service_id, ()) if t in state.tasks]
        made = self._made
        entries: list[TaskEntry] = []
        for t in sorted(tasks, key=task_order):  # as views.task_entries
            if not t.address:
                continue
            have = made.get(t.task_id)
            if have is not None and have[0] is t and have[1] == ports:
                entries.append(have[2])
            else:
                entry = task_entry(state, t, ports)
                if have is not None and have[2] == entry:
                    entry = have[2]  # a report that changed nothing DNS answers: the same object
                made[t.task_id] = (t, ports, entry)
                entries.append(entry)
        if (
            old is not None
            and len(old) == len(entries)
            and all(a is b for a, b in zip(old, entries, strict=True))
        ):
            return old  # the very same list: the compilers reuse the service by identity
        return entries

    def _zone(self, state: ClusterState) -> ZoneData:
        return zone_of(state, self._entries, self.nameservers, self.local_node)
