"""One node's whole service-traffic rule set: static chains, VIPs, then ingress ports (pure).

The composition point of ``traffic.py``, ``vip.py`` and ``ingress.py``: VIP jumps come before the
ingress jump in ``P2P-SERVICES`` (a VIP is never a local address, so the order only saves matching).
"""

from __future__ import annotations

from collections.abc import Iterable

from .ingress import IngressPort, ingress_chains
from .traffic import TrafficSettings, render, static_chains
from .vip import ServiceVip, vip_chains


def render_traffic(
    ports: Iterable[IngressPort],
    vips: Iterable[ServiceVip],
    settings: TrafficSettings,
    existing: Iterable[str] = (),
) -> str:
    """The ``iptables-restore --noflush`` text that makes the kernel's traffic chains exactly this set;
    ``existing`` is every chain name the kernel has now (stale dynamic ones are deleted)."""
    nat, flt = static_chains(settings)
    vip_chains(nat, vips, settings)
    ingress_chains(nat, ports, settings)
    return render(nat, flt, existing)
