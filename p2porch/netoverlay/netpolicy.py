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
are flushed and rewritten atomically) plus the members of the ipsets its rules match on. The rules are
O(local tasks); the cluster-wide address lists live in sets (``hash:ip``), which the shell changes by
difference: an address that comes or goes elsewhere in the cluster is one set entry, not a rewrite of
rules naming every task of the cluster (issue 19: at 100,000 tasks that was ~200,000 rules per node,
planned and rewritten on every change):

``P2P-NETPOL``            jumped to first in FORWARD (DOCKER-USER when dockerd made it)
  ESTABLISHED,RELATED     RETURN (replies of allowed flows)
  -s I ! -d CLUSTER       P2P-NETREJ   for each local task I on internal networks only
  ! -s CLUSTER            RETURN       (outside clients: published ports)
  ! -d LEASE              RETURN       (policed where the destination lives)
  -d D, src in p2p-n-<n>  ACCEPT       for each local task D and each network n of D
  -d D, src in p2p-tasks  P2P-NETREJ   for each local task D (no shared network with the source)
``P2P-NETREJ``            TCP reset, ICMP admin-prohibited otherwise ("connection refused")
set ``p2p-tasks``         every known task address (only planned when a local task needs it)
set ``p2p-n-<n>``         every member of network n (cluster-wide), for each network with a local task

This module never runs anything; :mod:`p2porch.netoverlay.policy_firewall` applies the text and
:mod:`p2porch.netoverlay.ipsets` the sets.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .. import ipv4

POLICY_CHAIN = "P2P-NETPOL"
REJECT_CHAIN = "P2P-NETREJ"
CHAIN_PREFIX = "P2P-NET"  # every chain of this module's layouts, this one's and earlier ones' (stale)
TASKS_SET = "p2p-tasks"
NETWORK_SET_PREFIX = "p2p-n-"
SET_PREFIX = "p2p-"  # every set this module plans starts with it (and no other set is touched)
JUMP_COMMENT = "p2pnet-policy"  # not "p2porch-": the overlay firewall's own rule sweep leaves it alone


@dataclass(frozen=True, slots=True)
class PolicyInput:
    """What one node's policy is built from (see :func:`plan_policy`)."""

    cluster_cidr: str
    local_subnet: str  # this node's lease: its tasks' addresses
    #: every known task address of the cluster and its service's networks, as the caller keeps it (no
    #: object per address, no sort; issue 19, 100,000 tasks)
    addresses: Mapping[str, frozenset[str]]
    internal_networks: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class SetEdits:
    """How a plan's sets differ from the content its planner named ``since`` (an earlier plan's
    ``sets_token``): per set, the addresses to add and to delete. A set in ``fresh`` (newly planned) is
    made from its ``added`` alone: created if missing and flushed first. Sets the plan no longer names
    are not listed (the firewall destroys them)."""

    since: object
    added: Mapping[str, frozenset[str]]
    removed: Mapping[str, frozenset[str]]
    fresh: frozenset[str]


@dataclass(frozen=True, slots=True)
class PolicyPlan:
    """The rule text, the chain names it owns (a ``P2P-NET*`` chain not in ``chains`` is stale) and the
    ipsets its rules match on: name -> member addresses (canonical, no prefix length). A kept plan
    (:mod:`p2porch.netoverlay.policy_sets`) also carries ``edits`` from its predecessor, so the firewall
    can write the difference without reading every member, and names its own set content by
    ``sets_token``; neither takes part in equality."""

    text: str
    chains: tuple[str, ...]
    rule_count: int
    sets: Mapping[str, frozenset[str]]
    edits: SetEdits | None = field(default=None, compare=False)
    sets_token: object | None = field(default=None, compare=False)

    def chain_lines(self, chain: str) -> list[str]:
        """The ``-A`` lines of ``chain`` as ``iptables -S CHAIN`` prints them (compared with the kernel)."""
        return [line for line in self.text.splitlines() if line.startswith(f"-A {chain} ")]


def network_set(network: str) -> str:
    """``p2p-n-`` and 10 hex digits of the network name's SHA-256 (ipset names are at most 31 bytes)."""
    return NETWORK_SET_PREFIX + hashlib.sha256(network.encode()).hexdigest()[:10]


def _host(address: str) -> str:
    return ipv4.host32(address)


def valid_addresses(addresses: Mapping[str, frozenset[str]], cluster_cidr: str) -> dict[str, frozenset[str]]:
    """The members of the sets: IPv4 addresses inside the cluster CIDR with at least one network (others
    are ignored). ``IPv4Address`` accepts canonical text only (no leading zeros), so a valid key is its
    own canonical form and no two keys name one address."""
    base, mask = ipv4.network_mask(cluster_cidr)
    return {a: nets for a, nets in addresses.items() if nets and inside(a, base, mask)}


def inside(address: str, base: int, mask: int) -> bool:
    """A set member's test: canonical IPv4 text whose number is inside ``(base, mask)``."""
    found = ipv4.parsed(address)
    return found is not None and found[0] & mask == base and found[1] == address


def may_talk(a: frozenset[str], b: frozenset[str]) -> bool:
    """The decision the rules implement: two tasks may talk when they share a network."""
    return not a.isdisjoint(b)


def plan_policy(spec: PolicyInput) -> PolicyPlan:
    """The rules and sets for one node; deterministic (rules sorted) so equal inputs give equal plans.
    O(task addresses) for the sets, O(local tasks) for the rule text (nothing cluster-wide is sorted)."""
    lease_base, lease_mask = ipv4.network_mask(spec.local_subnet)
    members = valid_addresses(spec.addresses, spec.cluster_cidr)
    local = {a: nets for a, nets in members.items() if ipv4.number(a) & lease_mask == lease_base}
    local_networks = sorted({n for nets in local.values() for n in nets})
    by_network: dict[str, list[str]] = {n: [] for n in local_networks}
    for address, nets in members.items():
        for net in nets:
            found = by_network.get(net)
            if found is not None:
                found.append(address)
    text, count = plan_rules(spec.cluster_cidr, spec.local_subnet, local, spec.internal_networks)
    sets = {network_set(n): frozenset(by_network[n]) for n in local_networks}
    if local:  # the sets are only planned when a rule matches on them
        sets[TASKS_SET] = frozenset(members)
    return PolicyPlan(text, POLICY_CHAINS, count, sets)


POLICY_CHAINS = (POLICY_CHAIN, REJECT_CHAIN)


def plan_rules(
    cluster_cidr: str, local_subnet: str, local: Mapping[str, frozenset[str]], internal: frozenset[str]
) -> tuple[str, int]:
    """The ``iptables-restore`` text of :data:`POLICY_CHAINS` and its rule count, for the ``local`` task
    addresses (valid, inside ``local_subnet``) and their networks: O(local tasks)."""
    cluster = str(ipaddress.IPv4Network(cluster_cidr))
    lease = str(ipaddress.IPv4Network(local_subnet))
    local_order = sorted(local, key=ipv4.number)
    rules: list[str] = [
        f"-A {POLICY_CHAIN} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
    ]
    for address in local_order:
        if local[address] <= internal:
            rules.append(f"-A {POLICY_CHAIN} -s {_host(address)} ! -d {cluster} -j {REJECT_CHAIN}")
    rules.append(f"-A {POLICY_CHAIN} ! -s {cluster} -j RETURN")
    rules.append(f"-A {POLICY_CHAIN} ! -d {lease} -j RETURN")
    for address in local_order:
        for net in sorted(local[address]):
            rules.append(
                f"-A {POLICY_CHAIN} -d {_host(address)} -m set --match-set {network_set(net)} src -j ACCEPT"
            )
        rules.append(
            f"-A {POLICY_CHAIN} -d {_host(address)} -m set --match-set {TASKS_SET} src -j {REJECT_CHAIN}"
        )
    rules.append(f"-A {REJECT_CHAIN} -p tcp -j REJECT --reject-with tcp-reset")
    rules.append(f"-A {REJECT_CHAIN} -j REJECT --reject-with icmp-admin-prohibited")
    lines = ["*filter", *(f":{c} - [0:0]" for c in POLICY_CHAINS), *rules, "COMMIT", ""]
    return "\n".join(lines), len(rules)


def stale_chains(existing: Iterable[str], plan: PolicyPlan) -> list[str]:
    """``P2P-NET*`` chains the plan does not declare: earlier layouts' (``P2P-NETSRC``, ``P2P-NET-<hash>``),
    deleted after the new text no longer jumps to them."""
    wanted = set(plan.chains)
    return sorted(c for c in existing if c.startswith(CHAIN_PREFIX) and c not in wanted)


def jump_rule(forward_chain: str) -> list[str]:
    """The arguments of the first rule of ``forward_chain``: every forwarded packet meets the policy."""
    return [forward_chain, "-m", "comment", "--comment", JUMP_COMMENT, "-j", POLICY_CHAIN]
