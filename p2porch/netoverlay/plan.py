"""Desired overlay state from the local node, its live peers and their leases (pure).

Owns the inputs (``LocalNode``, ``OverlayPeer``, ``OverlaySettings``), the VTEP MAC derivation and the
desired kernel, Docker network and firewall state. It never reads or changes the kernel, never
imports pyroute2, docker, trio or subprocess, and never logs: skipped peers come back in the plan.

VTEP MACs are derived from the lease (``vtep_mac``): a locally administered unicast MAC whose last
four bytes are the subnet's network address. Leases never overlap, so the MACs are unique in the
cluster and no node needs another node's MAC as metadata; every node computes the same value.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from .. import ipv4
from ..errors import ConfigError

VXLAN_OVERHEAD_BYTES = 50  # outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8
DEFAULT_DEVICE = "p2p-vx0"
DEFAULT_BRIDGE = "p2p-br0"
DEFAULT_NETWORK = "p2porch"
FIREWALL_COMMENT_PREFIX = "p2porch-"
VXLAN_FILTER_CHAIN = "P2P-VXLAN"  # filter table: VXLAN accepted only from member VTEPs
#: the kernel ipset (hash:ip) of the member VTEPs the chain accepts; not ``p2p-``: network isolation
#: owns every set with that prefix (and destroys those it did not plan)
VXLAN_ALLOW_SET = "p2porch-vxlan"
# Entry chains of the service traffic rules (netoverlay/traffic.py fills them; the overlay owns the jumps)
TRAFFIC_NAT_ENTRY = "P2P-SERVICES"
TRAFFIC_NAT_POSTROUTING = "P2P-POSTROUTING"
TRAFFIC_FORWARD = "P2P-FORWARD"
_MAC_PREFIX = (0x0E, 0x70)  # 0x0e: locally administered, unicast


@dataclass(frozen=True)
class LocalNode:
    """This node: its id, advertise (underlay) address, leased subnet and, if known, underlay device."""

    node_id: str
    underlay_addr: str
    subnet: str
    underlay_dev: str | None = None  # None: the driver finds the device that holds underlay_addr


@dataclass(frozen=True)
class OverlayPeer:
    """One other live node: its id, advertise address and leased subnet."""

    node_id: str
    underlay_addr: str
    subnet: str
    vxlan_port: int = 0  # the port it receives VXLAN at (0 = the cluster's; a NAT's forward may differ)


@dataclass(frozen=True)
class OverlaySettings:
    """Overlay knobs shared by every node of a cluster (VNI, port and CIDR must match cluster-wide)."""

    cluster_cidr: str = "10.240.0.0/16"
    vni: int = 4242
    vxlan_port: int = 4789
    device: str = DEFAULT_DEVICE
    bridge: str = DEFAULT_BRIDGE
    network_name: str = DEFAULT_NETWORK
    dns_port: int = 53
    path_mtu: int = 0  # the smallest MTU on the way to any peer (a WAN, a tunnel); 0 = the underlay device's

    def __post_init__(self) -> None:
        _network(self.cluster_cidr, "cluster_cidr")
        if not 1 <= self.vni < 1 << 24:
            raise ConfigError(f"VNI {self.vni} is outside 1..16777215", field="vni")
        if not 1 <= self.vxlan_port <= 65535:
            raise ConfigError(f"port {self.vxlan_port} is outside 1..65535", field="vxlan_port")
        for name in ("device", "bridge"):
            value = getattr(self, name)
            if not 1 <= len(value) <= 15 or "/" in value or " " in value:
                raise ConfigError(f"{name} name {value!r} is not a valid interface name", field=name)


@dataclass(frozen=True)
class VxlanLink:
    """The one VXLAN device: its identity attributes (any difference means recreate)."""

    name: str
    vni: int
    port: int
    local: str
    underlay_dev: str
    mac: str
    learning: bool = False


@dataclass(frozen=True)
class PeerEntry:
    """What one programmed peer needs: a route to its subnet, a neighbour and an FDB entry."""

    node_id: str
    subnet: str
    gateway: str  # the peer's subnet network address, also its VXLAN device address
    mac: str
    underlay_addr: str
    vxlan_port: int = 0  # 0: the device's port; else the peer's own (behind a NAT's port forward)

    @property
    def fdb_dst(self) -> str:
        """The FDB destination: ``ip``, or ``ip:port`` when the peer's VXLAN port is not the device's."""
        return f"{self.underlay_addr}:{self.vxlan_port}" if self.vxlan_port else self.underlay_addr


@dataclass(frozen=True)
class OverlayPlan:
    """Desired kernel state of the overlay device on one node."""

    link: VxlanLink
    address: str  # "10.241.1.0/32"
    peers: tuple[PeerEntry, ...]
    skipped: tuple[tuple[str, str], ...] = ()  # (node_id, reason) for peers left out

    @property
    def routes(self) -> dict[str, str]:
        return {p.subnet: p.gateway for p in self.peers}

    @property
    def neighbours(self) -> dict[str, str]:
        return {p.gateway: p.mac for p in self.peers}

    @property
    def fdb(self) -> dict[str, str]:
        return {p.mac: p.fdb_dst for p in self.peers}


@dataclass(frozen=True)
class BridgeNetworkSpec:
    """The node's Docker bridge network for its lease."""

    name: str
    bridge: str
    subnet: str
    gateway: str
    mtu: int
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def options(self) -> dict[str, str]:
        return {
            "com.docker.network.bridge.name": self.bridge,
            "com.docker.network.bridge.enable_ip_masquerade": "false",
            "com.docker.network.driver.mtu": str(self.mtu),
        }


@dataclass(frozen=True)
class FirewallRule:
    """One iptables rule p2porch owns; ``comment`` (derived from the rule) identifies it in listings."""

    table: str
    chain: str
    spec: tuple[str, ...]

    @property
    def comment(self) -> str:
        digest = hashlib.sha256(" ".join((self.table, self.chain, *self.spec)).encode()).hexdigest()[:10]
        return FIREWALL_COMMENT_PREFIX + digest

    def argv(self) -> list[str]:
        """Rule arguments after the chain name (match spec, owner comment, target)."""
        jump = list(self.spec).index("-j")
        return [*self.spec[:jump], "-m", "comment", "--comment", self.comment, *self.spec[jump:]]


@dataclass(frozen=True)
class VxlanFilter:
    """Who may send VXLAN to this node: the underlay (VTEP) addresses of the programmed peers.

    The members live in the kernel ipset ``set_name``; the chain is static (one rule that accepts the
    set's members, then DROP), so a join or a leave changes one set entry over netlink instead of
    rewriting the chain. Anything else that reaches the VXLAN port is dropped.
    """

    port: int
    sources: tuple[str, ...]
    chain: str = VXLAN_FILTER_CHAIN
    set_name: str = VXLAN_ALLOW_SET

    def chain_rules(self) -> list[str]:
        """The chain's rules as ``iptables -S`` prints them (independent of the members)."""
        return [
            f"-A {self.chain} -m set --match-set {self.set_name} src -j ACCEPT",
            f"-A {self.chain} -j DROP",
        ]

    def restore_text(self) -> str:
        """One ``iptables-restore --noflush`` transaction that declares the chain (replaced atomically)."""
        return "\n".join(["*filter", f":{self.chain} - [0:0]", *self.chain_rules(), "COMMIT", ""])


@dataclass(frozen=True)
class SetDiff:
    """Addresses to add to and remove from a set, each sorted numerically."""

    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.add or self.remove)

    def describe(self) -> str:
        return " ".join([*(f"+{a}" for a in self.add), *(f"-{a}" for a in self.remove)])


def diff_members(wanted: Iterable[str], current: Iterable[str]) -> SetDiff:
    """What turns a set holding ``current`` into one holding exactly ``wanted``."""
    want, have = set(wanted), set(current)
    return SetDiff(tuple(sorted(want - have, key=ipv4.number)), tuple(sorted(have - want, key=ipv4.number)))


def plan_vxlan_filter(plan: OverlayPlan, settings: OverlaySettings) -> VxlanFilter:
    """The allow-list for ``plan``: exactly the peers the overlay programs (skipped peers are not in it)."""
    return VxlanFilter(settings.vxlan_port, tuple(sorted({p.underlay_addr for p in plan.peers})))


def vtep_mac(subnet: str) -> str:
    """The VTEP MAC of the node that leases ``subnet`` (0e:70 + the subnet's network address)."""
    net = _network(subnet, "subnet")
    octets = (*_MAC_PREFIX, *net.network_address.packed)
    return ":".join(f"{b:02x}" for b in octets)


@dataclass(frozen=True)
class _ParsedPeer:
    """One peer's addresses parsed once (see :func:`_parse_peer`)."""

    net: ipaddress.IPv4Network
    underlay: str  # canonical
    subnet: str  # canonical
    gateway: str
    mac: str
    inside: bool  # the subnet lies in the cluster CIDR


#: peers parsed before: every member plans every live peer again for each join (a plan per burst of
#: commits), and parsing their addresses was most of a plan's CPU (issue 19, joins). Bounded: the
#: addresses of a cluster's nodes, plus what churn left; a bad address raises and is not kept.
@functools.lru_cache(maxsize=4096)
def _parse_peer(subnet: str, underlay_addr: str, cluster_cidr: str) -> _ParsedPeer:
    net = ipaddress.IPv4Network(subnet)
    return _ParsedPeer(
        net=net,
        underlay=str(ipaddress.IPv4Address(underlay_addr)),
        subnet=str(net),
        gateway=str(net.network_address),
        mac=vtep_mac(str(net)),
        inside=net.subnet_of(ipaddress.IPv4Network(cluster_cidr)),
    )


def vtep_address(subnet: str) -> str:
    """The address of the VXLAN device of the node that leases ``subnet`` (its network address)."""
    return str(_network(subnet, "subnet").network_address)


def plan_overlay(
    local: LocalNode, peers: list[OverlayPeer], settings: OverlaySettings, underlay_dev: str
) -> OverlayPlan:
    """Desired device, address and per-peer entries; bad or conflicting peers are skipped, not fatal."""
    cluster = _network(settings.cluster_cidr, "cluster_cidr")
    own = _network(local.subnet, "subnet")
    if not own.subnet_of(cluster):
        raise ConfigError(f"lease {own} is outside the cluster CIDR {cluster}", field="subnet")
    link = VxlanLink(
        name=settings.device,
        vni=settings.vni,
        port=settings.vxlan_port,
        local=str(ipaddress.IPv4Address(local.underlay_addr)),
        underlay_dev=underlay_dev,
        mac=vtep_mac(local.subnet),
    )
    entries: list[PeerEntry] = []
    skipped: list[tuple[str, str]] = []
    taken = TakenSubnets()
    taken.add(own)
    used_underlay = {(link.local, settings.vxlan_port)}
    for peer in sorted(peers, key=lambda p: p.node_id):
        reason = _check_peer(peer, local, settings, cluster, taken, used_underlay)
        if reason:
            skipped.append((peer.node_id, reason))
            continue
        entry = peer_entry(peer, settings)
        taken.add(_parse_peer(peer.subnet, peer.underlay_addr, settings.cluster_cidr).net)
        used_underlay.add((entry.underlay_addr, entry.vxlan_port or settings.vxlan_port))
        entries.append(entry)
    return OverlayPlan(
        link=link, address=f"{own.network_address}/32", peers=tuple(entries), skipped=tuple(skipped)
    )


def peer_entry(peer: OverlayPeer, settings: OverlaySettings) -> PeerEntry:
    """The entry of a peer that passed the checks (its addresses parse)."""
    parsed = _parse_peer(peer.subnet, peer.underlay_addr, settings.cluster_cidr)
    port = peer.vxlan_port if peer.vxlan_port != settings.vxlan_port else 0
    return PeerEntry(peer.node_id, parsed.subnet, parsed.gateway, parsed.mac, parsed.underlay, port)


def plan_network(local: LocalNode, settings: OverlaySettings, underlay_mtu: int) -> BridgeNetworkSpec:
    """The Docker bridge network for the local lease: gateway .1, MTU of the VXLAN device, or what
    fits the path when ``settings.path_mtu`` is below the underlay device's (encapsulated frames that
    exceed the path are fragmented or, with DF, dropped)."""
    net = _network(local.subnet, "subnet")
    if settings.path_mtu:
        underlay_mtu = min(underlay_mtu, settings.path_mtu)
    return BridgeNetworkSpec(
        name=settings.network_name,
        bridge=settings.bridge,
        subnet=str(net),
        gateway=str(net.network_address + 1),
        mtu=underlay_mtu - VXLAN_OVERHEAD_BYTES,
        labels={"p2porch.node": local.node_id, "p2porch.subnet": str(net)},
    )


def plan_firewall(
    local: LocalNode, settings: OverlaySettings, underlay_dev: str, forward_chain: str
) -> list[FirewallRule]:
    """iptables rules the overlay needs next to a default dockerd (see overlay-notes.md)."""
    subnet = str(_network(local.subnet, "subnet"))
    vx, br = settings.device, settings.bridge
    dns = str(settings.dns_port)
    return [
        # Masquerade only what leaves the cluster: overlay traffic keeps its container source address.
        FirewallRule(
            "nat", "POSTROUTING", ("-s", subnet, "!", "-d", settings.cluster_cidr, "-j", "MASQUERADE")
        ),
        # Nothing in Docker's rules accepts new overlay -> bridge traffic; accept both directions.
        FirewallRule("filter", forward_chain, ("-i", vx, "-o", br, "-j", "ACCEPT")),
        FirewallRule("filter", forward_chain, ("-i", br, "-o", vx, "-j", "ACCEPT")),
        # The lease has no local route until the Docker network exists (made on first need): what peers
        # send it must not follow the default route out of the underlay, unmasqueraded.
        FirewallRule(
            "filter",
            forward_chain,
            ("-i", vx, "!", "-o", br, "-d", subnet, "-j", "REJECT", "--reject-with", "icmp-host-unreachable"),
        ),
        # VXLAN on any interface goes through the member allow-list (accept members, drop the rest);
        # this also accepts peers under an INPUT policy of DROP. DNS on the bridge gateway needs the rest.
        FirewallRule(
            "filter", "INPUT", ("-p", "udp", "--dport", str(settings.vxlan_port), "-j", VXLAN_FILTER_CHAIN)
        ),
        FirewallRule("filter", "INPUT", ("-i", br, "-p", "udp", "--dport", dns, "-j", "ACCEPT")),
        FirewallRule("filter", "INPUT", ("-i", br, "-p", "tcp", "--dport", dns, "-j", "ACCEPT")),
        # Service traffic (ingress ports, VIPs): the chains are filled by the traffic rules' owner.
        FirewallRule("nat", "PREROUTING", ("-j", TRAFFIC_NAT_ENTRY)),
        FirewallRule("nat", "OUTPUT", ("-j", TRAFFIC_NAT_ENTRY)),
        FirewallRule("nat", "POSTROUTING", ("-j", TRAFFIC_NAT_POSTROUTING)),
        FirewallRule("filter", forward_chain, ("-j", TRAFFIC_FORWARD)),
    ]


def _check_peer(
    peer: OverlayPeer,
    local: LocalNode,
    settings: OverlaySettings,
    cluster: ipaddress.IPv4Network,
    taken: TakenSubnets,
    used_underlay: set[tuple[str, int]],
) -> str:
    if peer.node_id == local.node_id:
        return "is the local node"
    try:
        parsed = _parse_peer(peer.subnet, peer.underlay_addr, settings.cluster_cidr)
    except ValueError as exc:
        return f"invalid address: {exc}"
    net, underlay = parsed.net, parsed.underlay
    if not parsed.inside:
        return f"subnet {net} is outside the cluster CIDR {cluster}"
    if net.prefixlen > 30:
        return f"subnet {net} is too small"
    other = taken.first_overlap(net)
    if other is not None:
        return f"subnet {net} overlaps {other}"
    port = peer.vxlan_port or settings.vxlan_port
    if (underlay, port) in used_underlay:
        return f"underlay address {underlay} port {port} is already used"
    return ""


class TakenSubnets:
    """Pairwise disjoint networks in the order they were taken; finds the first one a network overlaps in
    O(log n + 33) instead of a scan (a plan of 1,000 peers made 500,000 ``overlaps`` calls: 1.2 s).

    Two CIDR blocks overlap only if one contains the other: a taken supernet of ``net`` is one of its
    prefixes of a length taken before (a set lookup each: one in a cluster of /24 leases, where trying
    all 33 lengths was half of a plan's CPU), a taken subnet of ``net`` starts inside it (bisect).
    """

    def __init__(self) -> None:
        self._order: dict[tuple[int, int], int] = {}  # (network int, prefix length) -> order taken
        self._nets: dict[int, ipaddress.IPv4Network] = {}  # network int -> the network (starts are unique)
        self._starts: list[int] = []  # sorted network ints
        self._lengths: list[int] = []  # the prefix lengths taken, sorted

    def add(self, net: ipaddress.IPv4Network) -> None:
        start, plen = int(net.network_address), net.prefixlen
        self._order[(start, plen)] = len(self._order)
        self._nets[start] = net
        bisect.insort(self._starts, start)
        if plen not in self._lengths:
            bisect.insort(self._lengths, plen)

    def first_overlap(self, net: ipaddress.IPv4Network) -> ipaddress.IPv4Network | None:
        """The earliest taken network that overlaps ``net``, or None."""
        start, end = int(net.network_address), int(net.broadcast_address)
        found: list[tuple[int, int]] = []  # (order, start)
        for plen in self._lengths:
            if plen > net.prefixlen:
                break
            key = (start & (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF, plen)
            if key in self._order:
                found.append((self._order[key], key[0]))
        i = bisect.bisect_left(self._starts, start)
        while i < len(self._starts) and self._starts[i] <= end:
            inner = self._nets[self._starts[i]]
            found.append((self._order[(self._starts[i], inner.prefixlen)], self._starts[i]))
            i += 1
        if not found:
            return None
        return self._nets[min(found)[1]]


def _network(text: str, name: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(text)
    except ValueError as exc:
        raise ConfigError(f"invalid {name} {text!r}: {exc}", field=name) from exc
