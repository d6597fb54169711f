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
unchanged tasks, which lets the compilers patch a service per entry that came or went. A service only
whose tasks changed has its previous list patched (those tasks' entries taken out and put back where
they sort) rather than every task sorted again. Owns its task index (service id -> task ids), those
entries and their task ids; never reads a clock or does I/O.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable

from ..dns.zone import PortEntry, TaskEntry, ZoneData
from ..model import Task
from ..raft.fsm import Change
from ..raft.state import ClusterState
from .views import (
    ZoneNames,
    _region,
    _task_ports,
    node_down,
    task_entry,
    task_order,
    zone_names,
    zone_nodes,
    zone_with,
)


class ZoneBuilder:
    """Builds one node's zone input; keeps the per-service task entries of the last state it saw."""

    def __init__(self, nameservers: tuple[str, ...] = (), local_node: str = "") -> None:
        self.nameservers = nameservers
        self.local_node = local_node
        self._state: ClusterState | None = None
        self._task_ids: dict[str, set[str]] = {}  # service id -> ids of its tasks
        self._entries: dict[str, list[TaskEntry]] = {}  # service id -> entries as dns_zone lists them
        self._ids: dict[str, list[str]] = {}  # service id -> the task ids of its entries, in their order
        self._removed: set[str] = set()  # tasks removed by the changes being applied
        # task id -> (its record, ports, its entry) as last made: valid while nodes' regions and down
        # statuses stay (their change rebuilds everything)
        self._made: dict[str, tuple[Task, tuple[PortEntry, ...], TaskEntry]] = {}
        # the zone's service names and its nodes, with the state's (immutable) map they were made from:
        # made again only when that map is another object (issue 19: both were O(services + nodes) per
        # burst of task reports)
        self._names: tuple[object, ZoneNames] | None = None
        self._nodes: tuple[object, dict[str, str]] | None = None
        self.rebuilt_services = 0  # services whose entries the last update recomputed
        self.patched_services = 0  # of those, the ones patched per changed task (not sorted again)
        self.full_rebuilds = 0

    def update(self, state: ClusterState, changes: Iterable[Change] = ()) -> ZoneData:
        """The zone input of ``state``, given every change applied since the previous call's state."""
        self._removed = set()
        dirty = self._dirty(state, list(changes))
        if dirty is None:
            self.full_rebuilds += 1
            self._task_ids = {}
            for task in state.tasks.values():
                self._task_ids.setdefault(task.service_id, set()).add(task.task_id)
            self._entries, self._ids, self._made = {}, {}, {}
            dirty = dict.fromkeys(state.services)
        before, self._state = self._state, state
        self.patched_services = self.rebuilt_services = 0
        for service_id, task_ids in dirty.items():
            old = self._entries.pop(service_id, None)
            old_ids = self._ids.pop(service_id, None)
            if service_id not in state.services:
                continue
            self.rebuilt_services += 1
            made = None
            if task_ids is not None and old is not None and old_ids is not None and before is not None:
                made = self._patch_entries(state, before, service_id, task_ids, old, old_ids)
            if made is None:
                made = self._service_entries(state, service_id, old)
            else:
                self.patched_services += 1
            self._entries[service_id], self._ids[service_id] = made
        for task_id in self._removed:
            self._made.pop(task_id, None)
        self._removed = set()
        return self._zone(state)

    def _dirty(self, state: ClusterState, changes: list[Change]) -> dict[str, set[str] | None] | None:
        """Service ids whose entries changed -> the ids of the tasks whose changes touched them (None:
        the service itself changed), with the task index brought up to date; None: rebuild."""
        old = self._state
        if old is None or (changes and changes[-1].version != state.version):
            return None
        if not changes and old.version != state.version:
            return None
        dirty: dict[str, set[str] | None] = {}
        whole: set[str] = set()
        for change in changes:
            if change.kind == "reset":
                return None
            # a "cluster" change (init, join token, key epoch, a new leader's epoch: every leader change)
            # touches no task entry (a task, its service's ports, its node's region and down status);
            # the zone's domain is read afresh by every update (_zone). A full rebuild here took each
            # member's trio thread for seconds at 100,000 tasks right after each election (issue 19)
            if change.kind == "node":
                if _region(old, change.key) != _region(state, change.key):
                    return None  # the site of every task on it changed
                if node_down(old, change.key) != node_down(state, change.key):
                    return None  # every task on it left (or rejoined) the answers
            elif change.kind == "service":
                whole.add(change.key)
            elif change.kind == "task":
                self._move_task(change.key, dirty)
                now = state.tasks.get(change.key)
                if now is None:
                    self._removed.add(change.key)  # its entry is dropped once the lists are patched
                else:
                    self._task_ids.setdefault(now.service_id, set()).add(change.key)
                    _touch(dirty, now.service_id, change.key)
        for service_id in whole:
            dirty[service_id] = None
        return dirty

    def _move_task(self, task_id: str, dirty: dict[str, set[str] | None]) -> None:
        """Drop ``task_id`` from the index under the service it was filed under (if any)."""
        assert self._state is not None
        before = self._state.tasks.get(task_id)
        if before is not None:
            ids = self._task_ids.get(before.service_id)
            if ids is not None:
                ids.discard(task_id)
            _touch(dirty, before.service_id, task_id)

    def _patch_entries(
        self,
        state: ClusterState,
        before: ClusterState,
        service_id: str,
        task_ids: set[str],
        old: list[TaskEntry],
        old_ids: list[str],
    ) -> tuple[list[TaskEntry], list[str]] | None:
        """``_service_entries`` for a service only ``task_ids`` changed in: the previous list with those
        tasks' entries taken out (found by their previous order) and put back where they now sort, in
        O(changed x log tasks) lookups instead of a sort of every task; None when it cannot (the
        service's ports changed: every entry is made again)."""
        ports = _task_ports(state.services[service_id].spec)
        made = self._made
        if old_ids and made[old_ids[0]][1] != ports:
            return None
        entries, ids = list(old), list(old_ids)

        def order(task_id: str) -> tuple[int, str]:
            return task_order(made[task_id][0])  # the record the listed entry was made from

        out: dict[str, TaskEntry] = {}
        for task_id in task_ids:
            was = before.tasks.get(task_id)
            have = made.get(task_id)
            if was is None or have is None or was.service_id != service_id or not was.address:
                continue  # not listed here
            i = bisect_left(ids, task_order(have[0]), key=order)
            if i == len(ids) or ids[i] != task_id:
                return None  # not where its record sorts: make the list again
            out[task_id] = entries[i]
            del entries[i], ids[i]
        came: dict[str, TaskEntry] = {}
        for task_id in sorted(task_ids):
            t = state.tasks.get(task_id)
            if t is None or t.service_id != service_id or not t.address:
                continue
            have = made.get(task_id)
            if have is not None and have[0] is t and have[1] == ports:
                entry = have[2]
            else:
                entry = task_entry(state, t, ports)
                if have is not None and have[2] == entry:
                    entry = have[2]  # a report that changed nothing DNS answers: the same object
                made[task_id] = (t, ports, entry)
            i = bisect_left(ids, task_order(t), key=order)
            entries.insert(i, entry)
            ids.insert(i, task_id)
            came[task_id] = entry
        if out.keys() == came.keys() and all(came[k] is e for k, e in out.items()):
            return old, old_ids  # the very same list: the compilers reuse the service by identity
        return entries, ids

    def _service_entries(
        self, state: ClusterState, service_id: str, old: list[TaskEntry] | None
    ) -> tuple[list[TaskEntry], list[str]]:
        ports = _task_ports(state.services[service_id].spec)
        tasks: list[Task] = [state.tasks[t] for t in self._task_ids.get(service_id, ()) if t in state.tasks]
        made = self._made
        entries: list[TaskEntry] = []
        ids: list[str] = []
        for t in sorted(tasks, key=task_order):  # as views.task_entries
            if not t.address:
                continue
            ids.append(t.task_id)
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
            return old, ids  # the very same list: the compilers reuse the service by identity
        return entries, ids

    def _zone(self, state: ClusterState) -> ZoneData:
        if self._names is None or self._names[0] is not state.services:
            self._names = (state.services, zone_names(state))
        if self._nodes is None or self._nodes[0] is not state.nodes:
            self._nodes = (state.nodes, zone_nodes(state))
        return zone_with(
            state, self._names[1], self._nodes[1], self._entries, self.nameservers, self.local_node
        )


def _touch(dirty: dict[str, set[str] | None], service_id: str, task_id: str) -> None:
    """Note that ``task_id``'s change touched ``service_id`` (unless the service is remade whole)."""
    if service_id not in dirty:
        dirty[service_id] = {task_id}
    else:
        ids = dirty[service_id]
        if ids is not None:
            ids.add(task_id)
