"""Service VIP rules: one virtual address per service, balanced per connection over healthy tasks (pure).

Owns ``ServiceVip`` and its chains in the layout of ``traffic.py``: ``-d VIP/32`` in ``P2P-SERVICES``
jumps to ``P2P-SVC-<hash>``, which picks a backend per new connection and DNATs to the task address
with the original port (every port of the service, as Swarm's VIPs). Containers keep their source
address towards tasks on other nodes (the reply crosses the overlay back to the client's node, whose
conntrack undoes the DNAT); packets to a task on this node (same bridge) and packets from the node
itself are masqueraded so the reply cannot bypass that conntrack. The chain key includes ``network``
so a VIP per network can be added. It never runs iptables and never reads cluster state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .traffic import SERVICES_CHAIN, Backend, ChainSet, TrafficSettings, balance, short_hash


@dataclass(frozen=True)
class ServiceVip:
    """One service's virtual address and its backends (running, healthy tasks anywhere)."""

    service_id: str
    vip: str
    backends: tuple[Backend, ...]
    network: str = ""  # "" = the cluster overlay; a network's own VIP later


def vip_chain(svc: ServiceVip) -> str:
    return "P2P-SVC-" + short_hash(svc.network, svc.service_id)


def vip_chains(nat: ChainSet, vips: Iterable[ServiceVip], settings: TrafficSettings) -> None:
    """Add each VIP's jump (to ``P2P-SERVICES``, before the ingress jump) and its chains to ``nat``."""
    for svc in sorted(vips, key=lambda v: (v.vip, v.network, v.service_id)):
        backends = {b.address: b for b in svc.backends}
        if not backends:  # no jump: the filter rejects the VIP (connection refused, not a timeout)
            continue
        chain = vip_chain(svc)
        nat.add(SERVICES_CHAIN, f"-d {svc.vip}/32 -j {chain}")
        chosen = []
        masq: dict[str, str] = {}
        for backend in backends.values():
            ep = "P2P-EP-" + short_hash("vip", svc.network, svc.service_id, backend.address)
            chosen.append((backend.address, ep))
            masq[backend.address] = "" if backend.local else f"! -s {settings.cluster_cidr} "
        balance(nat, chain, chosen, masq=masq)
