"""Simulated network faults and latency (pure, for tests and benchmarks).

Owns the fault model of the gossip simulator (etcd-raft's vocabulary): per-link drop probabilities,
cuts, isolated nodes, partitions into groups, a global loss rate, and latency distributions. It never
schedules events; the simulator asks it whether and when a packet arrives.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable

Latency = Callable[[random.Random], float]


def constant(seconds: float) -> Latency:
    return lambda rng: seconds


def uniform(low_s: float, high_s: float) -> Latency:
    return lambda rng: rng.uniform(low_s, high_s)


def lognormal(median_s: float, sigma: float, cap_s: float = 1.0) -> Latency:
    """Heavy-tailed latency: median ``median_s``, shape ``sigma``, capped at ``cap_s``."""
    mu = math.log(median_s)
    return lambda rng: min(rng.lognormvariate(mu, sigma), cap_s)


class Faults:
    """Which packets get lost. Links are directed (src, dst) name pairs; cuts also block TCP."""

    def __init__(self) -> None:
        self.loss = 0.0
        self.link_drop: dict[tuple[str, str], float] = {}
        self.isolated: dict[str, bool] = {}
        self.group_of: dict[str, int] = {}

    def drop(self, a: str, b: str, p: float) -> None:
        """Drop packets from a to b and from b to a with probability p."""
        self.link_drop[(a, b)] = p
        self.link_drop[(b, a)] = p

    def cut(self, a: str, b: str) -> None:
        self.drop(a, b, 1.0)

    def isolate(self, n: str) -> None:
        self.isolated[n] = True

    def partition(self, groups: Iterable[Iterable[str]]) -> None:
        """Nodes in different groups cannot talk; nodes not named stay reachable by everyone."""
        self.group_of = {}
        for index, group in enumerate(groups):
            for name in group:
                self.group_of[name] = index

    def heal(self) -> None:
        """Remove every fault, including the global loss rate."""
        self.loss = 0.0
        self.link_drop.clear()
        self.isolated.clear()
        self.group_of = {}

    def blocked(self, a: str, b: str) -> bool:
        """Deterministically unreachable (cut, isolated, partitioned): applies to UDP and TCP."""
        if self.isolated and (a in self.isolated or b in self.isolated):
            return True
        if self.group_of:
            ga = self.group_of.get(a)
            gb = self.group_of.get(b)
            if ga is not None and gb is not None and ga != gb:
                return True
        return bool(self.link_drop) and self.link_drop.get((a, b), 0.0) >= 1.0

    def lost(self, a: str, b: str, rng: random.Random) -> bool:
        """Whether one UDP packet from a to b is lost."""
        if self.blocked(a, b):
            return True
        p = self.loss
        if self.link_drop:
            p = max(p, self.link_drop.get((a, b), 0.0))
        return p > 0.0 and rng.random() < p
