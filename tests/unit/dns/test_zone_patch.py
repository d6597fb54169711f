"""A service's compiled names patched per task entry equal ``compile_zone``'s, on seeded random sequences.

Each step replaces a few task entries of a few services with new objects (health toggled, stopped or
started, moved to another address or site), adds and removes entries, and now and then one that
``compile_service`` skips or whose names a patch cannot own (a slot ``tasks`` or ``_tcp``, a bad address
or port): one long-lived ``ZoneCompiler`` must give exactly ``compile_zone`` of the same input after every
step, and the steps must mostly have been patches. Entries are told apart by identity, as ``ZoneBuilder``
hands them over (an unchanged task keeps its entry object).
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from p2porch.dns.zone import PortEntry, TaskEntry, ZoneData, compile_zone
from p2porch.dns.zone_cache import FragmentStore, ZoneCompiler

ADDRESSES = [f"10.0.{i // 4}.{i % 4 + 2}" for i in range(12)]  # few: shared addresses on purpose
SLOTS: list[int | str] = [1, 2, 3, 4, 5, 6, "1", "a", "A", "web"]
PORTS = [(), (PortEntry(80),), (PortEntry(80), PortEntry(53, "udp")), (PortEntry(53, "UDP"),)]
ODD = [
    TaskEntry("tasks", "10.0.9.2"),
    TaskEntry("_tcp", "10.0.9.3", ports=(PortEntry(80),)),
    TaskEntry("a.b", "10.0.9.4"),
    TaskEntry(1, "not-an-address"),
    TaskEntry(2, "10.0.9.5", ports=(PortEntry(0),)),
    TaskEntry(3, "10.0.0.200"),  # the VIP's address
]


def _entry(rng: random.Random, ports: tuple[PortEntry, ...]) -> TaskEntry:
    return TaskEntry(
        slot=rng.choice(SLOTS),
        address=rng.choice(ADDRESSES),
        healthy=rng.random() < 0.7,
        running=rng.random() < 0.85,
        ports=ports,
        site=rng.choice(["", "r1", "r2"]),
    )


def _changed(rng: random.Random, entry: TaskEntry) -> TaskEntry:
    roll = rng.random()
    if roll < 0.5:
        return replace(entry, healthy=not entry.healthy)  # the common case: a health check flips
    if roll < 0.7:
        return replace(entry, running=not entry.running)
    if roll < 0.85:
        return replace(entry, address=rng.choice(ADDRESSES))
    return replace(entry, site=rng.choice(["", "r1", "r2"]))


class Sequence_:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.local_site = self.rng.choice(["", "r1"])
        self.ports = {f"s{i}": self.rng.choice(PORTS) for i in range(6)}
        self.services = {
            name: [_entry(self.rng, ports) for _ in range(self.rng.randint(0, 30))]
            for name, ports in self.ports.items()
        }
        self.vips = {"s1": "10.0.0.200"}

    def step(self) -> None:
        rng = self.rng
        for name in rng.sample(sorted(self.services), rng.randint(1, 3)):
            entries = list(self.services[name])  # a new list, the unchanged entries the same objects
            for _ in range(rng.randint(1, 4)):
                roll = rng.random()
                if roll < 0.6 and entries:
                    i = rng.randrange(len(entries))
                    entries[i] = _changed(rng, entries[i])
                elif roll < 0.75:
                    entries.insert(rng.randint(0, len(entries)), _entry(rng, self.ports[name]))
                elif roll < 0.88 and entries:
                    del entries[rng.randrange(len(entries))]
                elif roll < 0.9:
                    entries.append(replace(rng.choice(ODD)))  # a fresh object: never shared
                else:
                    entries = [e for e in entries if e not in ODD]  # by value: the odd ones leave
            self.services[name] = entries
        if rng.random() < 0.05:
            self.vips = {} if self.vips else {"s1": "10.0.0.200"}

    def zone(self, version: int) -> ZoneData:
        return ZoneData(
            services=dict(self.services),
            nodes={"n1": "192.168.0.1"},
            version=version,
            local_site=self.local_site,
            vips=dict(self.vips),
        )


@pytest.mark.parametrize("seed", range(12))
def test_patched_services_equal_compile_zone(seed: int) -> None:
    seq = Sequence_(seed)
    compiler = ZoneCompiler()
    patched = compiled = 0
    for version in range(150):
        zone = seq.zone(version)
        assert compiler.compile(zone) == compile_zone(zone)
        patched += compiler.patched_services
        compiled += compiler.compiled_services
        seq.step()
    assert patched > 2 * compiled  # the patch path carried most changes
    assert compiler.patched_merges > 0  # merged zones patched by the changed services' names


def test_a_health_toggle_patches_only_its_service() -> None:
    entries = [TaskEntry(i, f"10.0.0.{i + 1}", ports=(PortEntry(80),)) for i in range(1, 50)]
    other = [TaskEntry(1, "10.0.1.2")]
    compiler = ZoneCompiler()
    compiler.compile(ZoneData(services={"web": entries, "db": other}))
    toggled = list(entries)
    toggled[7] = replace(entries[7], healthy=False)
    zone = ZoneData(services={"web": toggled, "db": other}, version=2)
    compiled = compiler.compile(zone)
    assert (compiler.patched_services, compiler.compiled_services) == (1, 0)
    assert compiled == compile_zone(zone)
    assert (b"8", b"web", b"p2p") not in compiled.names
    assert "10.0.0.9" not in compiled.names[(b"web", b"p2p")].a


@pytest.mark.parametrize("seed", range(8))
def test_compilers_sharing_a_store_equal_compile_zone(seed: int) -> None:
    """A default and a scoped resolver's compilers over one ``FragmentStore``, as ``ClientScopes`` runs
    them: the scope sees a changing subset of the services and, now and then, an alias holding another
    service's entries under a name the default zone gives its own (the two fight over one fragment).
    Each compile equals ``compile_zone`` of its own input; a service both see is compiled or patched
    once (the second compiler reuses it); the store keeps exactly the services either zone holds."""
    seq = Sequence_(seed)
    store = FragmentStore()
    default, scoped = ZoneCompiler(store), ZoneCompiler(store)
    rng = random.Random(seed + 100)
    seen = sorted(seq.services)
    reused = 0
    for version in range(120):
        zone = seq.zone(version)
        if rng.random() < 0.2:
            seen = rng.sample(sorted(seq.services), rng.randint(0, len(seq.services)))
        services = {name: zone.services[name] for name in seen}
        if rng.random() < 0.3:
            services["s0" if "s0" not in seen else "alias"] = zone.services["s2"]
        view = replace(zone, services=services, vips={k: v for k, v in zone.vips.items() if k in services})
        assert default.compile(zone) == compile_zone(zone)
        assert scoped.compile(view) == compile_zone(view)
        shared = [s for s in services if s in zone.services and services[s] is zone.services[s]]
        # the services the default just compiled or patched are reused as they are
        assert scoped.compiled_services + scoped.patched_services <= len(services) - len(shared)
        reused += len(shared)
        held = {*zone.services, *services}
        assert set(store.fragments) == {(view.domain, view.local_site, s) for s in held}
        seq.step()
    assert reused > 120  # the scope shared services most of the time
    assert default.patched_merges > 0 and scoped.patched_merges > 0  # services coming and going too

    assert default.compile(ZoneData(version=999)) == compile_zone(ZoneData(version=999))
    assert scoped.compile(ZoneData(version=999)) == compile_zone(ZoneData(version=999))
    assert store.fragments == {}  # no zone holds a service: none kept


def test_a_zone_whose_services_all_stayed_keeps_the_merged_names() -> None:
    """A burst that changed no service (reports of messages only) merges nothing: the previous names and
    PTR dicts with the new serial; a changed node, nameserver or service merges again."""
    web = [TaskEntry(i, f"10.0.0.{i + 1}", ports=(PortEntry(80),)) for i in range(1, 20)]
    zone = ZoneData(services={"web": web, "db": [TaskEntry(1, "10.0.1.2")]}, nodes={"n1": "192.168.0.1"})
    compiler = ZoneCompiler()
    first = compiler.compile(zone)
    same = replace(zone, version=2)
    second = compiler.compile(same)
    assert second == compile_zone(same) and second.serial == 2
    assert second.names is first.names and second.reverse is first.reverse
    for changed in (
        replace(zone, version=3, nodes={"n1": "192.168.0.1", "n2": "192.168.0.2"}),
        replace(zone, version=4, nameservers=("192.168.0.1",)),
        replace(zone, version=5, services={"web": web}),
        replace(zone, version=6, services={"web": [replace(web[0], healthy=False), *web[1:]]}),
    ):
        compiled = compiler.compile(changed)
        assert compiled == compile_zone(changed)
        assert compiled.names is not first.names


def test_two_compilers_giving_one_name_different_lists_keep_their_own() -> None:
    """Two scopes where ``db`` is another stack's service (each stack's short name on its own network):
    while neither list changes, each compile reuses the compiler's own fragment and the last merged names
    (no compile, patch or merge), and every zone still equals ``compile_zone``."""
    store = FragmentStore()
    first, second = ZoneCompiler(store), ZoneCompiler(store)
    web = [TaskEntry(1, "10.0.0.2")]
    a = ZoneData(services={"db": [TaskEntry(1, "10.0.1.2")], "web": web}, nodes={"n1": "10.0.0.1"})
    b = replace(a, services={"db": [TaskEntry(1, "10.0.2.2"), TaskEntry(2, "10.0.2.3")], "web": web})
    first.compile(a)
    second.compile(b)
    merges = [(c.full_merges, c.patched_merges) for c in (first, second)]
    for version in range(1, 4):
        one, two = replace(a, version=version), replace(b, version=version)
        names = first._last.zone.names if first._last else None
        assert first.compile(one) == compile_zone(one) and second.compile(two) == compile_zone(two)
        assert first._last is not None and first._last.zone.names is names
        assert (first.compiled_services, first.patched_services) == (0, 0)
        assert (second.compiled_services, second.patched_services) == (0, 0)
    assert [(c.full_merges, c.patched_merges) for c in (first, second)] == merges
    # a change of one list still patches or compiles from the store, and stays equal
    moved = replace(a, services={"db": [TaskEntry(1, "10.0.1.9")], "web": web}, version=9)
    assert first.compile(moved) == compile_zone(moved) and second.compile(b) == compile_zone(b)


def test_a_fragment_kept_after_another_compiler_patched_it_is_never_patched_again() -> None:
    """Compiler B patches the fragment both compilers held (its index moves to B's new one); A keeps
    using the old one for its unchanged list and hands the store a copy: B's next change must not be
    patched from the old fragment's moved index."""
    store = FragmentStore()
    first, second = ZoneCompiler(store), ZoneCompiler(store)
    tasks = [TaskEntry(slot, f"10.0.0.{slot + 1}") for slot in range(1, 6)]
    zone = ZoneData(services={"s": tasks})
    first.compile(zone)
    second.compile(zone)
    changed = [*tasks[:2], replace(tasks[2], healthy=False), *tasks[3:]]
    later = [*changed[:4], replace(changed[4], address="10.0.0.99")]
    for compiler, entries in ((second, changed), (first, tasks), (second, later), (first, later)):
        step = replace(zone, services={"s": entries})
        assert compiler.compile(step) == compile_zone(step)


@pytest.mark.parametrize("seed", range(6))
def test_bursts_over_the_same_services_reuse_the_order_and_keys_and_equal_compile_zone(seed: int) -> None:
    """A burst over the last zone's service names (the common case: reports) walks the last sorted order
    and store keys again (issue 19, the twenty-eighth round); a service coming or going, another local
    site or a shared alias sorts and keys afresh. Every zone equals ``compile_zone``."""
    seq = Sequence_(seed)
    compiler = ZoneCompiler()
    rng = random.Random(seed + 200)
    reused = 0
    for version in range(150):
        zone = seq.zone(version)
        roll = rng.random()
        if roll < 0.08:
            zone = replace(zone, services={**zone.services, "extra": [TaskEntry(1, "10.0.5.2")]})
        elif roll < 0.12:
            zone = replace(zone, local_site="r2")
        elif roll < 0.16:
            zone = replace(zone, shared={"both": ("s2", "s3")})
        before = compiler._keys
        same = (
            compiler._last is not None
            and compiler._context == (zone.domain, zone.local_site)
            and zone.services.keys() == compiler._names
        )
        assert compiler.compile(zone) == compile_zone(zone)
        if same:
            assert compiler._keys is before  # the last zone's keys: no sort, no set built
            reused += 1
        assert compiler._keys == {(zone.domain, zone.local_site, s) for s in zone.services}
        assert compiler._order == sorted(zone.services)
        seq.step()
    assert reused > 60
