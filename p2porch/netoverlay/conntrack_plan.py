"""Which conntrack entries to delete when backends leave a node's traffic rules (pure).

Owns the decision only: from the rule set last written and the one just written, :func:`removed_targets`
names every (backend, protocol) pair that no rule DNATs to any more, keyed by the rule that did (a VIP,
or an ingress port); :func:`should_delete` says whether one conntrack entry is one of them. Conntrack
pins a flow to the backend its first packet was DNATed to, so without this a UDP client that keeps its
source port (DNS, syslog, QUIC, game servers) keeps sending to a removed backend until the entry times
out (``nf_conntrack_udp_timeout_stream``, 120 s), and a TCP client whose SYN went to a dead backend
retransmits it there until ``connect`` gives up (kube-proxy deletes UDP entries for this reason).

Deleted: every UDP entry, and TCP entries still in SYN_SENT (the backend never answered: the client's
retransmitted SYN then creates a new entry and is balanced over the remaining backends). Kept: TCP
ESTABLISHED (the acknowledged drain waits for it, ``agent/connection_drain.py``) and SYN_RECV (the
backend answered, so it is alive; deleting the entry would make the kernel pick up the client's ACK as
a new flow, DNAT it to another backend and reset the connection), and every later state.

A TCP entry is judged twice: seen in SYN_SENT in the dump, it is deleted only if a second look
``TCP_CONFIRM_S`` later still finds it unanswered. A backend that is draining, not dead, answers a SYN
in flight within a round trip, and a dump of a busy node's entries takes long enough (every TIME_WAIT
entry of the published port is in it) that a SYN seen early could be an established connection with
its request sent by the time the dump ends: deleting that entry strands the response (the node no
longer undoes the DNAT), and the client waits until its timeout. It never touches the kernel
(``conntrack_flush.py`` does).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .ingress import IngressPort
from .vip import ServiceVip

PROTOCOLS = ("tcp", "udp")
#: TCP conntrack states whose entries go with a removed backend (see the module docstring)
TCP_STATES_DELETED = frozenset({"SYN_SENT"})
#: seconds between the first look at an unanswered TCP entry and the second look that deletes it (a live
#: backend answers a SYN within a round trip; the client retransmits it after 1 s)
TCP_CONFIRM_S = 0.5


@dataclass(frozen=True)
class FlushTarget:
    """Entries DNATed to ``backend`` (port ``backend_port``; None = any, as a VIP keeps the original port)
    by the rule for ``dest`` (a VIP; None = any local address, as ingress) and ``dest_port`` (None = any)."""

    protocol: str
    backend: str
    backend_port: int | None
    dest: str | None
    dest_port: int | None


@dataclass(frozen=True)
class ConntrackEntry:
    """What the decision reads of one kernel entry: the original destination and the reply source (the
    DNAT target); ``tcp_state`` is the conntrack TCP state name (None for UDP)."""

    protocol: str
    orig_dest: str
    orig_dest_port: int
    reply_source: str
    reply_source_port: int
    tcp_state: str | None = None


def ingress_pairs(ports: Iterable[IngressPort]) -> set[FlushTarget]:
    """Every (backend address, target port) each ingress port DNATs to, as targets."""
    return {
        FlushTarget(p.protocol, b.address, p.target, None, p.published)
        for p in ports
        for b in p.backends
        if b.local or p.policy != "local"  # as ingress_chains: policy local balances local tasks only
    }


def vip_pairs(vips: Iterable[ServiceVip]) -> set[FlushTarget]:
    """Every backend address each VIP DNATs to (every port, both protocols), as targets."""
    return {
        FlushTarget(proto, b.address, None, v.vip, None)
        for v in vips
        for b in v.backends
        for proto in PROTOCOLS
    }


def removed_targets(
    old: tuple[Iterable[IngressPort], Iterable[ServiceVip]] | None,
    new: tuple[Iterable[IngressPort], Iterable[ServiceVip]],
) -> list[FlushTarget]:
    """The targets the ``old`` rule set DNATed to and the ``new`` one does not (sorted); none when ``old``
    is unknown (a daemon's first write: what a crashed one wrote is not known)."""
    if old is None:
        return []
    before = ingress_pairs(old[0]) | vip_pairs(old[1])
    after = ingress_pairs(new[0]) | vip_pairs(new[1])
    return sorted(before - after, key=sort_key)


def should_delete(target: FlushTarget, entry: ConntrackEntry) -> bool:
    """True when ``entry`` was DNATed to ``target``'s backend by ``target``'s rule and is a UDP flow or a
    TCP connection the backend never answered."""
    if entry.protocol != target.protocol or entry.reply_source != target.backend:
        return False
    if target.backend_port is not None and entry.reply_source_port != target.backend_port:
        return False
    if target.dest is not None and entry.orig_dest != target.dest:
        return False
    if target.dest_port is not None and entry.orig_dest_port != target.dest_port:
        return False
    return entry.protocol != "tcp" or entry.tcp_state in TCP_STATES_DELETED


def sort_key(t: FlushTarget) -> tuple[str, str, int, str, int]:
    """The order targets are listed and flushed in."""
    return (t.protocol, t.backend, t.backend_port or 0, t.dest or "", t.dest_port or 0)
