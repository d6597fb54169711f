"""The zone's base names kept per node equal ``compile_base``'s, and the merged zone ``compile_zone``'s, on
seeded random sequences of node joins, leaves and address changes.

The node names include case variants of one name (two nodes, one owner name), a dotted name and the
node named like its parent label (an owner name that is also an empty non-terminal), names and addresses
``compile_base`` skips, shared addresses; now and then the nameservers or the domain change (everything
compiled again). After each step: ``BaseNames.names`` and ``skipped`` equal ``compile_base``'s, only the
changed nodes were compiled, and a ``ZoneCompiler`` with services gives exactly ``compile_zone`` (a
service named ``node`` collides with node names on purpose), patching its last merge for node changes.
"""

from __future__ import annotations

import random

import pytest

from p2porch.dns.zone import (
    Labels,
    NameRecords,
    TaskEntry,
    ZoneData,
    compile_base,
    compile_zone,
    name_maker,
    to_labels,
)
from p2porch.dns.zone_base import BaseNames
from p2porch.dns.zone_cache import ZoneCompiler

NODE_NAMES = ["n1", "N1", "n2", "n3", "b", "a.b", "c.a.b", "web", "1", "é", "", "x" * 64, "n10", "n11"]
ADDRESSES = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "not-an-address", "::1"]
NAMESERVERS = [(), ("10.0.0.53",), ("10.0.0.53", "bad")]
DOMAINS = ["p2p", "cluster.local"]


def base_of(zone: ZoneData) -> tuple[dict[Labels, NameRecords], tuple[str, ...]]:
    domain = to_labels(zone.domain)
    assert domain
    names: dict[Labels, NameRecords] = {}
    skipped: list[str] = []
    compile_base(zone, domain, name_maker(names, domain), skipped)
    return names, tuple(skipped)


class Nodes:
    """A random walk over the node map (and now and then the domain or the nameservers)."""

    def __init__(self, seed: int, pool: list[str]) -> None:
        self.rng = random.Random(seed)
        self.pool = pool
        self.nodes = {name: self.rng.choice(ADDRESSES) for name in self.rng.sample(pool, len(pool) // 2)}
        self.domain = "p2p"
        self.nameservers: tuple[str, ...] = ("10.0.0.53",)

    def step(self) -> bool:
        """Change a few nodes, or else the domain or the nameservers (True when they changed)."""
        rng = self.rng
        if rng.random() < 0.05:
            before = (self.domain, self.nameservers)
            self.domain = rng.choice(DOMAINS)
            self.nameservers = rng.choice(NAMESERVERS)
            return (self.domain, self.nameservers) != before
        self.nodes = dict(self.nodes)  # a new map, as zone_of builds one per zone
        for _ in range(rng.randint(1, 3)):
            name = rng.choice(self.pool)
            roll = rng.random()
            if name not in self.nodes or roll < 0.3:
                self.nodes[name] = rng.choice(ADDRESSES)  # a join (the admission), or a new address
            elif roll < 0.6:
                del self.nodes[name]  # a leave
            else:
                self.nodes[name] = self.nodes[name]  # the ready mark: the same address
        return False

    def zone(self, version: int, services: dict[str, list[TaskEntry]] | None = None) -> ZoneData:
        return ZoneData(
            domain=self.domain,
            nodes=self.nodes,
            nameservers=self.nameservers,
            version=version,
            services=services or {},
        )


@pytest.mark.parametrize("seed", range(200))
def test_base_names_kept_per_node_equal_compile_base(seed: int) -> None:
    walk = Nodes(seed, NODE_NAMES)
    base = BaseNames()
    previous: dict[str, str] = {}
    for version in range(30):
        rebuilt = walk.step() if version else True
        zone = walk.zone(version)
        domain = to_labels(zone.domain)
        assert domain
        before = {labels: rec for labels, rec in base.names.items()}
        delta = base.update(zone, domain)
        names, skipped = base_of(zone)
        assert (base.names, base.skipped) == (names, skipped), (seed, version)
        if rebuilt:
            assert delta is None or not version
        else:
            assert delta is not None
            changed = {n for n, _ in previous.items() ^ zone.nodes.items()}
            assert base.compiled_nodes == len(changed)  # only the changed nodes compiled
            # the delta names every name whose record changed, with its record before
            moved = {
                labels for labels in before.keys() | names.keys() if before.get(labels) != names.get(labels)
            }
            assert moved <= delta.keys()
            assert all(delta[labels] is before.get(labels) for labels in delta)
        previous = dict(zone.nodes)


def test_a_record_handed_out_is_never_changed() -> None:
    base = BaseNames()
    zone = ZoneData(nodes={"n1": "10.0.0.1", "N1": "10.0.0.2"})
    base.update(zone, (b"p2p",))
    held = base.names[(b"n1", b"node", b"p2p")]
    assert held.a == ["10.0.0.2", "10.0.0.1"]  # sorted by node name, as compile_base appends them
    base.update(ZoneData(nodes={"n1": "10.0.0.1"}), (b"p2p",))
    assert held.a == ["10.0.0.2", "10.0.0.1"] and base.names[(b"n1", b"node", b"p2p")].a == ["10.0.0.1"]


SERVICES = {
    "web": [TaskEntry(1, "10.240.1.2"), TaskEntry(2, "10.240.1.3")],
    "db": [TaskEntry(1, "10.240.1.4")],
    "node": [TaskEntry(1, "10.240.1.5"), TaskEntry("n2", "10.240.1.6")],  # 1.node, n2.node: node names too
}


@pytest.mark.parametrize("seed", range(100))
def test_the_merged_zone_follows_node_changes_as_compile_zone(seed: int) -> None:
    """With services beside the nodes (a service ``node`` whose slot names are node names: a collision,
    which the full compile decides), every zone equals ``compile_zone``; without the colliding service a
    node change patches the last merge (no full merge after the first)."""
    for services in (SERVICES, {k: v for k, v in SERVICES.items() if k != "node"}):
        walk = Nodes(seed, NODE_NAMES if services is SERVICES else [n for n in NODE_NAMES if n not in ("1",)])
        compiler = ZoneCompiler()
        rebuilds = 0
        for version in range(25):
            rebuilds += walk.step() if version else 1
            zone = walk.zone(version, services)
            assert compiler.compile(zone) == compile_zone(zone), (seed, version)
        if services is not SERVICES:
            assert compiler.full_compiles == 0
            assert compiler.full_merges <= rebuilds  # a node change patches the last merge


def test_a_join_compiles_one_node_and_patches_the_merge() -> None:
    nodes = {f"n{i}": f"10.0.{i // 250}.{i % 250 + 1}" for i in range(1000)}
    services = {k: v for k, v in SERVICES.items() if k != "node"}
    compiler = ZoneCompiler()
    compiler.compile(ZoneData(nodes=nodes, services=services))
    joined = {**nodes, "joiner": "10.9.0.1"}
    zone = ZoneData(nodes=joined, services=services, version=2)
    merges = compiler.full_merges
    assert compiler.compile(zone) == compile_zone(zone)
    assert (compiler.base.compiled_nodes, compiler.full_merges) == (1, merges)
    left = ZoneData(nodes=nodes, services=services, version=3)
    assert compiler.compile(left) == compile_zone(left)
    assert (compiler.base.compiled_nodes, compiler.full_merges) == (1, merges)
