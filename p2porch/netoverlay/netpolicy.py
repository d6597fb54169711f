"""Network isolation as an iptables rule set, built from who is on which network (pure).

Every task address of the cluster belongs to the networks of its service (``Endpoint``). A node
polices the traffic that reaches *its own* tasks: a packet from a known task address to a local task
address is accepted only when the two share a network; sources that are not task addresses (hosts,
VTEPs, clients outside the cluster reaching a published port, a task whose address is not committed
yet) are not policed, and neither is a local destination this node's rules do not know yet: a task that
has just started is reachable from the moment another node's VIP/ingress rules send it connections,
before this node's next rewrite names it (a window of one rule rewrite, instead of refused
connections during every rolling update). Tasks whose networks are all ``internal`` get no traffic out
of the cluster CIDR.

The output is one ``iptables-restore --noflush`` transaction in the filter table (chains it declares
are flushed and rewritten atomically):

``P2P-NETPOL``            jumped to first in FORWARD (DOCKER-USER when dockerd made it)
  ESTABLISHED,RELATED     RETURN (replies of allowed flows)
  -s I ! -d CLUSTER       P2P-NETREJ   for each local task I on internal networks only
  ! -s CLUSTER            RETURN       (outside clients: published ports)
  ! -d LEASE              RETURN       (policed where the destination lives)
  -d D                    P2P-NET-<n>  for each local task D and each network n of D
  -d D                    P2P-NETSRC   for each local task D (no shared network with the source)
``P2P-NETSRC``            -s T -j P2P-NETREJ for each known task address T
``P2P-NET-<n>``           -s M -j ACCEPT for every member M of network n (cluster-wide)
``P2P-NETREJ``            TCP reset, ICMP admin-prohibited otherwise ("connection refused")

This module never runs anything; :mod:`p2porch.netoverlay.policy_firewall` applies the text.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .. import ipv4

POLICY_CHAIN = "P2P-NETPOL"
REJECT_CHAIN = "P2P-NETREJ"
SOURCES_CHAIN = "P2P-NETSRC"
NETWORK_CHAIN_PREFIX = "P2P-NET-"
JUMP_COMMENT = "p2pnet-policy"  # not "p2porch-": the overlay firewall's own rule sweep leaves it alone


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One task address and the networks of its service."""

    address: str
    networks: frozenset[str]


@dataclass(frozen=True, slots=True)
class PolicyInput:
    """What one node's policy is built from (see :func:`plan_policy`)."""

    cluster_cidr: str
    local_subnet: str  # this node's lease: its tasks' addresses
    endpoints: tuple[Endpoint, ...]  # every known task address of the cluster
    internal_networks: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class PolicyPlan:
    """The rule text and the chain names it owns (a chain not in ``chains`` is stale)."""

    text: str
    chains: tuple[str, ...]
    rule_count: int

    def chain_lines(self, chain: str) -> list[str]:
        """The ``-A`` lines of ``chain`` as ``iptables -S CHAIN`` prints them (compared with the kernel)."""
        return [line for line in self.text.splitlines() if line.startswith(f"-A {chain} ")]


def network_chain(network: str) -> str:
    """``P2P-NET-`` and 10 hex digits of the network name's SHA-256 (iptables chain names are short)."""
    return NETWORK_CHAIN_PREFIX + hashlib.sha256(network.encode()).hexdigest()[:10]


def _host(address: str) -> str:
    return ipv4.host32(address)


def valid_endpoints(endpoints: Iterable[Endpoint], cluster_cidr: str) -> dict[str, frozenset[str]]:
    """Address -> networks for IPv4 addresses inside the cluster CIDR (others are ignored); an address
    listed twice (an old task and its successor) gets the union of their networks."""
    base, mask = ipv4.network_mask(cluster_cidr)
    out: dict[str, frozenset[str]] = {}
    for ep in endpoints:
        found = ipv4.parsed(ep.address)
        if found is None or found[0] & mask != base or not ep.networks:
            continue
        key = found[1]
        prior = out.get(key)
        out[key] = ep.networks if prior is None else prior | ep.networks
    return out


def may_talk(a: frozenset[str], b: frozenset[str]) -> bool:
    """The decision the rules implement: two tasks may talk when they share a network."""
    return not a.isdisjoint(b)


def plan_policy(spec: PolicyInput) -> PolicyPlan:
    """The rule set for one node; deterministic (sorted) so equal inputs give equal text."""
    cluster = str(ipaddress.IPv4Network(spec.cluster_cidr))
    lease = ipaddress.IPv4Network(spec.local_subnet)
    base, mask = int(lease.network_address), int(lease.netmask)
    members = valid_endpoints(spec.endpoints, spec.cluster_cidr)
    local = {a: nets for a, nets in members.items() if ipv4.number(a) & mask == base}
    by_network: dict[str, list[str]] = {}
    for address, nets in members.items():
        for net in nets:
            by_network.setdefault(net, []).append(address)
    local_networks = sorted({n for nets in local.values() for n in nets})
    order = sorted(members, key=ipv4.number)
    local_order = [a for a in order if a in local]

    rules: list[str] = [
        f"-A {POLICY_CHAIN} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
    ]
    for address in local_order:
        if local[address] <= spec.internal_networks:
            rules.append(f"-A {POLICY_CHAIN} -s {_host(address)} ! -d {cluster} -j {REJECT_CHAIN}")
    rules.append(f"-A {POLICY_CHAIN} ! -s {cluster} -j RETURN")
    rules.append(f"-A {POLICY_CHAIN} ! -d {lease} -j RETURN")
    for address in local_order:
        for net in sorted(local[address]):
            rules.append(f"-A {POLICY_CHAIN} -d {_host(address)} -j {network_chain(net)}")
        rules.append(f"-A {POLICY_CHAIN} -d {_host(address)} -j {SOURCES_CHAIN}")
    for address in order:
        rules.append(f"-A {SOURCES_CHAIN} -s {_host(address)} -j {REJECT_CHAIN}")
    rules.append(f"-A {REJECT_CHAIN} -p tcp -j REJECT --reject-with tcp-reset")
    rules.append(f"-A {REJECT_CHAIN} -j REJECT --reject-with icmp-admin-prohibited")
    for net in local_networks:
        chain = network_chain(net)
        for address in sorted(by_network[net], key=ipv4.number):
            rules.append(f"-A {chain} -s {_host(address)} -j ACCEPT")
    chains = (POLICY_CHAIN, SOURCES_CHAIN, REJECT_CHAIN, *(network_chain(n) for n in local_networks))
    lines = ["*filter", *(f":{c} - [0:0]" for c in chains), *rules, "COMMIT", ""]
    return PolicyPlan("\n".join(lines), chains, len(rules))


def stale_chains(existing: Iterable[str], plan: PolicyPlan) -> list[str]:
    """Per-network chains left from networks or members that are gone (deleted after the new text)."""
    wanted = set(plan.chains)
    return sorted(c for c in existing if c.startswith(NETWORK_CHAIN_PREFIX) and c not in wanted)


def jump_rule(forward_chain: str) -> list[str]:
    """The arguments of the first rule of ``forward_chain``: every forwarded packet meets the policy."""
    return [forward_chain, "-m", "comment", "--comment", JUMP_COMMENT, "-j", POLICY_CHAIN]


def endpoints_from(addresses: Mapping[str, Iterable[str]]) -> tuple[Endpoint, ...]:
    """Endpoints from ``address -> networks`` (a convenience for callers and tests)."""
    return tuple(Endpoint(a, frozenset(n)) for a, n in sorted(addresses.items()))
