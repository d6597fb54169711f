"""Ingress rule set for published ports: committed endpoints in, one ``iptables-restore`` text out (pure).

Owns the kube-proxy-style NAT layout: ``P2P-INGRESS`` (jumped to from PREROUTING and OUTPUT for local
destinations) sends each published port to a per-port chain that picks one endpoint per new connection
with the ``statistic`` match (``--mode random --probability 1/(n-i)`` for endpoint ``i`` of ``n``, the
last one unconditional, so every endpoint gets 1/n) and DNATs to it; conntrack keeps the choice for the
connection. It never runs iptables and never reads state: the shell (not wired yet) applies the text
with ``iptables-restore --noflush`` so the whole set is replaced atomically.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

INGRESS_CHAIN = "P2P-INGRESS"


@dataclass(frozen=True)
class IngressPort:
    """One published port in ingress mode and the running, healthy task addresses that serve it."""

    published: int
    target: int
    protocol: str  # "tcp" | "udp"
    endpoints: tuple[str, ...]  # task addresses, any order (sorted when rendered)


def port_chain(port: IngressPort) -> str:
    """The per-port chain name (stable; iptables chain names are at most 28 characters)."""
    digest = hashlib.sha256(f"{port.protocol}/{port.published}".encode()).hexdigest()[:8]
    return f"P2P-IN-{port.protocol.upper()}-{port.published}-{digest}"[:28]


def render_ingress(ports: list[IngressPort]) -> str:
    """The nat-table ``iptables-restore --noflush`` input that replaces every ingress chain."""
    chains = [INGRESS_CHAIN]
    rules: list[str] = []
    for port in sorted(ports, key=lambda p: (p.protocol, p.published)):
        chain = port_chain(port)
        chains.append(chain)
        rules.append(f"-A {INGRESS_CHAIN} -p {port.protocol} --dport {port.published} -j {chain}")
        endpoints = sorted(set(port.endpoints))
        if not endpoints:  # no healthy task anywhere: refuse instead of timing out
            rules.append(f"-A {chain} -j RETURN")
            continue
        for i, address in enumerate(endpoints):
            left = len(endpoints) - i
            pick = "" if left == 1 else f"-m statistic --mode random --probability {1 / left:.10f} "
            rules.append(
                f"-A {chain} -p {port.protocol} {pick}-j DNAT --to-destination {address}:{port.target}"
            )
    lines = ["*nat", *(f":{c} - [0:0]" for c in chains), *rules, "COMMIT", ""]
    return "\n".join(lines)
