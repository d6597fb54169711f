"""Member table (pure).

Owns the member records this node knows (including itself), their probe order (shuffled round robin,
new members inserted at a random position) and per-state counts. It never applies merge rules: the
SWIM facade decides state changes and calls :meth:`MemberTable.set_state`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .messages import ALIVE, DEAD, LEFT, SUSPECT


class Member:
    """One node as this node sees it."""

    __slots__ = ("addr", "incarnation", "meta", "name", "state", "state_change_s")

    def __init__(
        self, name: str, addr: str, incarnation: int, state: int, meta: Mapping[str, Any], now: float
    ) -> None:
        self.name = name
        self.addr = addr
        self.incarnation = incarnation
        self.state = state
        self.meta = meta
        self.state_change_s = now

    def __repr__(self) -> str:
        return f"Member({self.name!r}, {self.addr!r}, inc={self.incarnation}, state={self.state})"


class MemberTable:
    """Members by name plus a probe order; deterministic given the owned RNG."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self.by_name: dict[str, Member] = {}
        self.order: list[Member] = []
        self.probe_index = 0
        self.counts = [0, 0, 0, 0]  # by state

    def __len__(self) -> int:
        return len(self.by_name)

    def __iter__(self) -> Iterator[Member]:
        return iter(self.by_name.values())

    def get(self, name: str) -> Member | None:
        return self.by_name.get(name)

    @property
    def num_live(self) -> int:
        """Alive + suspect members, this node included."""
        return self.counts[ALIVE] + self.counts[SUSPECT]

    @property
    def num_dead(self) -> int:
        return self.counts[DEAD]

    def add(self, member: Member) -> None:
        self.by_name[member.name] = member
        self.counts[member.state] += 1
        self.order.insert(self._rng.randint(0, len(self.order)), member)

    def set_state(self, member: Member, state: int, now: float) -> None:
        if member.state != state:
            self.counts[member.state] -= 1
            self.counts[state] += 1
            member.state = state
            member.state_change_s = now

    def next_probe_target(self, self_name: str) -> Member | None:
        """Round robin over alive/suspect members other than self; reshuffles after each full pass."""
        order = self.order
        for _ in range(len(order) + 1):
            if self.probe_index >= len(order):
                self._rng.shuffle(order)
                self.probe_index = 0
                if not order:
                    return None
            member = order[self.probe_index]
            self.probe_index += 1
            if member.name != self_name and member.state <= SUSPECT:
                return member
        return None

    def random_members(self, k: int, accept: Callable[[Member], bool]) -> list[Member]:
        """Up to k distinct members passing ``accept`` in at most 3*n random draws (kRandomNodes)."""
        order = self.order
        n = len(order)
        picked: list[Member] = []
        if n == 0 or k <= 0:
            return picked
        randrange = self._rng.randrange
        for _ in range(3 * n):
            if len(picked) >= k:
                break
            member = order[randrange(n)]
            if member in picked or not accept(member):
                continue
            picked.append(member)
        return picked

    def reap(self, now: float, older_than_s: float) -> list[Member]:
        """Forget dead/left members whose state is older than ``older_than_s``."""
        gone = [m for m in self.order if m.state in (DEAD, LEFT) and now - m.state_change_s >= older_than_s]
        for member in gone:
            del self.by_name[member.name]
            self.counts[member.state] -= 1
        if gone:
            self.order = [m for m in self.order if m.name in self.by_name]
            self.probe_index = min(self.probe_index, len(self.order))
        return gone
