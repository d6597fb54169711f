"""Whether a down node is part of a lost site (its whole ``region`` out of reach) or just down (pure).

A site cut off the WAN looks, from the majority, like every node of its region going down within a
few seconds of each other (gossip declares them one by one). Its tasks most likely still run behind
the cut, and the minority keeps them running (it cannot commit anything else). A service that says
``on_site_loss: keep`` (the default) leaves them there instead of starting replacements that would
double them when the site comes back; ``replace`` reschedules them like any dead node's.

:func:`site_verdict` tells, for one down node, ``cut`` (its region is lost: keep its tasks), ``wait``
(some of its region is still up, but only for ``grace_s`` since it went down: the others may follow)
or ``node`` (a lone dead node: the usual rules apply). A region node that came back up less than
``grace_s`` ago, after this one went down, still counts as out: sites come back one node at a time
too. Nodes without a ``region`` label are never part of a site. No I/O, no clock: ``now`` is given
and ``wake_at`` says when the verdict may change.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from ..model import Node, NodeStatus

__all__ = ["REGION_LABEL", "SiteVerdict", "site_verdict"]

REGION_LABEL = "region"


@dataclass(frozen=True, slots=True)
class SiteVerdict:
    """``kind`` for one down node and the earliest time it may change (None: only with new state)."""

    kind: Literal["cut", "wait", "node"]
    wake_at: float | None = None


def site_verdict(node: Node, nodes: Iterable[Node], now: float, grace_s: float) -> SiteVerdict:
    """The verdict for ``node`` (down) given every node of the cluster at ``now``."""
    region = node.labels.get(REGION_LABEL, "")
    if not region or node.status != NodeStatus.DOWN:
        return SiteVerdict("node")
    down_at = node.down_since if node.down_since is not None else -math.inf
    wake: float | None = None
    all_out = True
    for peer in nodes:
        if peer.node_id == node.node_id or peer.status == NodeStatus.LEFT:
            continue
        if peer.labels.get(REGION_LABEL, "") != region or peer.status != NodeStatus.READY:
            continue
        back_until = peer.status_at + grace_s
        if peer.status_at >= down_at and now < back_until:
            wake = back_until if wake is None else min(wake, back_until)  # came back after us: a heal
            continue
        all_out = False
    if all_out:
        return SiteVerdict("cut", wake)
    if now < down_at + grace_s:
        return SiteVerdict("wait", down_at + grace_s)
    return SiteVerdict("node")
