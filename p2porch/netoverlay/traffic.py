"""The NAT and filter rules that carry service traffic: ingress ports and VIPs in one transaction (pure).

Owns the chain layout shared by ``ingress.py`` (published ports on every node) and ``vip.py`` (service
virtual addresses), and renders both into one ``iptables-restore --noflush`` text that declares (so
flushes and refills) every p2porch traffic chain and deletes the ones no longer wanted: the kernel
switches from the old rule set to the new one atomically, and a daemon that crashed mid-way leaves
either. It never runs iptables and never reads cluster state.

Layout (nat unless said), kube-proxy's iptables mode without IPVS::

    PREROUTING, OUTPUT -> P2P-SERVICES        (jumps owned by the overlay's firewall plan)
    P2P-SERVICES    -d VIP/32 -> P2P-SVC-<h>  one per VIP service with a backend
                    -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -> P2P-INGRESS
    P2P-INGRESS     -p PROTO --dport PUBLISHED -> P2P-IN-<PROTO>-<PUBLISHED>
    P2P-SVC-*, P2P-IN-*   one rule per backend: -m statistic --mode random --probability 1/(n-i)
                    -> P2P-EP-<h> (the last one unconditional: each backend gets 1/n of new connections)
    P2P-EP-<h>      [MATCH] -j MARK --or-mark MASQ_MARK ; -j DNAT --to-destination ADDR[:PORT]
    POSTROUTING -> P2P-POSTROUTING: marked packets are masqueraded (replies come back through this node)
    filter: DOCKER-USER|FORWARD -> P2P-FORWARD: DNATed connections to/from the overlay are accepted,
            anything else addressed to the VIP range is rejected (no backend: refused, not timed out)

Conntrack pins each connection to the backend chosen by its first packet.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .plan import (
    DEFAULT_BRIDGE,
    DEFAULT_DEVICE,
    TRAFFIC_FORWARD,
    TRAFFIC_NAT_ENTRY,
    TRAFFIC_NAT_POSTROUTING,
)

SERVICES_CHAIN = TRAFFIC_NAT_ENTRY
INGRESS_CHAIN = "P2P-INGRESS"
POSTROUTING_CHAIN = TRAFFIC_NAT_POSTROUTING
FORWARD_CHAIN = TRAFFIC_FORWARD
MASQ_MARK = "0x40000"  # one bit of the packet mark; kube-proxy uses 0x4000 and 0x8000
#: chains created per service, port or backend; any of them that is not wanted any more is deleted
DYNAMIC_PREFIXES = ("P2P-SVC-", "P2P-IN-", "P2P-EP-")
STATIC_NAT_CHAINS = (SERVICES_CHAIN, INGRESS_CHAIN, POSTROUTING_CHAIN)
STATIC_FILTER_CHAINS = (FORWARD_CHAIN,)


@dataclass(frozen=True)
class Backend:
    """One running, healthy task that may receive connections; ``local`` when it runs on this node."""

    address: str
    local: bool = False


@dataclass(frozen=True)
class TrafficSettings:
    """What every rule set of one node depends on besides the services."""

    cluster_cidr: str
    local_subnet: str  # this node's lease: its containers' addresses
    vip_cidr: str
    device: str = DEFAULT_DEVICE
    bridge: str = DEFAULT_BRIDGE


@dataclass
class ChainSet:
    """Chains (in declaration order) and their rules, as iptables-restore lines without the table."""

    chains: dict[str, list[str]] = field(default_factory=dict)

    def add(self, chain: str, rule: str = "") -> None:
        rules = self.chains.setdefault(chain, [])
        if rule:
            rules.append(f"-A {chain} {rule}")


def short_hash(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16].upper()


def balance(
    out: ChainSet,
    chain: str,
    backends: Sequence[tuple[str, str]],
    *,
    masq: dict[str, str],
    port: int | None = None,
    protocol: str = "tcp",
) -> None:
    """Fill ``chain`` with one statistic pick per backend ``(address, endpoint chain)`` and the endpoint
    chains themselves, which DNAT to the address (and ``port`` when given, else the original port);
    ``masq[address]`` is the match (possibly "") under which that backend's packets are masqueraded."""
    out.add(chain)
    ordered = sorted(backends)
    for i, (_, ep_chain) in enumerate(ordered):
        left = len(ordered) - i
        pick = "" if left == 1 else f"-m statistic --mode random --probability {1 / left:.10f} "
        out.add(chain, f"{pick}-j {ep_chain}")
    for address, ep_chain in ordered:
        out.add(ep_chain)
        if address in masq:
            out.add(ep_chain, f"{masq[address]}-j MARK --or-mark {MASQ_MARK}")
        target = address if port is None else f"{address}:{port}"
        proto = "" if port is None else f"-p {protocol} "
        out.add(ep_chain, f"{proto}-j DNAT --to-destination {target}")


def static_chains(settings: TrafficSettings) -> tuple[ChainSet, ChainSet]:
    """The fixed part: the masquerade chain (nat) and the forward chain (filter)."""
    nat, flt = ChainSet(), ChainSet()
    for chain in STATIC_NAT_CHAINS:
        nat.add(chain)
    nat.add(POSTROUTING_CHAIN, f"-m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN")
    nat.add(POSTROUTING_CHAIN, f"-j MARK --xor-mark {MASQ_MARK}")
    nat.add(POSTROUTING_CHAIN, "-j MASQUERADE")
    for direction in ("-o", "-i"):
        for dev in (settings.bridge, settings.device):
            flt.add(FORWARD_CHAIN, f"{direction} {dev} -m conntrack --ctstate DNAT -j ACCEPT")
    flt.add(FORWARD_CHAIN, f"-d {settings.vip_cidr} -j REJECT")
    return nat, flt


def render(nat: ChainSet, flt: ChainSet, existing: Iterable[str] = ()) -> str:
    """One iptables-restore transaction: declare every wanted chain (flush + refill) and delete the dynamic
    chains in ``existing`` that are no longer wanted (they are declared first, so flushed, then ``-X``)."""
    wanted = set(nat.chains) | set(flt.chains)
    stale = sorted(c for c in set(existing) if c.startswith(DYNAMIC_PREFIXES) and c not in wanted)
    lines = ["*nat"]
    lines += [f":{c} - [0:0]" for c in (*nat.chains, *stale)]
    lines += [rule for rules in nat.chains.values() for rule in rules]
    lines += [f"-X {c}" for c in stale]
    lines += ["COMMIT", "*filter"]
    lines += [f":{c} - [0:0]" for c in flt.chains]
    lines += [rule for rules in flt.chains.values() for rule in rules]
    lines += ["COMMIT", ""]
    return "\n".join(lines)
