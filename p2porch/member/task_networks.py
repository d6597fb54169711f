"""Each task address's networks across successive committed states, kept up to date from the changes (pure).

``netviews.task_networks(state)`` walks every task; the DNS scopes and the network-policy plan need it
after every burst of commits, although a burst changes few addresses (a RUNNING report brings one).
``TaskNetworkIndex.update(state, changes)`` returns a mapping equal to ``task_networks(state)`` (property
test against the full walk) from the ``Change`` records the store streamed since the previous call, and
**the very same object** when no address or network changed, so a caller can skip its own rebuild by
identity. A reset or changes that do not lead exactly to ``state.version`` rebuild it from the whole
state (a cluster change, such as each new leader's epoch claim, touches no address). One index may
serve several callers, each passing its own stream (:func:`shared_index`: the DNS view and the network
policy of a node share one; issue 19, ~35 MB at 100,000 tasks). Each mapping it publishes gets a
``generation``, and :meth:`changed_since` tells a caller which addresses changed since the generation it
last read (the network policy's kept sets follow those, O(change)). Owns its indexes; never reads a clock,
does I/O, or mutates a mapping it returned.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from ..model import TERMINAL_STATES
from ..raft.fsm import Change
from ..raft.state import ClusterState
from .netviews import service_networks

#: how much of its publishing history an index keeps for :meth:`TaskNetworkIndex.changed_since` (a caller
#: further behind compares whole mappings): published mappings, and addresses in all of them together
KEPT_GENERATIONS = 256
KEPT_CHANGED_ADDRESSES = 65_536


class TaskNetworkIndex:
    """``address -> networks`` of every unfinished task holding an address, for one stream of states."""

    def __init__(self) -> None:
        self._state: ClusterState | None = None
        self._service_nets: dict[str, frozenset[str]] = {}
        self._service_tasks: dict[str, set[str]] = {}  # service id -> every task id filed under it
        self._held: dict[str, tuple[str, frozenset[str]]] = {}  # task id -> (address, networks) it counts
        # address -> the task id holding it, or task id -> networks when several do (issue 19: a dict
        # per address cost ~450 bytes a task at 100,000 tasks; most addresses have one task)
        self._by_address: dict[str, str | dict[str, frozenset[str]]] = {}
        self._out: dict[str, frozenset[str]] = {}
        self._behind = False
        self.full_rebuilds = 0
        self.generation = 0  # of the mapping last published (a rebuild starts a new history)
        self._history: deque[tuple[int, frozenset[str]]] = deque()  # (generation, addresses it changed)
        self._history_addresses = 0

    def update(self, state: ClusterState, changes: Iterable[Change] = ()) -> Mapping[str, frozenset[str]]:
        """The mapping for ``state``, given every change applied since the caller's previous call. Several
        callers may share one index (each with its own change stream): changes the index already
        applied for another caller (not newer than its state) are skipped."""
        batch = list(changes)
        old = self._state
        if old is not None:
            if old.version == state.version:
                return self._out
            if state.version < old.version:  # a caller behind another (not expected: both read the latest)
                self._rebuild(state)
                self._behind = True  # the callers ahead have changes past it it would skip: rebuild next
                return self._out
            batch = [c for c in batch if c.version > old.version]
        if self._behind or not self._follows(state, batch):
            self._behind = False
            self._rebuild(state)
            return self._out
        touched: set[str] = set()  # addresses whose networks may have changed
        for change in batch:
            if change.kind == "reset":  # cluster changes (a new leader's epoch, keys) touch no address
                self._rebuild(state)
                return self._out
            if change.kind == "service":
                self._service_changed(state, change.key, touched)
            elif change.kind == "task":
                self._task_changed(state, change.key, touched)
        self._state = state
        self._publish(touched)
        return self._out

    def addresses_of(self, service_id: str) -> list[str]:
        """The addresses the unfinished tasks of ``service_id`` hold (as of the last update), O(its tasks)."""
        held = self._held
        return [held[t][0] for t in self._service_tasks.get(service_id, ()) if t in held]

    def changed_since(self, generation: int) -> set[str] | None:
        """Every address whose networks differ between the mapping of ``generation`` and the current one (an
        address that changed and changed back may be named too); None when that is not known (a rebuild
        since, or more history than the index keeps)."""
        if generation == self.generation:
            return set()
        history = self._history
        if not history or not history[0][0] <= generation + 1 <= self.generation:
            return None
        changed: set[str] = set()
        for published, addresses in history:
            if published > generation:
                changed |= addresses
        return changed

    def _follows(self, state: ClusterState, changes: list[Change]) -> bool:
        old = self._state
        if old is None:
            return False
        if changes:
            return changes[-1].version == state.version
        return old.version == state.version

    def _rebuild(self, state: ClusterState) -> None:
        self.full_rebuilds += 1
        self.generation += 1
        self._history.clear()
        self._history_addresses = 0
        self._state = state
        self._service_nets = {sid: service_networks(svc.spec) for sid, svc in state.services.items()}
        self._service_tasks = {}
        self._held = {}
        self._by_address = {}
        for task_id, task in state.tasks.items():
            self._service_tasks.setdefault(task.service_id, set()).add(task_id)
            self._hold(state, task_id, set())
        self._out = {a: self._networks(held) for a, held in self._by_address.items()}

    def _service_changed(self, state: ClusterState, service_id: str, touched: set[str]) -> None:
        service = state.services.get(service_id)
        nets = service_networks(service.spec) if service is not None else None
        if nets == self._service_nets.get(service_id):
            return
        if nets is None:
            self._service_nets.pop(service_id, None)
        else:
            self._service_nets[service_id] = nets
        for task_id in self._service_tasks.get(service_id, ()):
            self._release(task_id, touched)
            self._hold(state, task_id, touched)

    def _task_changed(self, state: ClusterState, task_id: str, touched: set[str]) -> None:
        self._release(task_id, touched)
        assert self._state is not None
        for snapshot in (self._state, state):  # re-file it under its service, old and new
            task = snapshot.tasks.get(task_id)
            if task is not None:
                self._service_tasks.get(task.service_id, set()).discard(task_id)
        task = state.tasks.get(task_id)
        if task is not None:
            self._service_tasks.setdefault(task.service_id, set()).add(task_id)
            self._hold(state, task_id, touched)

    def _hold(self, state: ClusterState, task_id: str, touched: set[str]) -> None:
        task = state.tasks.get(task_id)
        if task is None or not task.address or task.state in TERMINAL_STATES:
            return
        nets = self._service_nets.get(task.service_id)
        if nets is None:
            return
        self._held[task_id] = (task.address, nets)
        have = self._by_address.get(task.address)
        if have is None:
            self._by_address[task.address] = task_id
        elif isinstance(have, str):
            self._by_address[task.address] = {have: self._held[have][1], task_id: nets}
        else:
            have[task_id] = nets
        touched.add(task.address)

    def _release(self, task_id: str, touched: set[str]) -> None:
        held = self._held.pop(task_id, None)
        if held is None:
            return
        address = held[0]
        holders = self._by_address.get(address)
        if isinstance(holders, dict):
            holders.pop(task_id, None)
            if len(holders) == 1:
                self._by_address[address] = next(iter(holders))
            elif not holders:
                del self._by_address[address]
        elif holders == task_id:
            del self._by_address[address]
        touched.add(address)

    def _networks(self, holders: str | dict[str, frozenset[str]]) -> frozenset[str]:
        return self._held[holders][1] if isinstance(holders, str) else _union(holders)

    def _publish(self, touched: set[str]) -> None:
        """Replace ``_out`` by a new mapping only when an address's networks really changed."""
        new: dict[str, frozenset[str]] | None = None
        changed: list[str] = []
        for address in touched:
            holders = self._by_address.get(address)
            value = self._networks(holders) if holders else None
            if value == self._out.get(address):
                continue
            if new is None:
                new = dict(self._out)
            if value is None:
                new.pop(address, None)
            else:
                new[address] = value
            changed.append(address)
        if new is not None:
            self._out = new
            self.generation += 1
            self._history.append((self.generation, frozenset(changed)))
            self._history_addresses += len(changed)
            while len(self._history) > KEPT_GENERATIONS or self._history_addresses > KEPT_CHANGED_ADDRESSES:
                self._history_addresses -= len(self._history.popleft()[1])


def _union(held: dict[str, frozenset[str]]) -> frozenset[str]:
    if len(held) == 1:  # the common case: its service's own set, not a copy per address (issue 19)
        for nets in held.values():
            return nets
    out: frozenset[str] = frozenset()
    for nets in held.values():
        out |= nets
    return out


def shared_index(board: Any) -> TaskNetworkIndex:
    """The node's one index, kept on its board (``LocalBoard.task_networks``) by whichever member
    service asks first."""
    index = board.task_networks
    if index is None:
        index = board.task_networks = TaskNetworkIndex()
    assert isinstance(index, TaskNetworkIndex)
    return index
