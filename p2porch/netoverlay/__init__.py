"""p2porch.netoverlay: flannel-style L3 VXLAN overlay (pure plan + diff, pyroute2/docker/iptables shells).

Import the pure parts from here; the shells (driver, dockernet, firewall, reconciler) from their modules.
Entry point: :func:`p2porch.netoverlay.reconciler.run_overlay`, started by :mod:`p2porch.member.overlay`.
"""

from .diff import KernelState, LinkState, Operation, diff_overlay, programmed_peers
from .plan import (
    BridgeNetworkSpec,
    FirewallRule,
    LocalNode,
    OverlayPeer,
    OverlayPlan,
    OverlaySettings,
    plan_firewall,
    plan_network,
    plan_overlay,
    vtep_address,
    vtep_mac,
)

__all__ = [
    "BridgeNetworkSpec",
    "FirewallRule",
    "KernelState",
    "LinkState",
    "LocalNode",
    "Operation",
    "OverlayPeer",
    "OverlayPlan",
    "OverlaySettings",
    "diff_overlay",
    "plan_firewall",
    "plan_network",
    "plan_overlay",
    "programmed_peers",
    "vtep_address",
    "vtep_mac",
]
