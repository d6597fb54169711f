"""A model of the overlay device's kernel state that applies diff operations (test helper, pure)."""

from __future__ import annotations

import dataclasses

from p2porch.netoverlay.diff import (
    AddAddress,
    AddFdb,
    CreateLink,
    DeleteAddress,
    DeleteFdb,
    DeleteLink,
    DeleteNeighbour,
    DeleteRoute,
    KernelState,
    LinkState,
    Operation,
    SetLinkUp,
    SetNeighbour,
    SetRoute,
)


def apply(state: KernelState, ops: list[Operation]) -> KernelState:
    """What the kernel holds after ``ops``, with the kernel's rules (deleting a link drops its entries)."""
    link = state.link
    addresses = set(state.addresses)
    routes = dict(state.routes)
    neighbours = dict(state.neighbours)
    fdb = set(state.fdb)
    for op in ops:
        match op:
            case DeleteLink():
                link, addresses, routes, neighbours, fdb = None, set(), {}, {}, set()
            case CreateLink(want):
                assert link is None, "create of an existing link"
                link = LinkState(
                    want.name,
                    "vxlan",
                    want.vni,
                    want.port,
                    want.local,
                    want.underlay_dev,
                    want.mac,
                    want.learning,
                    up=False,
                    mtu=1450,
                )
            case SetLinkUp():
                assert link is not None
                link = dataclasses.replace(link, up=True)
            case AddAddress(_, address):
                assert link is not None
                addresses.add(address)
            case DeleteAddress(_, address):
                addresses.discard(address)
            case DeleteRoute(_, dst):
                routes.pop(dst, None)
            case SetRoute(_, dst, gateway):
                assert link is not None
                routes[dst] = gateway
            case DeleteNeighbour(_, ip):
                neighbours.pop(ip, None)
            case SetNeighbour(_, ip, mac):
                neighbours[ip] = (mac, True)
            case DeleteFdb(_, mac, dst):
                fdb.discard((mac, dst))
            case AddFdb(_, mac, dst):
                fdb.add((mac, dst))
    return KernelState(link, frozenset(addresses), routes, neighbours, frozenset(fdb))
