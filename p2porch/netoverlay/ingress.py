"""Ingress rules for published ports: every node's address serves them, balanced over healthy tasks (pure).

Owns ``IngressPort`` and its chains in the layout of ``traffic.py``: a jump per published port from
``P2P-INGRESS`` to ``P2P-IN-<PROTO>-<PORT>``, which picks a backend per new connection and DNATs to
``task address:target port``. Policy ``cluster`` balances over every healthy task in the cluster;
packets to a task on another node are masqueraded so the reply returns through the receiving node
(the task sees that node's overlay address), packets to a local task keep the client's address.
Policy ``local`` balances over this node's tasks only and never masquerades outside traffic: the task
sees the real client address (Kubernetes' ``externalTrafficPolicy: Local``); a node without a local
task does not answer the port. It never runs iptables and never reads cluster state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .traffic import INGRESS_CHAIN, SERVICES_CHAIN, Backend, ChainSet, TrafficSettings, balance, short_hash


@dataclass(frozen=True)
class IngressPort:
    """One published port in ingress mode, its policy and the backends (running, healthy tasks) serving it."""

    published: int
    target: int
    protocol: str  # "tcp" | "udp"
    backends: tuple[Backend, ...]
    policy: str = "cluster"  # cluster | local


def port_chain(port: IngressPort) -> str:
    """The per-port chain name (stable, at most 28 characters as iptables requires)."""
    return f"P2P-IN-{port.protocol.upper()}-{port.published}"


def ingress_chains(nat: ChainSet, ports: Iterable[IngressPort], settings: TrafficSettings) -> None:
    """Add ``P2P-INGRESS`` and every port's chains to ``nat``."""
    nat.add(INGRESS_CHAIN)
    nat.add(SERVICES_CHAIN, f"-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j {INGRESS_CHAIN}")
    for port in sorted(ports, key=lambda p: (p.protocol, p.published)):
        chain = port_chain(port)
        nat.add(INGRESS_CHAIN, f"-p {port.protocol} --dport {port.published} -j {chain}")
        backends = [b for b in port.backends if b.local or port.policy != "local"]
        chosen = []
        masq: dict[str, str] = {}
        for backend in {b.address: b for b in backends}.values():
            ep = "P2P-EP-" + short_hash("ingress", port.protocol, str(port.published), backend.address)
            chosen.append((backend.address, ep))
            # a local task answers through this node anyway (only its own containers need the hairpin
            # masquerade); a remote one must reply through this node
            masq[backend.address] = f"-s {settings.local_subnet} " if backend.local else ""
        balance(nat, chain, chosen, masq=masq, port=port.target, protocol=port.protocol)
