"""One node's isolation plan kept from address changes: the sets change one address at a time (pure).

``plan_policy`` walks every task address of the cluster to build the sets, O(task addresses) per
change (0.12 s at 100,000 tasks, issue 19). :class:`KeptPolicy` holds the planned sets' members and
the local task addresses and is told which addresses changed (``set_address``); the rule text
(O(local tasks)) is remade only when a local address or its networks changed. Each new plan carries
the set edits since its predecessor (:class:`~p2porch.netoverlay.netpolicy.SetEdits`), which is what
the firewall writes between its periodic resyncs. A network that gains its first local task has its
set filled by one walk of the mapping (a new planned set is O(its members)). Property-tested equal to
``plan_policy`` over the same mapping after random change sequences. Never does I/O or reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from .. import ipv4
from .netpolicy import (
    POLICY_CHAINS,
    TASKS_SET,
    PolicyPlan,
    SetEdits,
    inside,
    network_set,
    plan_rules,
    valid_addresses,
)


class KeptPolicy:
    """The plan of one node for one cluster CIDR, lease and set of internal networks."""

    def __init__(
        self,
        cluster_cidr: str,
        local_subnet: str,
        internal: frozenset[str],
        addresses: Mapping[str, frozenset[str]],
    ) -> None:
        self.cluster_cidr, self.local_subnet, self.internal = cluster_cidr, local_subnet, internal
        self._cluster = ipv4.network_mask(cluster_cidr)
        self._lease = ipv4.network_mask(local_subnet)
        members = valid_addresses(addresses, cluster_cidr)
        self._tasks: set[str] = set(members)  # every valid address (p2p-tasks, when planned)
        self._local: dict[str, frozenset[str]] = {a: n for a, n in members.items() if self._is_local(a)}
        self._local_nets: dict[str, int] = {}  # network -> how many local addresses are on it
        for nets in self._local.values():
            for net in nets:
                self._local_nets[net] = self._local_nets.get(net, 0) + 1
        self._by_net: dict[str, set[str]] = {n: set() for n in self._local_nets}  # planned networks only
        for address, nets in members.items():
            for net in nets:
                found = self._by_net.get(net)
                if found is not None:
                    found.add(address)
        self._names = {n: network_set(n) for n in self._by_net}  # network -> its set's name
        self._by_name = {self._names[n]: found for n, found in self._by_net.items()}
        self._added: dict[str, set[str]] = {}
        self._removed: dict[str, set[str]] = {}
        self._fresh: set[str] = set()  # set names planned since the last plan: written whole
        self._rules = plan_rules(cluster_cidr, local_subnet, self._local, internal)
        self._dirty = self._rules_dirty = False
        self.generation = 0
        self._plan = PolicyPlan(*self._rules_plan(), edits=None, sets_token=object())

    def _is_local(self, address: str) -> bool:
        return ipv4.number(address) & self._lease[1] == self._lease[0]

    def _rules_plan(self) -> tuple[str, tuple[str, ...], int, KeptSets]:
        return self._rules[0], POLICY_CHAINS, self._rules[1], KeptSets(self, self.generation)

    def set_address(
        self, address: str, networks: frozenset[str] | None, addresses: Mapping[str, frozenset[str]]
    ) -> None:
        """``address`` now has ``networks`` (None or empty: no task holds it); ``addresses`` is the whole
        mapping it was read from (walked only when a network gains its first local task)."""
        nets = networks if networks and inside(address, *self._cluster) else None
        if nets is None:
            if address in self._tasks:
                self._tasks.discard(address)
                self._edit(TASKS_SET, address, add=False)
        elif address not in self._tasks:
            self._tasks.add(address)
            self._edit(TASKS_SET, address, add=True)
        for net, found in self._by_net.items():
            want = nets is not None and net in nets
            if want and address not in found:
                found.add(address)
                self._edit(self._names[net], address, add=True)
            elif not want and address in found:
                found.discard(address)
                self._edit(self._names[net], address, add=False)
        if nets is None and address in self._local or nets is not None and self._is_local(address):
            self._set_local(address, nets, addresses)

    def _set_local(
        self, address: str, nets: frozenset[str] | None, addresses: Mapping[str, frozenset[str]]
    ) -> None:
        old = self._local.get(address)
        if old == nets:
            return
        self._dirty = self._rules_dirty = True
        had_tasks = bool(self._local)
        if nets is None:
            del self._local[address]
        else:
            self._local[address] = nets
        for net in old or ():
            self._local_nets[net] -= 1
            if not self._local_nets[net]:
                del self._local_nets[net], self._by_net[net]
                name = self._names.pop(net)
                del self._by_name[name]
                self._drop(name)
        for net in nets or ():
            count = self._local_nets.get(net, 0)
            self._local_nets[net] = count + 1
            if not count:  # its set is planned from now on: filled by one walk
                self._by_net[net] = {
                    a for a, n in addresses.items() if net in n and inside(a, *self._cluster)
                }
                self._names[net] = name = network_set(net)
                self._by_name[name] = self._by_net[net]
                self._drop(name)
                self._fresh.add(name)
        if bool(self._local) != had_tasks:
            self._drop(TASKS_SET)
            if self._local:
                self._fresh.add(TASKS_SET)

    def _drop(self, name: str) -> None:
        self._added.pop(name, None)
        self._removed.pop(name, None)
        self._fresh.discard(name)
        self._dirty = True

    def _edit(self, name: str, address: str, *, add: bool) -> None:
        if name in self._fresh or (name == TASKS_SET and not self._local):
            return  # written whole, or not planned
        self._dirty = True
        mine, other = (self._added, self._removed) if add else (self._removed, self._added)
        undone = other.get(name)
        if undone is not None and address in undone:
            undone.discard(address)  # back to what the previous plan holds
        else:
            mine.setdefault(name, set()).add(address)

    def plan(self) -> PolicyPlan:
        """The current plan: the very same object while nothing changed since the last call."""
        if not self._dirty:
            return self._plan
        edits = SetEdits(
            since=self._plan.sets_token,
            added={n: frozenset(a) for n, a in self._added.items() if a}
            | {n: frozenset(self._members(n)) for n in self._fresh},
            removed={n: frozenset(a) for n, a in self._removed.items() if a},
            fresh=frozenset(self._fresh),
        )
        self._added, self._removed, self._fresh, self._dirty = {}, {}, set(), False
        if self._rules_dirty:  # a local address or its networks changed
            self._rules = plan_rules(self.cluster_cidr, self.local_subnet, self._local, self.internal)
            self._rules_dirty = False
        self.generation += 1
        self._plan = PolicyPlan(*self._rules_plan(), edits=edits, sets_token=object())
        return self._plan

    def names(self) -> list[str]:
        """The planned set names, sorted."""
        return sorted([*self._by_name, TASKS_SET] if self._local else self._by_name)

    def _members(self, name: str) -> set[str]:
        if name == TASKS_SET and self._local:
            return self._tasks
        return self._by_name[name]


class KeptSets(Mapping[str, frozenset[str]]):
    """A kept plan's sets, read from its :class:`KeptPolicy` (O(members) per set read): only while that
    plan is the latest (a later plan's edits already changed the members; reading raises)."""

    def __init__(self, owner: KeptPolicy, generation: int) -> None:
        self._owner, self._generation = owner, generation

    def _live(self) -> KeptPolicy:
        if self._owner.generation != self._generation:
            raise RuntimeError("the sets of a superseded isolation plan were read")
        return self._owner

    def __getitem__(self, name: str) -> frozenset[str]:
        return frozenset(self._live()._members(name))

    def __iter__(self) -> Iterator[str]:
        return iter(self._live().names())

    def __len__(self) -> int:
        return len(self._live().names())

    def __repr__(self) -> str:
        return f"KeptSets(generation={self._generation})"
