"""The last overlay plan kept with its inputs, so that a peer's arrival, departure or address change is
planned alone: O(changed peers), not O(all peers) (pure).

Owns ``KeptPlan`` (the peers a plan was made from, its entries and skip reasons, and indices of who could
conflict with whom) and ``PeerDelta`` (what a change does to it). ``KeptPlan.delta`` is a function of the
kept plan and the changed peers that never changes the plan; ``KeptPlan.apply`` commits a delta once the
kernel has it. Together they give exactly what ``plan_overlay`` gives over the new peer set; when they
cannot tell cheaply (a changed peer's subnet overlaps another peer's, or they share an underlay address
and port: the order of node ids decides who is skipped and the skip can cascade) ``delta`` returns None and
the caller plans in full. Never touches the kernel, never logs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from .. import ipv4
from .plan import (
    LocalNode,
    OverlayPeer,
    OverlayPlan,
    OverlaySettings,
    PeerEntry,
    SetDiff,
    TakenSubnets,
    _check_peer,
    _network,
    _parse_peer,
    peer_entry,
    plan_overlay,
)

#: a change of more peers than this at once is planned in full (the conflict check is pairwise in it)
MAX_CHANGED = 64
#: a changed network that could contain more taken networks of a longer prefix than this is planned in
#: full (the subnets of one length are looked up one by one: with /24 leases, 1)
MAX_INNER_LOOKUPS = 256

_Key = tuple[str, int]  # (underlay address, VXLAN port): two peers may not share one
_Net = tuple[int, int]  # (network address as int, prefix length)
_IndexKey = TypeVar("_IndexKey", _Key, _Net)


@dataclass(frozen=True)
class PeerDelta:
    """What a change of peers does to a kept plan: their old and new inputs, entries and skip reasons, and
    the allow-list's difference (underlay addresses no planned peer had before / has after)."""

    peers: tuple[tuple[str, OverlayPeer | None], ...]  # node id -> new input (None: gone)
    removed: tuple[PeerEntry, ...]  # old entries of the changed peers (as planned before)
    added: tuple[PeerEntry, ...]  # their new entries
    skipped: tuple[tuple[str, str], ...]  # node id -> new skip reason ("" : not skipped now)
    allow: SetDiff

    def __bool__(self) -> bool:
        return bool(self.peers)

    @property
    def moves_nothing(self) -> bool:
        """No entry and no allow-list member changes (inputs or skip reasons may)."""
        return self.removed == self.added and not self.allow


class KeptPlan:
    """One node's overlay plan with its inputs and conflict indices; changed by ``apply`` only.

    Peers are keyed by node id (unique, as the state's nodes). A peer is either skipped for a reason of
    its own (the local node, a bad address, outside the cluster CIDR, too small, overlapping the local
    lease) or a *candidate*, indexed by its subnet and its underlay key: whether a candidate is planned
    depends on the candidates before it in node-id order, so a change that touches a candidate in
    conflict with another is left to a full plan."""

    def __init__(
        self, local: LocalNode, settings: OverlaySettings, underlay_dev: str, peers: Iterable[OverlayPeer]
    ) -> None:
        self.local, self.settings, self.underlay_dev = local, settings, underlay_dev
        self._inputs: dict[str, OverlayPeer] = {p.node_id: p for p in peers}
        full = plan_overlay(local, list(self._inputs.values()), settings, underlay_dev)
        self._link, self._address = full.link, full.address
        self._entries: dict[str, PeerEntry] = {e.node_id: e for e in full.peers}
        self._skipped: dict[str, str] = dict(full.skipped)
        self._cluster = _network(settings.cluster_cidr, "cluster_cidr")
        self._own = TakenSubnets()  # only the local lease: the checks that depend on no other peer
        self._own.add(_network(local.subnet, "subnet"))
        self._local_key: _Key = (full.link.local, settings.vxlan_port)
        self._nets: dict[_Net, set[str]] = {}  # candidates by subnet
        self._lengths: Counter[int] = Counter()  # the candidates' prefix lengths
        self._keys: dict[_Key, set[str]] = {}  # candidates by underlay key
        self._candidates: dict[str, tuple[_Net, _Key]] = {}
        for peer in self._inputs.values():
            found = self._candidate(peer)
            if found is not None:
                self._index(peer.node_id, found)
        self._sources: Counter[str] = Counter(e.underlay_addr for e in self._entries.values())

    # ----- reading
    def plan(self) -> OverlayPlan:
        """The kept plan as ``plan_overlay`` makes it (O(peers): for full passes and status)."""
        return OverlayPlan(
            link=self._link,
            address=self._address,
            peers=tuple(self._entries[n] for n in sorted(self._entries)),
            skipped=tuple((n, self._skipped[n]) for n in sorted(self._skipped)),
        )

    def peers(self) -> dict[str, OverlayPeer]:
        """The inputs by node id (a copy)."""
        return dict(self._inputs)

    def sources(self) -> tuple[str, ...]:
        """The planned peers' underlay addresses, sorted as ``plan_vxlan_filter`` sorts them."""
        return tuple(sorted(self._sources))

    def changes_to(self, peers: Iterable[OverlayPeer]) -> dict[str, OverlayPeer | None]:
        """The changed peers between the kept inputs and a whole peer list (O(peers), no planning)."""
        wanted = {p.node_id: p for p in peers}
        changed: dict[str, OverlayPeer | None] = {n: p for n, p in wanted.items() if self._inputs.get(n) != p}
        changed.update((n, None) for n in self._inputs if n not in wanted)
        return changed

    # ----- planning a change
    def delta(self, changed: Mapping[str, OverlayPeer | None]) -> PeerDelta | None:
        """What ``changed`` (node id -> its new input, None when it is gone) does to the plan, in
        O(len(changed)); None when a changed peer conflicts with another (plan in full). Pure."""
        moved = {n: p for n, p in changed.items() if self._inputs.get(n) != p}
        if len(moved) > MAX_CHANGED:
            return None
        for node_id in moved:  # an old candidate in conflict: its leaving may un-skip another
            old = self._candidates.get(node_id)
            if old is not None and self._conflicts(old, {node_id}):
                return None
        new: dict[str, tuple[_Net, _Key]] = {}
        for node_id, peer in moved.items():
            found = None if peer is None else self._candidate(peer)
            if found is None:
                continue
            if self._conflicts(found, moved.keys()) or any(_clash(found, other) for other in new.values()):
                return None
            new[node_id] = found
        removed, added, skipped = [], [], []
        count: Counter[str] = Counter()
        for node_id, peer in sorted(moved.items()):
            entry = self._entries.get(node_id)
            if entry is not None:
                removed.append(entry)
                count[entry.underlay_addr] -= 1
            reason = "" if peer is None else self._reason(peer)
            if peer is not None and not reason:
                entry = peer_entry(peer, self.settings)
                added.append(entry)
                count[entry.underlay_addr] += 1
            skipped.append((node_id, reason))
        gained = [a for a, n in count.items() if n > 0 and not self._sources[a]]
        lost = [a for a, n in count.items() if n < 0 and self._sources[a] + n == 0]
        allow = SetDiff(tuple(sorted(gained, key=ipv4.number)), tuple(sorted(lost, key=ipv4.number)))
        return PeerDelta(tuple(moved.items()), tuple(removed), tuple(added), tuple(skipped), allow)

    def apply(self, delta: PeerDelta) -> None:
        """Commit ``delta`` (from ``delta`` on this plan, unchanged since) in O(its size)."""
        for entry in delta.removed:
            del self._entries[entry.node_id]
            self._sources[entry.underlay_addr] -= 1
            if not self._sources[entry.underlay_addr]:
                del self._sources[entry.underlay_addr]
        for entry in delta.added:
            self._entries[entry.node_id] = entry
            self._sources[entry.underlay_addr] += 1
        for node_id, reason in delta.skipped:
            if reason:
                self._skipped[node_id] = reason
            else:
                self._skipped.pop(node_id, None)
        for node_id, peer in delta.peers:
            old = self._candidates.pop(node_id, None)
            if old is not None:
                self._unindex(node_id, old)
            if peer is None:
                self._inputs.pop(node_id, None)
                continue
            self._inputs[node_id] = peer
            found = self._candidate(peer)
            if found is not None:
                self._index(node_id, found)

    # ----- indices
    def _candidate(self, peer: OverlayPeer) -> tuple[_Net, _Key] | None:
        """(subnet, underlay key) of a peer whose fate depends on other peers; None when it is skipped for
        a reason of its own."""
        if _check_peer(peer, self.local, self.settings, self._cluster, self._own, set()):
            return None
        parsed = _parse_peer(peer.subnet, peer.underlay_addr, self.settings.cluster_cidr)
        net = (int(parsed.net.network_address), parsed.net.prefixlen)
        return net, (parsed.underlay, peer.vxlan_port or self.settings.vxlan_port)

    def _reason(self, peer: OverlayPeer) -> str:
        """The skip reason of a peer in conflict with no other ("" when it is planned)."""
        taken = {self._local_key}
        return _check_peer(peer, self.local, self.settings, self._cluster, self._own, taken)

    def _conflicts(self, found: tuple[_Net, _Key], besides: Iterable[str]) -> bool:
        """Whether a candidate other than ``besides`` overlaps ``found``'s subnet or shares its key (or
        the check would cost more than MAX_INNER_LOOKUPS: then say yes)."""
        (start, plen), key = found
        others = set(self._keys.get(key, ()))
        for length in self._lengths:
            if length <= plen:
                mask = (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF
                others |= self._nets.get((start & mask, length), set())
            elif 1 << (length - plen) > MAX_INNER_LOOKUPS:
                return True
            else:
                step = 1 << (32 - length)
                for i in range(1 << (length - plen)):
                    others |= self._nets.get((start + i * step, length), set())
        return bool(others.difference(besides))

    def _index(self, node_id: str, found: tuple[_Net, _Key]) -> None:
        net, key = found
        self._candidates[node_id] = found
        self._nets.setdefault(net, set()).add(node_id)
        self._lengths[net[1]] += 1
        self._keys.setdefault(key, set()).add(node_id)

    def _unindex(self, node_id: str, found: tuple[_Net, _Key]) -> None:
        net, key = found
        _discard(self._nets, net, node_id)
        _discard(self._keys, key, node_id)
        self._lengths[net[1]] -= 1
        if not self._lengths[net[1]]:
            del self._lengths[net[1]]


def _discard(index: dict[_IndexKey, set[str]], at: _IndexKey, node_id: str) -> None:
    holders = index[at]
    holders.discard(node_id)
    if not holders:
        del index[at]


def _clash(a: tuple[_Net, _Key], b: tuple[_Net, _Key]) -> bool:
    """Two candidates conflict: their subnets overlap or they share an underlay key."""
    (a_start, a_len), a_key = a
    (b_start, b_len), b_key = b
    shorter = min(a_len, b_len)
    mask = (0xFFFFFFFF << (32 - shorter)) & 0xFFFFFFFF if shorter else 0
    return a_key == b_key or (a_start & mask) == (b_start & mask)
