"""The zone's base names (the apex, ``ns.<domain>`` and every ``<node>.node.<domain>``) kept per node (pure).

``compile_base`` compiles every node's name again (``to_labels`` and an ``IPv4Address`` parse each), and
every resolver of every member compiled it, and merged its whole zone again, whenever a node came, went
or moved: a join cost every member O(nodes) per resolver (issue 19). ``BaseNames`` keeps each node's
owner name and which nodes hold each name, and on a new zone compiles only the nodes whose entry came,
went or changed address, handing back the names whose record changed (``ZoneCompiler`` patches its last
merge with them); its names equal ``compile_base``'s by value (tested on random sequences of node
changes).
"""

from __future__ import annotations

import bisect

from .zone import Labels, NameRecords, ZoneData, nameserver_records, node_owner

#: what ``BaseNames.update`` hands back: each changed name's record before it (None: it did not exist)
BaseDelta = dict[Labels, NameRecords | None]


class BaseNames:
    """The base names of one compiler's successive zones, kept per node.

    Owns ``names`` (what ``compile_base`` builds, by value) and ``skipped``. A name's record is never
    mutated once in ``names``: a changed name gets a new ``NameRecords`` (the merged zones handed out
    share these records). Never reads anything but the zone's domain, nameservers and nodes."""

    def __init__(self) -> None:
        self.names: dict[Labels, NameRecords] = {}
        self.skipped: tuple[str, ...] = ()
        self.compiled_nodes = 0  # nodes whose names the last update compiled (all of them on a rebuild)
        self._key: tuple[str, tuple[str, ...]] | None = None  # (domain, nameservers) compiled for
        self._domain: Labels = ()
        self._nodes: dict[str, str] = {}  # node -> address, as last compiled
        self._owner: dict[str, Labels] = {}  # node -> its owner name (the nodes not skipped)
        self._holders: dict[Labels, list[str]] = {}  # owner name -> its nodes, sorted (case folds)
        self._below: dict[Labels, int] = {}  # empty non-terminal -> owner names under it
        self._skipped: set[str] = set()

    def update(self, zone: ZoneData, domain: Labels) -> BaseDelta | None:
        """Bring ``names`` to ``zone``'s base names. Returns the names that changed with their previous
        records (empty: none), or None when everything was compiled again (the first zone, a new domain
        or nameserver list)."""
        key = (zone.domain, tuple(zone.nameservers))
        if key != self._key:
            self._rebuild(zone, domain, key)
            return None
        nodes = zone.nodes
        if nodes == self._nodes:
            self.compiled_nodes = 0
            return {}
        changed = {name for name, _ in self._nodes.items() ^ nodes.items()}
        self._nodes = dict(nodes)
        self.compiled_nodes = len(changed)
        touched: set[Labels] = set()
        had_skipped = bool(self._skipped)
        for name in changed:
            self._drop(name, touched)
        for name in sorted(changed):
            address = nodes.get(name)
            if address is not None:
                self._add(name, address, zone.domain, touched)
        if had_skipped or self._skipped:  # few (a node named or addressed oddly)
            self.skipped = tuple(f"node {name!r}" for name in sorted(self._skipped))
        delta: BaseDelta = {}
        for labels in touched:
            delta[labels] = self.names.get(labels)
            rec = self._record(labels)
            if rec is None:
                self.names.pop(labels, None)
            else:
                self.names[labels] = rec
        return delta

    def _rebuild(self, zone: ZoneData, domain: Labels, key: tuple[str, tuple[str, ...]]) -> None:
        self._key, self._domain, self._nodes = key, domain, {}
        self._owner, self._holders, self._below, self._skipped = {}, {}, {}, set()
        self.names = {domain: NameRecords()}
        ns = nameserver_records(zone)
        if ns is not None:
            self.names[(b"ns",) + domain] = ns
        self.update(zone, domain)
        self.compiled_nodes = len(zone.nodes)

    def _drop(self, name: str, touched: set[Labels]) -> None:
        self._skipped.discard(name)
        owner = self._owner.pop(name, None)
        if owner is None:
            return
        holders = self._holders[owner]
        holders.remove(name)
        if not holders:
            del self._holders[owner]
        touched.add(owner)
        for labels in self._ancestors(owner):
            left = self._below[labels] - 1
            if left:
                self._below[labels] = left
            else:
                del self._below[labels]
            touched.add(labels)

    def _add(self, name: str, address: str, domain_text: str, touched: set[Labels]) -> None:
        owner = node_owner(name, address, domain_text, self._domain)
        if owner is None:
            self._skipped.add(name)
            return
        self._owner[name] = owner
        bisect.insort(self._holders.setdefault(owner, []), name)
        touched.add(owner)
        for labels in self._ancestors(owner):
            self._below[labels] = self._below.get(labels, 0) + 1
            touched.add(labels)

    def _ancestors(self, owner: Labels) -> list[Labels]:
        """The names between ``owner`` and the apex (``name_maker`` creates them: empty non-terminals)."""
        return [owner[i:] for i in range(1, len(owner) - len(self._domain))]

    def _record(self, labels: Labels) -> NameRecords | None:
        holders = self._holders.get(labels)
        if holders:
            return NameRecords(a=[self._nodes[name] for name in holders])
        if labels in self._below or labels == self._domain:
            return NameRecords()
        return None
