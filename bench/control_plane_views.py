"""Per-change rebuild cost of every node's views of a large state, for bench/control_plane.py.

After each committed change a member rebuilds its DNS zone (``views.dns_zone`` + ``compile_zone`` +
``dns_scopes``), its overlay plan (``overlay_peers`` + ``plan_overlay``), its ingress/VIP inputs
(``traffic_inputs``) and its agent's assignments (``agent_assignments``) from the committed state.
This times each, in milliseconds (best of ``repeat``), on the state it is given.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from p2porch.dns.zone import compile_zone
from p2porch.member.netviews import dns_scopes
from p2porch.member.views import (
    agent_assignments,
    dns_zone,
    local_overlay_node,
    overlay_peers,
    traffic_inputs,
)
from p2porch.netoverlay.plan import OverlaySettings, plan_overlay
from p2porch.raft.state import ClusterState


def _best_ms(fn: Callable[[], Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return round(1000 * best, 2)


def rebuild_costs(state: ClusterState, repeat: int = 3) -> dict[str, Any]:
    """Milliseconds each view takes to rebuild from ``state`` on one node (the first node by id)."""
    node_id = min(state.nodes)
    local = local_overlay_node(state, node_id)
    settings = OverlaySettings(cluster_cidr=state.cluster_cidr)

    def overlay() -> Any:
        assert local is not None
        return plan_overlay(local, overlay_peers(state, node_id), settings, "eth0")

    plan = overlay()
    zone = compile_zone(dns_zone(state, ("10.0.0.1",), node_id))
    return {
        "dns_zone_ms": _best_ms(lambda: compile_zone(dns_zone(state, ("10.0.0.1",), node_id)), repeat),
        "dns_scopes_ms": _best_ms(lambda: dns_scopes(state), repeat),
        "overlay_plan_ms": _best_ms(overlay, repeat),
        "traffic_inputs_ms": _best_ms(lambda: traffic_inputs(state, node_id), repeat),
        "agent_assignments_ms": _best_ms(
            lambda: agent_assignments(state, node_id, state.nodes[node_id].name, "p2porch"), repeat
        ),
        "zone_names": len(zone.names),
        "overlay_peers": len(plan.peers),
    }
