"""One service's compiled names, patched per task entry that came or went (pure).

``compile_service`` walks every task of a service; a burst of reports that toggles a few tasks' health
in most services made each node's resolvers compile ~640 whole services twice (issue 19).
``ServiceIndex`` keeps what ``compile_service`` derives from a service's answerable tasks, ordered as it
orders them (``_task_order``): each A set as its addresses with the least task key holding each, each PTR
name's slot names by task key, each SRV name's targets with a count per slot name, the addresses of
tasks in the local site. A task entry that comes or goes changes only its own slot, PTR and SRV names
and its address's place in the service's ``tasks.`` and round-robin sets; the records of the names it
touched are made again (new objects: a fragment once handed out is never mutated), the rest are kept.
``build`` and ``patch`` give what ``compile_service`` gives (tested against ``compile_zone`` on seeded
random sequences). A service with anything ``compile_service`` would skip, or that a patch could not
place (a slot label ``tasks`` or starting with ``_``, which name the service's own names, or a task at
the VIP's address) is not indexed: ``build`` and ``patch`` return None and the caller compiles it whole.
No I/O, no clock.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from .zone import Labels, NameRecords, TaskEntry, ZoneData, _task_order, reverse_labels, to_labels

Key = tuple[int, int, str, str]
Records = dict[Labels, NameRecords]
Built = tuple["ServiceIndex", Records, Records, Records]  # the index, full, empty and reverse names


_OCTETS = {str(i): str(i).encode() for i in range(256)}  # the canonical decimal octets, shared


def _canonical_reverse(address: str) -> Labels | None:
    """``reverse_labels(address)`` for a canonical dotted quad (every part one of the 256 canonical
    octets: exactly the texts ``IPv4Address`` reads back the same), else None: one address text per
    PTR name, which lets an address's placements stand for its PTR name's."""
    parts = address.split(".")
    if len(parts) == 4:
        try:
            return (_OCTETS[parts[3]], _OCTETS[parts[2]], _OCTETS[parts[1]], _OCTETS[parts[0]]) + _ARPA
        except KeyError:
            pass
    return None


_ARPA = (b"in-addr", b"arpa")


@lru_cache(maxsize=4096, typed=True)
def _slot_labels(slot: int | str) -> Labels | None:
    return to_labels(str(slot))


def _slot_rec(keys: list[Key]) -> NameRecords:
    """A slot name's A set from its tasks' sorted keys: each address once, where first seen (a key's
    last item is its address; one list per slot name, not an ``_Ordered``: most slots hold one task)."""
    return NameRecords(a=list(dict.fromkeys(k[3] for k in keys)), rotate=True)


class _Unplaceable(Exception):
    """An entry ``compile_service`` would skip, or whose names a patch cannot own."""


@dataclass(frozen=True, slots=True)
class _Placed:
    """Where one answerable task entry's records go."""

    key: Key
    address: str
    slot_name: Labels
    rev: Labels
    srv: tuple[tuple[int, bytes], ...]  # its distinct (port, protocol)
    local: bool  # in the zone's local site


def _key(p: _Placed) -> Key:
    return p.key


class _Ordered:
    """Distinct addresses ordered by the least key holding each: an A set as ``compile_service`` fills
    it (tasks in key order, an address appended when first seen). An address's placements, in key
    order, are also its PTR name's slot names (an address has one PTR name: only canonical dotted quads
    are indexed)."""

    __slots__ = ("addrs", "held", "keys")

    def __init__(self) -> None:
        self.keys: list[Key] = []  # each address's least key, sorted (distinct: a key holds its address)
        self.addrs: list[str] = []  # parallel to keys
        self.held: dict[str, list[_Placed]] = {}  # address -> the placements holding it, by key

    def add(self, p: _Placed) -> None:
        addr = p.address
        held = self.held.get(addr)
        if held is None:
            self.held[addr] = [p]
            self._insert(p.key, addr)
            return
        least = held[0].key
        insort(held, p, key=_key)
        if p.key < least:
            self._delete(least)
            self._insert(p.key, addr)

    def append(self, p: _Placed) -> None:
        """``add`` for a key not less than any held (a build in key order)."""
        held = self.held.get(p.address)
        if held is None:
            self.held[p.address] = [p]
            self.keys.append(p.key)
            self.addrs.append(p.address)
        else:
            held.append(p)

    def remove(self, p: _Placed) -> None:
        addr = p.address
        held = self.held[addr]
        least = held[0].key
        del held[bisect_left(held, p.key, key=_key)]  # one of equal keys: the same slot name
        if not held:
            del self.held[addr]
            self._delete(least)
        elif held[0].key != least:
            self._delete(least)
            self._insert(held[0].key, addr)

    def _insert(self, key: Key, addr: str) -> None:
        i = bisect_left(self.keys, key)
        self.keys.insert(i, key)
        self.addrs.insert(i, addr)

    def _delete(self, key: Key) -> None:
        i = bisect_left(self.keys, key)
        del self.keys[i]
        del self.addrs[i]


class ServiceIndex:
    """Owns the ordering of one service's compiled names (one resolver's, one zone context's); changed
    only through ``patch``, which hands back new records for the names it touched."""

    def __init__(self, base: Labels, domain: Labels, vip: str, local_site: str) -> None:
        self.base = base
        self.vip = vip
        self.vip_rev = reverse_labels(vip) if vip else None
        self.local_site = local_site
        self.ancestors: tuple[Labels, ...] = tuple(base[i:] for i in range(1, len(base) - len(domain)))
        self.tasks = _Ordered()
        self.slots: dict[Labels, list[Key]] = {}  # slot name -> the sorted keys of its tasks
        self.srv: dict[tuple[int, bytes], tuple[dict[Labels, int], list[Labels]]] = {}  # counts, sorted
        self.local: dict[str, int] = {}  # address -> answerable tasks in the local site holding it
        self.placed: dict[int, _Placed] = {}  # id(entry) -> its placement (answerable entries only)
        self.quiet: set[int] = set()  # id(entry) of the entries held that are not answerable

    @classmethod
    def build(
        cls, zone: ZoneData, service: str, domain: Labels, entries: Sequence[TaskEntry], vip: str
    ) -> Built | None:
        """The index and the names of ``service`` (what ``compile_service`` adds), or None when it
        cannot be indexed (the caller compiles it with ``compile_service``)."""
        svc = to_labels(service)
        if not svc or to_labels(f"tasks.{service}.{zone.domain}") is None:
            return None
        index = cls(svc + domain, domain, vip, zone.local_site)
        if vip and index.vip_rev is None:
            return None
        try:
            placed = [(id(t), index._place(t)) for t in entries]
        except _Unplaceable:
            return None
        index.quiet = {i for i, p in placed if p is None}
        index._extend(sorted(((i, p) for i, p in placed if p is not None), key=lambda ip: ip[1].key))
        full: Records = {(b"tasks",) + index.base: index._tasks_rec(), index.base: index._service_rec()}
        for name, keys in index.slots.items():
            full[name] = _slot_rec(keys)
        for port in index.srv:
            full[index._srv_name(port)] = index._srv_rec(port)
        reverse: Records = {}
        if index.vip_rev is not None:
            reverse[index.vip_rev] = NameRecords(ptr=[index.base])
        for held in index.tasks.held.values():
            reverse[held[0].rev] = NameRecords(ptr=[p.slot_name for p in held])
        return index, full, index._empty(), reverse

    def changes(self, entries: Sequence[TaskEntry]) -> tuple[list[int], list[TaskEntry]] | None:
        """The ids of the held entries not in ``entries`` and the entries not held (told apart by
        identity); None when one entry object is listed twice."""
        ids = dict(zip(map(id, entries), entries, strict=True))
        if len(ids) != len(entries):
            return None
        held, quiet = self.placed, self.quiet
        gone = [i for i in held.keys() - ids.keys()]
        if quiet:
            gone += quiet - ids.keys()
            return gone, [e for i, e in ids.items() if i not in held and i not in quiet]
        return gone, [e for i, e in ids.items() if i not in held]

    def patch(
        self, gone: Iterable[int], came: Iterable[TaskEntry], full: Records, reverse: Records
    ) -> tuple[Records, Records, Records] | None:
        """New (full, empty, reverse) names after the entries with ids ``gone`` left and ``came``
        joined the service (``full`` and ``reverse`` are the current ones, not changed); None, with the
        index not changed, when an entry that came cannot be placed (compile the service whole)."""
        try:
            arriving = [(id(t), self._place(t)) for t in came]
        except _Unplaceable:
            return None
        slots: set[Labels] = set()
        revs: dict[Labels, str] = {}  # PTR names touched -> their address
        ports: set[tuple[int, bytes]] = set()
        sets_changed = False
        for entry_id in gone:
            place = self.placed.pop(entry_id, None)
            if place is not None:
                self._remove(place, slots, revs, ports)
                sets_changed = True
            else:
                self.quiet.discard(entry_id)
        for key, place in arriving:
            if place is not None:
                self._add(key, place, slots, revs, ports)
                sets_changed = True
            else:
                self.quiet.add(key)
        full = dict(full)
        if sets_changed:
            full[(b"tasks",) + self.base] = self._tasks_rec()
            full[self.base] = self._service_rec()
        for name in slots:
            keys = self.slots.get(name)
            if keys is None:
                full.pop(name, None)
            else:
                full[name] = _slot_rec(keys)
        for port in ports:
            if port in self.srv:
                full[self._srv_name(port)] = self._srv_rec(port)
            else:
                full.pop(self._srv_name(port), None)
        if revs:
            reverse = dict(reverse)
            for name, address in revs.items():
                held = self.tasks.held.get(address)
                if held is None:
                    reverse.pop(name, None)
                else:
                    reverse[name] = NameRecords(ptr=[p.slot_name for p in held])
        return full, self._empty(), reverse

    def _place(self, t: TaskEntry) -> _Placed | None:
        """Where ``t``'s records go (None: not answerable, it has none); raises _Unplaceable."""
        slot = _slot_labels(t.slot)
        rev = _canonical_reverse(t.address)
        if slot is None or len(slot) != 1 or rev is None:
            raise _Unplaceable  # compile_service skips it (and lists it), or not a canonical dotted quad
        if not t.answerable:
            return None
        if slot[0] == b"tasks" or slot[0].startswith(b"_") or rev == self.vip_rev:
            raise _Unplaceable  # names this service's own names: compile_service decides
        srv: set[tuple[int, bytes]] = set()
        for port in t.ports:
            proto = port.protocol.lower().encode("ascii", "replace")
            if not 0 < port.number < 65536 or proto not in (b"tcp", b"udp"):
                raise _Unplaceable
            srv.add((port.number, proto))
        local = bool(self.local_site) and t.site == self.local_site
        return _Placed(_task_order(t), t.address, slot + self.base, rev, tuple(srv), local)

    def _extend(self, placed: list[tuple[int, _Placed]]) -> None:
        """``_add`` each of ``placed`` (in key order) into an empty index, with appends."""
        slots, srv = self.slots, self.srv
        for entry_id, p in placed:
            self.placed[entry_id] = p
            self.tasks.append(p)
            if p.local:
                self.local[p.address] = self.local.get(p.address, 0) + 1
            slot = slots.get(p.slot_name)
            if slot is None:
                slots[p.slot_name] = [p.key]
            else:
                slot.append(p.key)
            for port in p.srv:
                counts, targets = srv.setdefault(port, ({}, []))
                n = counts.get(p.slot_name, 0)
                counts[p.slot_name] = n + 1
                if n == 0:
                    targets.append(p.slot_name)
        for _, targets in srv.values():
            targets.sort()

    def _add(
        self,
        entry_id: int,
        p: _Placed,
        slots: set[Labels],
        revs: dict[Labels, str],
        ports: set[tuple[int, bytes]],
    ) -> None:
        self.placed[entry_id] = p
        self.tasks.add(p)
        if p.local:
            self.local[p.address] = self.local.get(p.address, 0) + 1
        insort(self.slots.setdefault(p.slot_name, []), p.key)
        slots.add(p.slot_name)
        revs[p.rev] = p.address
        for port in p.srv:
            counts, targets = self.srv.setdefault(port, ({}, []))
            n = counts.get(p.slot_name, 0)
            counts[p.slot_name] = n + 1
            if n == 0:
                insort(targets, p.slot_name)
            ports.add(port)

    def _remove(
        self, p: _Placed, slots: set[Labels], revs: dict[Labels, str], ports: set[tuple[int, bytes]]
    ) -> None:
        self.tasks.remove(p)
        if p.local:
            n = self.local[p.address] - 1
            if n:
                self.local[p.address] = n
            else:
                del self.local[p.address]
        slot = self.slots[p.slot_name]
        del slot[bisect_left(slot, p.key)]
        if not slot:
            del self.slots[p.slot_name]
        slots.add(p.slot_name)
        revs[p.rev] = p.address
        for port in p.srv:
            counts, targets = self.srv[port]
            n = counts[p.slot_name] - 1
            if n:
                counts[p.slot_name] = n
            else:
                del counts[p.slot_name]
                del targets[bisect_left(targets, p.slot_name)]
                if not targets:
                    del self.srv[port]
            ports.add(port)

    def _tasks_rec(self) -> NameRecords:
        return NameRecords(a=list(self.tasks.addrs), rotate=True)

    def _service_rec(self) -> NameRecords:
        if self.vip:
            return NameRecords(a=[self.vip])
        if self.local:  # near_tasks: the local site's tasks when it has any
            return NameRecords(a=[a for a in self.tasks.addrs if a in self.local], rotate=True)
        return NameRecords(a=list(self.tasks.addrs), rotate=True)

    def _srv_name(self, port: tuple[int, bytes]) -> Labels:
        return (b"_%d" % port[0], b"_" + port[1]) + self.base

    def _srv_rec(self, port: tuple[int, bytes]) -> NameRecords:
        return NameRecords(srv=[(port[0], t) for t in self.srv[port][1]])

    def _empty(self) -> Records:
        """The empty names: the base's ancestors and ``_<protocol>`` above each SRV name."""
        empty = {name: NameRecords() for name in self.ancestors}
        for proto in {port[1] for port in self.srv}:
            empty[(b"_" + proto,) + self.base] = NameRecords()
        return empty
