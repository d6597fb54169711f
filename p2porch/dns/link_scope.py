"""The compiled zone of a linking service's scope: its link names over its network scope's zone (pure).

A task of a service with Compose links sees its network scope's zone plus the link aliases
(`scope.scoped_zone` with a ``linker``). Compiling and merging that whole zone again per linking service
and burst costs as much as a network scope; `link_zone` compiles only the names the links change and
layers them over the network scope's compiled zone (`LayeredNames`): a name the links hide (the slot
names, ``tasks.`` and SRV names of the network alias a link replaced, where the link's target lacks
them) is held as absent, every other name is the network scope's own record. The services those
names share a last label with come from the network scope's index of its names (`ViewNames`, kept by
the names that came or went), not a pass over its view; a burst that changed nothing a link scope's
names depend on reuses its compiled part (a message-only burst: O(links) per link scope). No I/O, no
clock.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from typing import TypeVar

from p2porch.dns.zone import (
    CompiledZone,
    Labels,
    NameRecords,
    ZoneData,
    bare_names,
    to_labels,
)
from p2porch.dns.zone_cache import FragmentStore, ZoneCompiler

_K = TypeVar("_K")

#: the labels (before the domain) whose names the zone's base also holds: ``<node>.node`` and ``ns``
_BASE_LAST_LABELS = frozenset({b"node", b"ns"})


class LayeredNames(Mapping[Labels, NameRecords]):
    """``own`` over ``under``: a name in ``own`` is its record there (None: the name is absent), any
    other name is ``under``'s. Owns neither mapping and never changes them."""

    __slots__ = ("own", "under")

    def __init__(self, own: Mapping[Labels, NameRecords | None], under: Mapping[Labels, NameRecords]) -> None:
        self.own = own
        self.under = under

    def __getitem__(self, key: Labels) -> NameRecords:
        if key in self.own:
            rec = self.own[key]
            if rec is None:
                raise KeyError(key)
            return rec
        return self.under[key]

    def get(self, key: Labels, default: NameRecords | None = None) -> NameRecords | None:  # type: ignore[override]
        own = self.own
        if key in own:
            rec = own[key]
            return default if rec is None else rec
        return self.under.get(key, default)

    def __contains__(self, key: object) -> bool:
        if key in self.own:
            return self.own[key] is not None  # type: ignore[index]
        return key in self.under

    def __iter__(self) -> Iterator[Labels]:
        for key, rec in self.own.items():
            if rec is not None:
                yield key
        for key in self.under:
            if key not in self.own:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)


def link_keys(view: ZoneData, under: ZoneData, links: Iterable[tuple[str, str]]) -> list[str]:
    """The names of ``links`` (``(alias, target)``) whose entry in ``view`` (a link scope's zone)
    differs from ``under`` (its network scope's zone: ``view`` without the links), in sorted order."""
    return sorted(
        {
            name
            for name, _ in links
            if name in view.services
            and (
                under.services.get(name) is not view.services[name]
                or under.vips.get(name) != view.vips.get(name)
            )
        }
    )


class ViewNames:
    """The service names of one network scope's successive views, indexed by their last label (before
    the domain) and by their labels: which services a link scope's changed names share a last label
    with, and which service a PTR target names, without a pass over the view's names per burst.

    `follow` keeps it to a view's names by those that came or went (a set difference, in C; nothing when
    handed the same mapping again, as each link scope over one network scope is). Owns its index; never
    reads the views' task lists. Names that are no DNS name are left out (never compiled)."""

    def __init__(self) -> None:
        self._followed: Mapping[str, object] | None = None  # the services mapping last followed
        self._followed_shared: Mapping[str, object] | None = None  # and the shared aliases' mapping
        self._names: set[str] = set()
        self._labels: dict[str, Labels] = {}  # name -> its labels (the names that have some)
        self.by_last: dict[bytes, set[str]] = {}  # last label -> the names ending in it
        self.by_labels: dict[Labels, set[str]] = {}  # labels (without the domain) -> the names (case folds)
        self.generation = 0  # counts the changes of the index

    def follow(self, services: Mapping[str, object], shared: Mapping[str, object] | None = None) -> None:
        """Index ``services``' names (a view's) and its ``shared`` aliases', from the last mappings' by
        the names that differ."""
        if services is self._followed and shared is self._followed_shared:
            return
        self._followed, self._followed_shared = services, shared
        named = services.keys() | shared.keys() if shared else services.keys()
        changed = self._names.symmetric_difference(named)
        if not changed:
            return
        self.generation += 1
        for name in changed:
            if name in self._names:
                self._names.discard(name)
                labels = self._labels.pop(name, None)
                if labels is not None:
                    _remove(self.by_last, labels[-1], name)
                    _remove(self.by_labels, labels, name)
            else:
                self._names.add(name)
                labels = to_labels(name)
                if labels:
                    self._labels[name] = labels
                    self.by_last.setdefault(labels[-1], set()).add(name)
                    self.by_labels.setdefault(labels, set()).add(name)

    def named(self, owner: Labels, domain: Labels) -> set[str]:
        """The names whose owner name (with ``domain``) is ``owner`` (a PTR target)."""
        if len(owner) <= len(domain) or owner[len(owner) - len(domain) :] != domain:
            return set()
        return self.by_labels.get(owner[: len(owner) - len(domain)], set())


def _same(these: tuple[object, ...], those: tuple[object, ...]) -> bool:
    """The same objects, in order."""
    return len(these) == len(those) and all(map(operator.is_, these, those))


def _remove(index: dict[_K, set[str]], key: _K, name: str) -> None:
    held = index[key]
    held.discard(name)
    if not held:
        del index[key]


class LinkCompilers:
    """What one link scope keeps across zones (over the node's ``FragmentStore``): the compilers of its
    link names in the link zone and in the network zone, and of the names they touch; each reuses what
    did not change, by identity, as a resolver's compiler does. ``names``: its network scope's
    `ViewNames` (shared by that scope's link scopes). Keeps the last layered names, reused while the
    compiled parts are the same objects. Never answers queries."""

    def __init__(self, store: FragmentStore, names: ViewNames | None = None) -> None:
        self.linked = ZoneCompiler(store)
        self.replaced = ZoneCompiler(store)
        self.touched = ZoneCompiler(store)
        self.names = names if names is not None else ViewNames()
        self._touched_inputs: object = None  # what `_touched` was compiled from (`_inputs`)
        self._touched = _Touched(set(), set())
        self._part_inputs: object = None  # what `_part` was compiled from
        self._part: CompiledZone | None = None
        self._related_of: tuple[object, ...] = ()  # the touched and reverse names `_related` came from
        self._related_key: tuple[list[str], int] = ([], -1)  # and the changed names, the index generation
        self._related: tuple[list[str], bool] = ([], False)
        self._own_of: tuple[object, ...] = ()  # the compiled names `_own` was taken from
        self._own: tuple[dict[Labels, NameRecords | None], dict[Labels, NameRecords | None]] = ({}, {})

    def close(self) -> None:
        """Let go of the fragments the three compilers hold (the link scope was dropped)."""
        for compiler in (self.linked, self.replaced, self.touched):
            compiler.close()

    def touched_names(self, view: ZoneData, under: ZoneData, changed: list[str]) -> _Touched:
        """Every name ``changed`` hold in ``view`` or ``under`` (`_names_of`): the last set, not compiled
        again, while their entries (by identity, else by value), VIPs, domain and local site are."""
        replaced = [n for n in changed if n in under.services or n in under.shared]
        inputs = (_inputs(view, changed), _inputs(under, replaced))
        if inputs != self._touched_inputs:
            self._touched_inputs = inputs
            mine = self.linked.compile(_part(view, changed))
            theirs = self.replaced.compile(_part(under, replaced))
            self._touched = _names_of(mine) | _names_of(theirs)
        return self._touched

    def part(self, view: ZoneData, related: list[str], with_base: bool) -> CompiledZone:
        """``view``'s ``related`` services (and its base names when ``with_base``) compiled: the last
        zone, not compiled again, while their input is the same (as `touched_names`)."""
        inputs = (_inputs(view, related), (view.nodes, tuple(view.nameservers)) if with_base else None)
        if inputs != self._part_inputs or self._part is None:
            self._part_inputs = inputs
            self._part = self.touched.compile(
                replace(_part(view, related), nodes=view.nodes, nameservers=view.nameservers)
                if with_base
                else _part(view, related)
            )
        return self._part

    def related(
        self, changed: list[str], touched: _Touched, compiled: CompiledZone
    ) -> tuple[list[str], bool]:
        """`_related`'s answer: the last one while its input is the same (the touched names and the
        network scope's reverse names the same objects, the index unchanged)."""
        of = (touched, compiled.reverse)
        key = (changed, self.names.generation)
        if not _same(of, self._related_of) or key != self._related_key:
            self._related_of, self._related_key = of, key
            self._related = _related(changed, touched, compiled, self.names)
        return self._related

    def own(
        self, part: CompiledZone, touched: _Touched
    ) -> tuple[dict[Labels, NameRecords | None], dict[Labels, NameRecords | None]]:
        """The names and reverse names the link scope lays over its network scope's (None: absent)."""
        of = (part.names, part.reverse, touched)
        if not _same(of, self._own_of):
            self._own_of = of
            self._own = (
                {n: part.names.get(n) for n in touched.names},
                {n: part.reverse.get(n) for n in touched.reverse},
            )
        return self._own


def link_zone(
    view: ZoneData,
    under: ZoneData,
    compiled: CompiledZone,
    compilers: LinkCompilers,
    links: Iterable[tuple[str, str]],
) -> CompiledZone:
    """The ``CompiledZone`` of ``view`` (answers equal to ``compile_zone(view)``), given ``under``, the
    network scope's zone that ``view`` extends by ``links`` (the linking service's), and ``compiled``,
    ``under``'s compiled zone.

    Only the names of the services whose entry the links changed are compiled again: every name any
    of them holds in either zone shares its last label (before the domain) with that service, so those
    names are compiled from every service with that last label (and the base names when it is
    ``node`` or ``ns``); every reverse name of their addresses from every service holding one of them
    (found from ``compiled``'s PTR targets). Those services come from ``compilers.names``, the index of
    ``under``'s names (``view``'s others are the changed ones). Cost: those services' tasks and names,
    not the zone's; a burst that changed none of them reuses the compiled parts (identity checks)."""
    changed = link_keys(view, under, links)
    domain = compiled.domain
    if not changed:
        return compiled
    compilers.names.follow(under.services, under.shared)
    touched = compilers.touched_names(view, under, changed)
    related, with_base = compilers.related(changed, touched, compiled)
    part = compilers.part(view, related, with_base)
    own_names, own_reverse = compilers.own(part, touched)
    names = LayeredNames(own_names, compiled.names)
    reverse = LayeredNames(own_reverse, compiled.reverse)
    return CompiledZone(
        domain=domain,
        names=names,
        reverse=reverse,
        serial=view.version & 0xFFFFFFFF,
        skipped=compiled.skipped,  # the network scope's: a link's odd entries are not listed again
        bare=bare_names(view, domain, names),
    )


def _related(
    changed: list[str], touched: _Touched, compiled: CompiledZone, index: ViewNames
) -> tuple[list[str], bool]:
    """The services (sorted) whose names the link scope compiles again: ``changed``, those sharing a
    last label with a ``touched`` name, those the network scope's PTR records of the ``touched`` reverse
    names point at (``index``: the network scope's names); and whether the base names join them (a last
    label ``node`` or ``ns``)."""
    domain = compiled.domain
    last = {labels[-1 - len(domain)] for labels in touched.names if len(labels) > len(domain)}
    related: set[str] = set(changed)
    for label in last:
        related |= index.by_last.get(label, set())
    for rev in touched.reverse:
        rec = compiled.reverse.get(rev)
        for target in rec.ptr if rec is not None else ():
            related |= index.named(target, domain)  # a VIP's PTR names its service
            related |= index.named(target[1:], domain)  # a task's PTR its slot under its service
    return sorted(related), not last.isdisjoint(_BASE_LAST_LABELS)


class _Touched:
    __slots__ = ("names", "reverse")

    def __init__(self, names: set[Labels], reverse: set[Labels]) -> None:
        self.names = names
        self.reverse = reverse

    def __or__(self, other: _Touched) -> _Touched:
        return _Touched(self.names | other.names, self.reverse | other.reverse)


def _part(zone: ZoneData, services: list[str]) -> ZoneData:
    """``services`` of ``zone`` alone (no base names); a shared alias among them with its holders (whose
    own names come along: more names than asked for, each as ``zone`` has it)."""
    shared = {name: zone.shared[name] for name in services if name in zone.shared} if zone.shared else {}
    if shared:
        services = sorted(n for n in set(services).union(*shared.values()) if n in zone.services)
    return ZoneData(
        domain=zone.domain,
        services={name: zone.services[name] for name in services},
        version=zone.version,
        local_site=zone.local_site,
        vips={name: zone.vips[name] for name in services if name in zone.vips},
        shared=shared,
    )


def _inputs(zone: ZoneData, services: list[str]) -> tuple[object, ...]:
    """What the compiled names of ``services`` of ``zone`` (`_part`) depend on; equal inputs compile
    to equal names (a tuple compares its entry lists by identity first, then by value)."""
    if zone.shared and any(name in zone.shared for name in services):
        part = _part(zone, services)
        return (zone.domain, zone.local_site, part.services, part.vips, part.shared)
    return (
        zone.domain,
        zone.local_site,
        tuple(services),
        tuple(zone.services[name] for name in services),
        tuple(zone.vips.get(name) for name in services),
    )


def _names_of(part: CompiledZone) -> _Touched:
    """Every owner and reverse name ``part`` holds (with their ancestors), the apex not."""
    return _Touched({n for n in part.names if n != part.domain}, set(part.reverse))
