"""Which address a node binds and which addresses and ports it advertises (pure).

Behind a NAT the two differ: a node binds its private address and advertises the NAT's public
address, and a NAT that forwards ports for several nodes behind one public address gives each node
other public ports (``--advertise-gossip-port`` and friends, like Swarm's ``--advertise-addr`` and
``--listen-addr``). Peers only ever use the advertised values (its node record); the node only ever
binds the listen address. This module decides, it does no I/O: the caller says which addresses are
local and what the default route's source address is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..config import Config
from ..errors import ConfigError
from .join_checks import ipv4_address

__all__ = [
    "ADVERTISED_PORT_KINDS",
    "NodeAddresses",
    "choose_listen_addr",
    "guessed_nat_warning",
    "node_addresses",
]

ADVERTISED_PORT_KINDS = ("gossip", "raft", "join", "vxlan")


@dataclass(frozen=True)
class NodeAddresses:
    """Where a node binds and what its record tells peers (advertised ports: the public ones)."""

    advertise_addr: str
    listen_addr: str
    gossip_port: int
    raft_port: int
    join_port: int
    vxlan_port: int

    @property
    def behind_nat(self) -> bool:
        return self.advertise_addr != self.listen_addr


def choose_listen_addr(
    advertise_addr: str,
    listen_addr: str,
    is_local: Callable[[str], bool],
    default_route_addr: Callable[[], str],
) -> str:
    """The address to bind: ``listen_addr`` when given (it must be local), else the advertise address
    when it is local, else (a NAT's public address) the source address of the default route."""
    if listen_addr:
        if not is_local(listen_addr):
            raise ConfigError(
                f"--listen-addr {listen_addr} is not an address of this host", field="--listen-addr"
            )
        return listen_addr
    if is_local(advertise_addr):
        return advertise_addr
    return default_route_addr()


def node_addresses(
    config: Config,
    body: Mapping[str, Any],
    *,
    is_local: Callable[[str], bool],
    default_route_addr: Callable[[], str],
) -> NodeAddresses:
    """This node's addresses from an init/join request ``body`` (its flags) over the daemon ``config``."""
    advertise = body.get("advertise_addr") or config.node.advertise_addr or default_route_addr()
    advertise = ipv4_address(advertise, "--advertise-addr")
    listen = body.get("listen_addr") or config.node.listen_addr
    if listen:
        listen = ipv4_address(listen, "--listen-addr")
    local_ports = {
        "gossip": config.gossip.port,
        "raft": config.raft.port,
        "join": config.join.port or 7948,
        "vxlan": config.overlay.vxlan_port,
    }
    given = body.get("advertise_ports") or {}
    if not isinstance(given, Mapping):
        raise ConfigError("advertise_ports must be a map of port kind to port", field="advertise_ports")
    ports: dict[str, int] = {}
    for kind in ADVERTISED_PORT_KINDS:
        value = given.get(kind) or getattr(config.node, f"advertise_{kind}_port") or local_ports[kind]
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
            raise ConfigError(
                f"--advertise-{kind}-port: must be a port number between 1 and 65535",
                field=f"--advertise-{kind}-port",
            )
        ports[kind] = value
    unknown = sorted(set(given) - set(ADVERTISED_PORT_KINDS))
    if unknown:
        raise ConfigError(f"advertise_ports: unknown port kind {unknown[0]!r}", field="advertise_ports")
    return NodeAddresses(
        advertise_addr=advertise,
        listen_addr=choose_listen_addr(advertise, listen, is_local, default_route_addr),
        gossip_port=ports["gossip"],
        raft_port=ports["raft"],
        join_port=ports["join"],
        vxlan_port=ports["vxlan"],
    )


def guessed_nat_warning(addrs: NodeAddresses, listen_given: bool) -> str | None:
    """What ``init`` tells the user when its advertise address is not an address of this host and no
    listen address was given: p2porch takes it for a NAT's and binds the default route's address, which
    is right behind a NAT and wrong after a typo (every join command then names an unreachable
    address). None when nothing was guessed. ``join`` needs no such note: the member refuses a joiner
    whose advertise address is not the one it connects from, unless ``--behind-nat``."""
    if listen_given or not addrs.behind_nat:
        return None
    return (
        f"--advertise-addr {addrs.advertise_addr} is not an address of this host: taken for a NAT's public "
        f"address, this node binds {addrs.listen_addr} and other nodes must reach it at "
        f"{addrs.advertise_addr}; if that was a typo, run `p2porch leave --force` and init again "
        "(behind a NAT, give --listen-addr to say so)"
    )
