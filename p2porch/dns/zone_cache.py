"""Incremental zone compilation: reuse the compiled names of every service whose input did not change (pure).

``compile_zone`` walks every task of every service: 6 s at 100,000 tasks on the development machine,
paid by every node on every burst of commits. ``ZoneCompiler.compile`` gives the same ``CompiledZone``
(equal by value; tested on seeded random change sequences) but compiles only the services whose input
(name, task entries, VIP, local site, domain) changed since its previous call and merges the per-service
fragments. Fragments own disjoint names except empty non-terminals (a stack's ``<stack>`` label under
several ``<short>.<stack>`` aliases) and PTR names of shared addresses (an alias answers its service's
tasks); those merge as the full compile would build them. Any other collision (a service named ``ns``
or like an alias's stack label) falls back to ``compile_zone``. A service whose entries changed is
patched per entry that came or went (``zone_patch.ServiceIndex``: entries told apart by identity, as
``ZoneBuilder`` keeps an unchanged task's entry object), not compiled again, unless more entries changed
than it holds or it cannot be indexed. Never mutates a fragment's records once cached (its index moves to
the fragment that replaces it). The merged zone is patched too (``_merge_changed``): a copy of the last
merged names with only the changed services' names and the changed base names (a node's join, leave or
move: ``zone_base.BaseNames`` compiles that node alone) taken out and put in (the full merge of ~100,000
names cost ~0.1 CPU-s per change on the trio thread, issue 19); a change touching a name two fragments
share other than an empty one (a shared PTR name, a collision), a new domain or nameserver list, or many
services or nodes merges everything again. A merged zone handed out is never changed afterwards. A
node's resolvers share one ``FragmentStore``: a service the default and a scoped zone both hold (the same
list object) is compiled and patched once per node. A shared network alias (``ZoneData.shared``) is one
more fragment, after the services', kept by its compiler while its holders' entries and VIPs are the same.
A zone over the last one's service names in the same context (a burst of reports) walks the last sorted
order and store keys again and hands the services whose fragment changed to the merge, not sorted,
keyed and compared again (~20 % of a report burst's compile at 1,000 services).
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from p2porch.errors import ConfigError

from .zone import (
    CompiledZone,
    Labels,
    NameRecords,
    TaskEntry,
    ZoneData,
    bare_names,
    compile_service,
    compile_shared,
    compile_zone,
    compiled_zone,
    name_maker,
    to_labels,
)
from .zone_base import BaseDelta, BaseNames
from .zone_patch import ServiceIndex

#: a patch replacing more entries than this (or than the service holds) compiles the service whole
_PATCH_MIN = 16


@dataclass(frozen=True, slots=True)
class _Fragment:
    entries: Sequence[TaskEntry]  # the input it was compiled from (compared by identity, then value)
    vip: str
    full: dict[Labels, NameRecords]  # its names with records
    empty: dict[Labels, NameRecords]  # its empty names (ancestors, empty non-terminals: shared)
    reverse: dict[Labels, NameRecords]
    skipped: tuple[str, ...]
    index: ServiceIndex | None = None  # None: compiled by compile_service, not patchable


def _empty(rec: NameRecords) -> bool:
    return not (rec.a or rec.srv or rec.ptr or rec.rotate)


FragmentKey = tuple[str, str, str]  # (domain, local site, service name)

#: a shared alias's fragment is merged under this prefix and its name (no service name starts with NUL)
_SHARED = "\x00"


@dataclass(frozen=True, slots=True)
class _Merged:
    """The last merged zone and what patching it needs: the fragments (by service name, in sorted order)
    it was merged from, which services' fragments hold each empty name (sorted by service name: the
    first one's record is the merged one unless the base or a fragment holds the name with records), and
    the base names' skipped entries."""

    zone: CompiledZone
    fragments: dict[str, _Fragment]
    empty_owners: dict[Labels, list[str]]
    base_skipped: tuple[str, ...]


class FragmentStore:
    """The compiled fragments of one node's resolvers (the default one and each scope), one per
    (domain, local site, service name): a service a scope shares with the default zone (the same
    entries list, as ``scoped_zone`` hands it on) is compiled, patched and kept once, not once per
    resolver (issue 19: ~1.3 KB a task per copy). Each ``ZoneCompiler`` holds the keys of its last
    zone until it is closed (its scope dropped); a fragment no compiler holds is dropped. Only a
    compiler replaces a fragment, and only the one stored (its index moves to the replacement); never
    mutates a fragment's records."""

    def __init__(self) -> None:
        self.fragments: dict[FragmentKey, _Fragment] = {}
        self._holders: dict[FragmentKey, int] = {}  # key -> compilers whose last zone holds it

    def hold(self, keys: Iterable[FragmentKey]) -> None:
        for key in keys:
            self._holders[key] = self._holders.get(key, 0) + 1

    def release(self, keys: Iterable[FragmentKey]) -> None:
        for key in keys:
            left = self._holders[key] - 1
            if left:
                self._holders[key] = left
            else:
                del self._holders[key]
                self.fragments.pop(key, None)


class ZoneCompiler:
    """Compiles successive zones of one resolver: per-service fragments from ``store`` (shared with
    the node's other resolvers when given, else its own), merged into each zone."""

    def __init__(self, store: FragmentStore | None = None) -> None:
        self.store = store if store is not None else FragmentStore()
        self._keys: set[FragmentKey] = set()  # the store keys of the last zone (held)
        self._order: list[str] = []  # the last zone's service names, sorted
        self._names: set[str] = set()  # and as a set
        self._last: _Merged | None = None  # the last merged zone
        self._context: tuple[str, str] = ("", "")  # (domain, local site) of the last zone
        self.compiled_services = 0  # services compiled by the last call (0: every fragment reused)
        self.patched_services = 0  # services patched per changed entry by the last call
        self.full_compiles = 0  # calls that fell back to compile_zone (collisions)
        self.full_merges = 0  # calls that merged every fragment's names again
        self.patched_merges = 0  # calls that patched the last merged names by the changed services
        self.base = BaseNames()  # the apex, nameserver and node names, kept per node
        self._shared: dict[str, tuple[tuple[object, ...], _Fragment]] = {}  # alias -> (input, fragment)

    def close(self) -> None:
        """Let go of the last zone's fragments (the store drops those no other compiler holds): call it
        when this compiler's resolver or scope is dropped. A later `compile` starts afresh."""
        self.store.release(self._keys)
        self._keys = set()
        self._order, self._names = [], set()
        self._last = None
        self._shared = {}

    def compile(self, zone: ZoneData) -> CompiledZone:
        """The same value ``compile_zone(zone)`` returns. A compile that raised partway is forgotten (its
        names were recorded, not its merged zone): the next one merges every fragment again."""
        try:
            return self._compile(zone)
        except BaseException:
            self._last = None
            self._order, self._names = [], set()
            raise

    def _compile(self, zone: ZoneData) -> CompiledZone:
        domain = to_labels(zone.domain)
        if not domain:
            raise ConfigError(f"invalid DNS domain {zone.domain!r}", field="domain")
        if zone.shared and any(_SHARED + alias in zone.services for alias in zone.shared):
            self.close()  # a service named like a shared alias's fragment (a NUL first): never in practice
            self.full_compiles += 1
            return compile_zone(zone)
        stored = self.store.fragments
        fragments: dict[str, _Fragment] = {}
        self.compiled_services = self.patched_services = 0
        context = (zone.domain, zone.local_site)
        mine = self._last.fragments if self._last is not None and self._context == context else {}
        self._context = context
        # the last zone's service names in this context (a burst of reports): its order and store keys
        # again, not sorted and hashed again (issue 19, the twenty-eighth round)
        same = bool(mine) and zone.services.keys() == self._names
        if same:
            order, keys = self._order, self._keys
        else:
            order = self._order = sorted(zone.services)
            self._names = set(order)
            keys = {(zone.domain, zone.local_site, service) for service in order}
        changed: list[str] = []  # the services whose fragment is not the last zone's
        for service in order:
            entries, vip = zone.services[service], zone.vips.get(service, "")
            key = (zone.domain, zone.local_site, service)
            frag = mine.get(service)
            if frag is not None and frag.entries is entries and frag.vip == vip:
                # this very list's fragment, whatever the store holds now: a name two compilers give
                # different lists (two stacks' short name "db" in two scopes) would replace the stored
                # one on every compile. Each keeps its own; the store gets a copy without the index
                # (another compiler may have patched this one: its index moved), used as it is or
                # compiled again, never patched
                fragments[service] = frag
                other = stored.get(key)
                if other is not frag and (other is None or other.entries is not entries):
                    stored[key] = replace(frag, index=None)
                continue
            frag = had = stored.get(key)
            if frag is not None and frag.vip == vip and frag.entries is not entries:
                frag = self._patch(frag, entries)
            elif frag is not None and frag.vip != vip:
                frag = None
            if frag is None:
                frag = self._compile_one(zone, service, domain, entries, vip)
                self.compiled_services += 1
            if frag is not had:
                stored[key] = frag
            fragments[service] = frag
            if frag is not mine.get(service):
                changed.append(service)
        known = same and not zone.shared and not self._shared  # else the changes are found by a walk
        if zone.shared:
            self._shared_fragments(zone, domain, fragments)
        elif self._shared:
            self._shared = {}
        if keys is not self._keys:
            self.store.hold(keys - self._keys)
            self.store.release(self._keys - keys)
            self._keys = keys
        last = self._last
        base_delta = self.base.update(zone, domain)  # None: compiled again whole
        if (
            last is not None
            and base_delta == {}
            and last.base_skipped == self.base.skipped  # (a node skipped came or went: no name changed)
            and (
                not changed
                if known
                else last.fragments.keys() == fragments.keys()
                and all(map(operator.is_, last.fragments.values(), fragments.values()))
            )
        ):
            # every service reused (a burst of reports that changed only messages): the same names
            names = last.zone.names
            zone_now = replace(
                last.zone, serial=zone.version & 0xFFFFFFFF, bare=bare_names(zone, domain, names)
            )
            self._last = replace(last, zone=zone_now)
            return zone_now
        merged = (
            self._merge_changed(zone, domain, fragments, last, base_delta, changed if known else None)
            if base_delta is not None and last
            else None
        )
        if merged is not None:
            self.patched_merges += 1
        else:
            merged = self._merge(zone, domain, fragments)
            self.full_merges += 1
        if merged is None:
            self.full_compiles += 1
            self._last = None
            return compile_zone(zone)
        self._last = merged
        return merged.zone

    def _shared_fragments(self, zone: ZoneData, domain: Labels, fragments: dict[str, _Fragment]) -> None:
        """Add the fragment of each of ``zone.shared`` (an alias several services hold) to ``fragments``,
        after the services' (``compile_zone``'s order): the last one, not compiled again, while its
        holders' entries (by identity, else by value), VIPs, domain and local site are the same. Kept
        by this compiler alone (few: not in the node's store)."""
        kept: dict[str, tuple[tuple[object, ...], _Fragment]] = {}
        for alias in sorted(zone.shared):
            holders = zone.shared[alias]
            inputs = (
                zone.domain,
                zone.local_site,
                holders,
                tuple(zone.services.get(h) for h in holders),
                tuple(zone.vips.get(h) for h in holders),
            )
            had = self._shared.get(alias)
            if had is not None and had[0] == inputs:
                frag = had[1]
            else:
                names: dict[Labels, NameRecords] = {}
                skipped: list[str] = []
                compile_shared(zone, alias, domain, name_maker(names, domain), skipped)
                full = {labels: rec for labels, rec in names.items() if not _empty(rec)}
                empty = {labels: rec for labels, rec in names.items() if _empty(rec)}
                frag = _Fragment((), "", full, empty, {}, tuple(skipped))
                self.compiled_services += 1
            kept[alias] = (inputs, frag)
            fragments[_SHARED + alias] = frag
        self._shared = kept

    def _patch(self, frag: _Fragment, entries: Sequence[TaskEntry]) -> _Fragment | None:
        """``frag`` for ``entries`` (the same service, VIP and context): kept when equal, patched per
        entry that came or went when indexed; None: compile it whole."""
        if frag.index is None:
            return replace(frag, entries=entries) if frag.entries == entries else None
        changed = frag.index.changes(entries)
        if changed is None:
            return None  # one entry object twice: told apart by identity no longer
        gone, came = changed
        if not gone and not came:
            return replace(frag, entries=entries)
        if len(gone) + len(came) > max(_PATCH_MIN, len(entries)):
            # equal by value: the records stay, the index (filed by the old entries' ids) goes
            return replace(frag, entries=entries, index=None) if frag.entries == entries else None
        patched = frag.index.patch(gone, came, frag.full, frag.reverse)
        if patched is None:
            return None
        full, empty, reverse = patched
        self.patched_services += 1
        return _Fragment(entries, frag.vip, full, empty, reverse, (), frag.index)

    @staticmethod
    def _compile_one(
        zone: ZoneData, service: str, domain: Labels, entries: Sequence[TaskEntry], vip: str
    ) -> _Fragment:
        # an entry object listed twice cannot be told apart by identity: compiled, not indexed
        distinct = len(set(map(id, entries))) == len(entries)
        built = ServiceIndex.build(zone, service, domain, entries, vip) if distinct else None
        if built is not None:
            index, named, unnamed, pointers = built
            return _Fragment(entries, vip, named, unnamed, pointers, (), index)
        names: dict[Labels, NameRecords] = {}
        reverse: dict[Labels, NameRecords] = {}
        skipped: list[str] = []
        compile_service(zone, service, domain, name_maker(names, domain), reverse, skipped)
        full = {labels: rec for labels, rec in names.items() if not _empty(rec)}
        empty = {labels: rec for labels, rec in names.items() if _empty(rec)}
        return _Fragment(entries, vip, full, empty, reverse, tuple(skipped))

    def _merge(self, zone: ZoneData, domain: Labels, fragments: dict[str, _Fragment]) -> _Merged | None:
        # Taken name by name in sorted service order after the base names (compile_zone's order), a
        # name's records are the one non-empty record given for it (two: a collision, compile_zone
        # decides), else the first empty one. Built with dict updates (C), not a loop per name: every
        # fragment shares the apex's ancestors, so the names are never disjoint (issue 19).
        base, skipped = self.base.names, list(self.base.skipped)
        names: dict[Labels, NameRecords] = {}
        for frag in reversed(fragments.values()):  # the first fragment's empty record wins
            names.update(frag.empty)
        names.update(base)  # the base names come first
        full = {labels: rec for labels, rec in base.items() if not _empty(rec)}
        for frag in fragments.values():
            count = len(full)
            full.update(frag.full)
            if len(full) != count + len(frag.full):
                return None  # two records on one name: compile_zone decides
        names.update(full)
        reverse: dict[Labels, NameRecords] = {}
        for frag in fragments.values():  # in sorted service order, as compile_zone adds them
            if reverse.keys().isdisjoint(frag.reverse):
                reverse.update(frag.reverse)
            else:
                for labels, rec in frag.reverse.items():
                    have = reverse.get(labels)
                    reverse[labels] = rec if have is None else NameRecords(ptr=have.ptr + rec.ptr)
            skipped.extend(frag.skipped)
        owners: dict[Labels, list[str]] = {}
        for service, frag in fragments.items():  # in sorted service order: each list sorted
            for labels in frag.empty:
                owners.setdefault(labels, []).append(service)
        compiled = compiled_zone(zone, domain, names, reverse, skipped)
        return _Merged(compiled, dict(fragments), owners, self.base.skipped)

    def _merge_changed(
        self,
        zone: ZoneData,
        domain: Labels,
        fragments: dict[str, _Fragment],
        last: _Merged,
        base_delta: BaseDelta,
        changed: list[str] | None = None,
    ) -> _Merged | None:
        """``_merge``'s result, from ``last`` and the services whose fragment changed, came or went and
        the base names that changed (``base_delta``: a node joined, left or moved): their names taken out
        of a copy of the last names and put in again; a PTR name several services hold is built from
        every fragment holding it. None: merge everything (many services or base names changed, or two
        give records to one name: a collision ``compile_zone`` decides)."""
        before = last.fragments
        if changed is None:  # (given: the services of the last zone, those whose fragment is new)
            changed = [s for s in before.keys() | fragments.keys() if before.get(s) is not fragments.get(s)]
        if len(changed) > 8 + len(fragments) // 8 or len(base_delta) > 64 + len(last.zone.names) // 16:
            return None  # a copy and a patch per name would cost about what the full merge costs
        base = self.base.names
        names = dict(last.zone.names)
        reverse = dict(last.zone.reverse)
        owners = {labels: list(o) for labels, o in last.empty_owners.items()}  # few: shared ancestors
        dirty: set[Labels] = set(base_delta)  # names whose merged record must be decided again
        shared: set[Labels] = set()  # PTR names of several services (or that were) touched by the change
        for labels, rec in base_delta.items():
            if rec is not None and names.get(labels) is rec:
                del names[labels]  # the base's record before (a fragment's records, if any, stay)
        for service in changed:
            old = before.get(service)
            if old is None:
                continue
            for labels, rec in old.full.items():
                if names.get(labels) is not rec:
                    return None
                del names[labels]
                dirty.add(labels)  # an empty record of the base or another fragment may hold it now
            for labels in old.empty:
                held = owners[labels]
                held.remove(service)
                if not held:
                    del owners[labels]
                dirty.add(labels)
            for labels, rec in old.reverse.items():
                if reverse.get(labels) is rec:
                    del reverse[labels]  # its own (a shared name's record is a concatenation)
                else:
                    shared.add(labels)
        for service in changed:
            new = fragments.get(service)
            if new is None:
                continue
            for labels, rec in new.full.items():
                have = names.get(labels)
                if have is not None and not _empty(have):
                    return None  # two records on one name: compile_zone decides
                names[labels] = rec
            for labels in new.empty:
                bisect.insort(owners.setdefault(labels, []), service)
                dirty.add(labels)
            for labels, rec in new.reverse.items():
                if labels in reverse:
                    shared.add(labels)
                else:
                    reverse[labels] = rec
        for labels in dirty:
            have = names.get(labels)
            if have is not None and not _empty(have):
                mine = base.get(labels)
                if mine is not None and mine is not have and not _empty(mine):
                    return None  # a node's name and a service's (a service "node"): compile_zone decides
                continue  # a fragment's records (or the base's) hold it
            if labels in base:
                names[labels] = base[labels]  # the base names come first
            elif labels in owners:
                names[labels] = fragments[owners[labels][0]].empty[labels]
            else:
                names.pop(labels, None)
        for labels in shared:  # rare (an alias answers its service's tasks): concatenated in service order
            records = [frag.reverse[labels] for frag in fragments.values() if labels in frag.reverse]
            if not records:
                reverse.pop(labels, None)
            elif len(records) == 1:
                reverse[labels] = records[0]
            else:
                reverse[labels] = NameRecords(ptr=[p for rec in records for p in rec.ptr])
        skipped = list(self.base.skipped)
        for frag in fragments.values():
            skipped.extend(frag.skipped)
        compiled = compiled_zone(zone, domain, names, reverse, skipped)
        return _Merged(compiled, dict(fragments), owners, self.base.skipped)
