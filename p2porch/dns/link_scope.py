"""The compiled zone of a linking service's scope: its link names over its network scope's zone (pure).

A task of a service with Compose links sees its network scope's zone plus the link aliases
(`scope.scoped_zone` with a ``linker``). Compiling and merging that whole zone again per linking service
and burst costs as much as a network scope; `link_zone` compiles only the names the links change and
layers them over the network scope's compiled zone (`LayeredNames`): a name the links hide (the slot
names, ``tasks.`` and SRV names of the network alias a link replaced, where the link's target lacks
them) is held as absent, every other name is the network scope's own record. No I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache

from p2porch.dns.zone import (
    CompiledZone,
    Labels,
    NameRecords,
    ZoneData,
    bare_names,
    to_labels,
)
from p2porch.dns.zone_cache import FragmentStore, ZoneCompiler

_labels_of = lru_cache(maxsize=1 << 16)(to_labels)  # the zone's names, asked again every burst

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


class LinkCompilers:
    """The compilers one link scope keeps across zones (over the node's ``FragmentStore``): its link
    names in the link zone and in the network zone, and the names they touch; each reuses what did
    not change, by identity, as a resolver's compiler does. Never answers queries."""

    def __init__(self, store: FragmentStore) -> None:
        self.linked = ZoneCompiler(store)
        self.replaced = ZoneCompiler(store)
        self.touched = ZoneCompiler(store)

    def close(self) -> None:
        """Let go of the fragments the three compilers hold (the link scope was dropped)."""
        for compiler in (self.linked, self.replaced, self.touched):
            compiler.close()


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
    (found from ``compiled``'s PTR targets). Cost: those services' tasks, not the zone's."""
    changed = link_keys(view, under, links)
    domain = compiled.domain
    if not changed:
        return compiled
    touched = _names_of(view, changed, compilers.linked) | _names_of(
        under, [n for n in changed if n in under.services], compilers.replaced
    )
    last = {labels[-1 - len(domain)] for labels in touched.names if len(labels) > len(domain)}
    by_labels: dict[Labels, list[str]] = {}
    related: set[str] = set(changed)
    for name in view.services:
        labels = _labels_of(name)
        if labels:
            if labels[-1] in last:
                related.add(name)
            by_labels.setdefault(labels + domain, []).append(name)
    for rev in touched.reverse:
        rec = compiled.reverse.get(rev)
        for target in rec.ptr if rec is not None else ():
            related.update(by_labels.get(target, ()))  # a VIP's PTR names its service
            related.update(by_labels.get(target[1:], ()))  # a task's PTR its slot under its service
    with_base = not last.isdisjoint(_BASE_LAST_LABELS)
    part = compilers.touched.compile(
        ZoneData(
            domain=view.domain,
            services={name: view.services[name] for name in related},
            nodes=view.nodes if with_base else {},
            nameservers=view.nameservers if with_base else (),
            version=view.version,
            local_site=view.local_site,
            vips={name: view.vips[name] for name in related if name in view.vips},
        )
    )
    names = LayeredNames({n: part.names.get(n) for n in touched.names}, compiled.names)
    reverse = LayeredNames({n: part.reverse.get(n) for n in touched.reverse}, compiled.reverse)
    return CompiledZone(
        domain=domain,
        names=names,
        reverse=reverse,
        serial=view.version & 0xFFFFFFFF,
        skipped=compiled.skipped,  # the network scope's: a link's odd entries are not listed again
        bare=bare_names(view, domain, names),
    )


class _Touched:
    __slots__ = ("names", "reverse")

    def __init__(self, names: set[Labels], reverse: set[Labels]) -> None:
        self.names = names
        self.reverse = reverse

    def __or__(self, other: _Touched) -> _Touched:
        return _Touched(self.names | other.names, self.reverse | other.reverse)


def _names_of(zone: ZoneData, services: list[str], compiler: ZoneCompiler) -> _Touched:
    """Every owner and reverse name ``services`` of ``zone`` hold (with their ancestors), the apex not."""
    part = compiler.compile(
        ZoneData(
            domain=zone.domain,
            services={name: zone.services[name] for name in services},
            version=zone.version,
            local_site=zone.local_site,
            vips={name: zone.vips[name] for name in services if name in zone.vips},
        )
    )
    return _Touched({n for n in part.names if n != part.domain}, set(part.reverse))
