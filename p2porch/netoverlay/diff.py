"""Observed kernel state of the overlay device and the minimal ordered operations to reach a plan (pure).

Owns ``KernelState`` (what the driver read), the operation types and ``diff_overlay``. It never
touches the kernel and never imports pyroute2. Everything on the overlay device is p2porch's: any
route, permanent neighbour, FDB entry or IPv4 address on it that the plan does not want is deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping, MutableSet, Set
from dataclasses import dataclass, field

from .plan import OverlayPlan, PeerEntry, VxlanLink


@dataclass(frozen=True)
class LinkState:
    """The overlay device as read from the kernel (``kind`` is e.g. "vxlan"; others mean: not ours)."""

    name: str
    kind: str
    vni: int | None
    port: int | None
    local: str | None
    underlay_dev: str | None
    mac: str
    learning: bool
    up: bool
    mtu: int = 0

    def matches(self, want: VxlanLink) -> bool:
        return (
            self.kind == "vxlan"
            and self.vni == want.vni
            and self.port == want.port
            and self.local == want.local
            and self.underlay_dev == want.underlay_dev
            and self.mac.lower() == want.mac.lower()
            and self.learning == want.learning
        )


@dataclass(frozen=True)
class KernelState:
    """What is on the overlay device: link, IPv4 addresses, main-table routes, neighbours, FDB."""

    link: LinkState | None = None
    addresses: frozenset[str] = frozenset()  # "10.241.1.0/32"
    routes: dict[str, str | None] = field(default_factory=dict)  # dst subnet -> gateway
    neighbours: dict[str, tuple[str, bool]] = field(default_factory=dict)  # ip -> (mac, permanent)
    #: (mac, underlay dst); a reconciler keeps its own copy in a ``set`` and patches it (``patch_entries``)
    fdb: Set[tuple[str, str]] = frozenset()


# ----- operations (applied in list order by the driver)
@dataclass(frozen=True)
class DeleteLink:
    name: str


@dataclass(frozen=True)
class CreateLink:
    link: VxlanLink


@dataclass(frozen=True)
class SetLinkUp:
    name: str


@dataclass(frozen=True)
class AddAddress:
    name: str
    address: str  # CIDR text


@dataclass(frozen=True)
class DeleteAddress:
    name: str
    address: str


@dataclass(frozen=True)
class DeleteRoute:
    name: str
    dst: str


@dataclass(frozen=True)
class SetRoute:
    """Add or replace ``dst via gateway dev name onlink``."""

    name: str
    dst: str
    gateway: str


@dataclass(frozen=True)
class DeleteNeighbour:
    name: str
    ip: str


@dataclass(frozen=True)
class SetNeighbour:
    """Add or replace a permanent neighbour ``ip lladdr mac``."""

    name: str
    ip: str
    mac: str


@dataclass(frozen=True)
class DeleteFdb:
    name: str
    mac: str
    dst: str


@dataclass(frozen=True)
class AddFdb:
    name: str
    mac: str
    dst: str


Operation = (
    DeleteLink
    | CreateLink
    | SetLinkUp
    | AddAddress
    | DeleteAddress
    | DeleteRoute
    | SetRoute
    | DeleteNeighbour
    | SetNeighbour
    | DeleteFdb
    | AddFdb
)


def diff_overlay(observed: KernelState, plan: OverlayPlan) -> list[Operation]:
    """Operations that turn ``observed`` into ``plan``, fewest first-class changes, safe order.

    Order: link (recreate if any identity attribute differs), up, addresses, then removals (routes,
    neighbours, FDB) before additions (FDB, neighbours, routes) so that a route never points at a
    peer whose FDB entry is missing and a changed peer address never has two FDB destinations.
    """
    name = plan.link.name
    ops: list[Operation] = []
    if observed.link is not None and not observed.link.matches(plan.link):
        ops.append(DeleteLink(observed.link.name))
        observed = KernelState()
    if observed.link is None:
        ops.append(CreateLink(plan.link))
        observed = KernelState()
    if observed.link is None or not observed.link.up:
        ops.append(SetLinkUp(name))

    for address in sorted(observed.addresses - {plan.address}):
        ops.append(DeleteAddress(name, address))
    if plan.address not in observed.addresses:
        ops.append(AddAddress(name, plan.address))

    return ops + diff_entries(name, observed, plan.peers)


def diff_peers(
    name: str, observed: KernelState, old: Iterable[PeerEntry], new: Iterable[PeerEntry]
) -> list[Operation]:
    """``diff_overlay``'s operations for changed peers only (O(changed), whatever the peer count): what
    turns the entries of ``old`` in ``observed`` into those of ``new``. The same operations as
    ``diff_overlay`` gives when ``observed`` holds the last plan and the new plan differs from it by these
    peers: a route, neighbour and FDB entry are keyed by a peer's subnet, which no two planned peers
    share, so the other peers' entries take no part. Entries of no planned peer (a hand edit) are left to
    the full pass."""
    wanted = list(new)
    both = [*old, *wanted]
    fdb = {(e.mac, e.fdb_dst) for e in both}
    seen = KernelState(
        observed.link,
        observed.addresses,
        {e.subnet: observed.routes[e.subnet] for e in both if e.subnet in observed.routes},
        {e.gateway: observed.neighbours[e.gateway] for e in both if e.gateway in observed.neighbours},
        frozenset(pair for pair in fdb if pair in observed.fdb),
    )
    return diff_entries(name, seen, wanted)


def diff_entries(name: str, observed: KernelState, peers: Iterable[PeerEntry]) -> list[Operation]:
    """Removals (routes, neighbours, FDB), then additions (FDB, neighbours, routes) that make the device's
    peer entries those of ``peers``."""
    entries = list(peers)
    want_routes = {p.subnet: p.gateway for p in entries}
    want_neigh = {p.gateway: p.mac for p in entries}
    want_fdb = {(p.mac, p.fdb_dst) for p in entries}
    ops: list[Operation] = []
    for dst in sorted(set(observed.routes) - set(want_routes)):
        ops.append(DeleteRoute(name, dst))
    for ip in sorted(
        ip for ip, (_, permanent) in observed.neighbours.items() if permanent and ip not in want_neigh
    ):
        ops.append(DeleteNeighbour(name, ip))
    for mac, dst in sorted(observed.fdb - want_fdb):
        ops.append(DeleteFdb(name, mac, dst))

    for mac, dst in sorted(want_fdb - observed.fdb):
        ops.append(AddFdb(name, mac, dst))
    for ip, mac in sorted(want_neigh.items()):
        have = observed.neighbours.get(ip)
        if have is None or have[0].lower() != mac.lower() or not have[1]:
            ops.append(SetNeighbour(name, ip, mac))
    for dst, gateway in sorted(want_routes.items()):
        if observed.routes.get(dst, "") != gateway:
            ops.append(SetRoute(name, dst, gateway))
    return ops


def entries_applied(observed: KernelState, ops: list[Operation]) -> KernelState | None:
    """What the device holds after ``ops`` when they only set or delete routes, neighbours and FDB
    entries (as the driver applies them: replace, append, delete of a missing entry ignored); None when
    one touches the link or an address (the kernel must be read again)."""
    routes, neighbours, fdb = dict(observed.routes), dict(observed.neighbours), set(observed.fdb)
    if not _patch(routes, neighbours, fdb, ops):
        return None
    return KernelState(observed.link, observed.addresses, routes, neighbours, frozenset(fdb))


def created_state(link: LinkState, ops: list[Operation]) -> KernelState | None:
    """What the device holds after ``ops`` when they (re)created it: a ``CreateLink`` (after at most a
    ``DeleteLink``), its ``SetLinkUp`` and ``AddAddress`` and entries, nothing else. The kernel drops a
    device's entries with it, so the new one holds exactly what ``ops`` added; ``link``: the device as
    read back (its MTU is the kernel's choice). None for any other operations (read the kernel)."""
    rest = ops[1:] if ops[:1] and isinstance(ops[0], DeleteLink) else ops
    if not rest or not isinstance(rest[0], CreateLink) or not link.matches(rest[0].link):
        return None
    addresses: set[str] = set()
    entries: list[Operation] = []
    for op in rest[1:]:
        if isinstance(op, AddAddress):
            addresses.add(op.address)
        elif isinstance(op, _ENTRY_OPS):
            entries.append(op)
        elif not isinstance(op, SetLinkUp):
            return None
    routes: dict[str, str | None] = {}
    neighbours: dict[str, tuple[str, bool]] = {}
    fdb: set[tuple[str, str]] = set()
    _patch(routes, neighbours, fdb, entries)
    return KernelState(link, frozenset(addresses), routes, neighbours, frozenset(fdb))


def patch_entries(observed: KernelState, ops: list[Operation]) -> bool:
    """``entries_applied`` in place (O(len(ops))): ``observed`` must hold its own dicts and a ``set`` of
    FDB entries. False, with nothing changed, when an operation touches the link or an address."""
    if not isinstance(observed.fdb, MutableSet) or not all(isinstance(op, _ENTRY_OPS) for op in ops):
        return False
    return _patch(observed.routes, observed.neighbours, observed.fdb, ops)


def own_copy(observed: KernelState) -> KernelState:
    """``observed`` with containers of its own, for ``patch_entries``."""
    return KernelState(
        observed.link, observed.addresses, dict(observed.routes), dict(observed.neighbours), set(observed.fdb)
    )


def _patch(
    routes: MutableMapping[str, str | None],
    neighbours: MutableMapping[str, tuple[str, bool]],
    fdb: MutableSet[tuple[str, str]],
    ops: list[Operation],
) -> bool:
    for op in ops:
        match op:
            case DeleteRoute(_, dst):
                routes.pop(dst, None)
            case SetRoute(_, dst, gateway):
                routes[dst] = gateway
            case DeleteNeighbour(_, ip):
                neighbours.pop(ip, None)
            case SetNeighbour(_, ip, mac):
                neighbours[ip] = (mac.lower(), True)
            case DeleteFdb(_, mac, dst):
                fdb.discard((mac, dst))
            case AddFdb(_, mac, dst):
                fdb.add((mac, dst))
            case _:
                return False
    return True


_ENTRY_OPS = (DeleteRoute, SetRoute, DeleteNeighbour, SetNeighbour, DeleteFdb, AddFdb)


def programmed_peers(observed: KernelState, plan: OverlayPlan) -> list[str]:
    """Node ids of planned peers whose route, neighbour and FDB entry are all in ``observed``."""
    out = []
    for peer in plan.peers:
        neigh = observed.neighbours.get(peer.gateway)
        if (
            observed.routes.get(peer.subnet) == peer.gateway
            and neigh is not None
            and neigh[1]
            and neigh[0].lower() == peer.mac
            and (peer.mac, peer.fdb_dst) in observed.fdb
        ):
            out.append(peer.node_id)
    return out


def describe(op: Operation) -> str:
    """One line, in `ip`/`bridge` terms, for logs and errors."""
    match op:
        case DeleteLink(name):
            return f"ip link del {name}"
        case CreateLink(link):
            return (
                f"ip link add {link.name} address {link.mac} type vxlan id {link.vni} dstport {link.port} "
                f"local {link.local} dev {link.underlay_dev} nolearning"
            )
        case SetLinkUp(name):
            return f"ip link set {name} up"
        case AddAddress(name, address):
            return f"ip addr add {address} dev {name}"
        case DeleteAddress(name, address):
            return f"ip addr del {address} dev {name}"
        case DeleteRoute(name, dst):
            return f"ip route del {dst} dev {name}"
        case SetRoute(name, dst, gateway):
            return f"ip route replace {dst} via {gateway} dev {name} onlink"
        case DeleteNeighbour(name, ip):
            return f"ip neigh del {ip} dev {name}"
        case SetNeighbour(name, ip, mac):
            return f"ip neigh replace {ip} lladdr {mac} dev {name} nud permanent"
        case DeleteFdb(name, mac, dst):
            return f"bridge fdb del {mac} dev {name} {_fdb_words(dst)}"
        case AddFdb(name, mac, dst):
            return f"bridge fdb append {mac} dev {name} {_fdb_words(dst)}"
    raise TypeError(f"not an overlay operation: {op!r}")


def _fdb_words(dst: str) -> str:
    host, sep, port = dst.partition(":")
    return f"dst {host} port {port}" if sep else f"dst {host}"
