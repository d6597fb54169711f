"""Which Raft members this member's gossip pushes/pulls with, and when (pure: ``now`` is given).

Raft is the authority on who is a member; gossip learns of a new node by its own greeting (a push/pull
with the member that admitted it) and the dissemination of its ``joined`` after it, which reach every
member within a round or two. Before this plan every member pushed/pulled with every node Raft had
committed and gossip did not know yet, at once: up to N-1 push/pulls (TCP, the whole member list each
way) per join, ~17 ms of CPU per member over a 20-node formation (issue 19, docs/performance.md,
"The nineteenth round"). :class:`SeedPlan` keeps the guarantee and drops the redundancy:

- a node missing from gossip waits ``grace_s`` (a few gossip rounds) from when this member first saw
  it missing: its greeting usually teaches gossip about it before then;
- after that only its first ``seeders`` members by a per-node rendezvous hash (every member computes
  the same order from the same Raft members: spread, not always the same ones) push/pull with it, the
  leader among them (its gossip marks joiners ready); the next ``seeders`` one ``grace_s`` later, and
  so on, everyone by ``cap_s``: a node whose greeting was lost, or behind a partition, is still found,
  and one answer spreads it to the rest;
- a member whose gossip knows no other member (it just joined or restarted) seeds at once: it is the
  one that needs the others.

Owns only when each missing node was first seen missing and its place in the order then (hashed once
per node and sighting: O(members) per new node, nothing per loop pass); never does I/O or reads a clock.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

#: gossip rounds (``gossip_interval_s``) a new node is given to reach this member's gossip on its own
SEED_GRACE_ROUNDS = 5
SEEDERS_PER_STEP = 2  # members that push/pull with a still missing node per step of the stagger
SEED_CAP_S = 5.0  # every member seeds a node missing this long (the old seed round's period)


def seed_rank(node_id: str, member_id: str) -> int:
    """The rendezvous weight of ``member_id`` for seeding ``node_id`` (higher seeds first)."""
    digest = hashlib.blake2b(f"{node_id}\0{member_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass
class SeedPlan:
    """When this member pushes/pulls with each node Raft has and its gossip does not know."""

    me: str
    grace_s: float
    seeders: int = SEEDERS_PER_STEP
    cap_s: float = SEED_CAP_S
    first_missing: dict[str, float] = field(default_factory=dict)
    _delays: dict[str, float] = field(default_factory=dict, repr=False)  # by rank, when first missing

    @classmethod
    def for_gossip(cls, me: str, gossip_interval_s: float) -> SeedPlan:
        """The plan for a gossip configuration: a grace of ``SEED_GRACE_ROUNDS`` gossip rounds."""
        grace_s = SEED_GRACE_ROUNDS * gossip_interval_s
        return cls(me=me, grace_s=grace_s, cap_s=max(SEED_CAP_S, grace_s))

    def delay(self, node_id: str, members: Iterable[str], leader: bool) -> float:
        """Seconds after ``node_id`` was first seen missing that this member seeds it: ``grace_s`` per
        step of ``seeders`` members ahead of it in the node's order (the leader first), ``cap_s`` at most."""
        if leader:
            return self.grace_s
        mine = seed_rank(node_id, self.me)
        ahead = sum(1 for m in members if m not in (node_id, self.me) and seed_rank(node_id, m) > mine)
        return min(self.cap_s, self.grace_s * (1 + ahead // max(1, self.seeders)))

    def due(
        self, now: float, missing: Collection[str], members: Collection[str], alone: bool, leader: bool
    ) -> tuple[list[str], float]:
        """The ``missing`` node ids to push/pull with now (in the given order) and the seconds until the
        next one is due (``math.inf``: none waits). ``members``: Raft's members that are not gone (this
        one included); ``alone``: this member's gossip knows no other member; ``leader``: this member
        leads. Forgets the nodes no longer missing (a node missing again waits its grace again)."""
        self.first_missing = {n: t for n, t in self.first_missing.items() if n in missing}
        self._delays = {n: d for n, d in self._delays.items() if n in missing}
        now_due: list[str] = []
        wait = math.inf
        for node_id in missing:
            since = self.first_missing.setdefault(node_id, now)
            if alone:
                now_due.append(node_id)
                continue
            if node_id not in self._delays:
                self._delays[node_id] = self.delay(node_id, members, leader=False)
            left = since + (self.grace_s if leader else self._delays[node_id]) - now
            if left <= 0:
                now_due.append(node_id)
            else:
                wait = min(wait, left)
        return now_due, wait
