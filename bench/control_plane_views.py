"""Per-change rebuild cost of every node's views of a large state, for bench/control_plane.py.

After each committed change a member rebuilds its DNS zone (``views.dns_zone`` + ``compile_zone`` +
``dns_scopes``), its overlay plan (``overlay_peers`` + ``plan_overlay``), its ingress/VIP inputs
(``traffic_inputs``) and its agent's assignments (``agent_assignments``) from the committed state.
This times each, in milliseconds (best of ``repeat``), on the state it is given, and the DNS zone's
incremental path (``ZoneBuilder`` + ``ZoneCompiler``, what ``member/dns.py`` runs) for one task's
state report committed on top of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from p2porch.dns.zone import compile_zone
from p2porch.dns.zone_cache import ZoneCompiler
from p2porch.member.netviews import dns_scopes
from p2porch.member.views import (
    agent_assignments,
    dns_zone,
    local_overlay_node,
    overlay_peers,
    traffic_inputs,
)
from p2porch.member.zone_builder import ZoneBuilder
from p2porch.model import TaskHealth
from p2porch.netoverlay.plan import OverlaySettings, plan_overlay
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply_command
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
        "dns_zone_incremental_ms": _incremental_zone_ms(state, node_id, repeat),
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


def _incremental_zone_ms(state: ClusterState, node_id: str, repeat: int) -> float:
    """One task reported unhealthy, then healthy again, ...: the zone update each commit costs."""
    builder, compiler = ZoneBuilder(("10.0.0.1",), node_id), ZoneCompiler()
    compiler.compile(builder.update(state))
    task = next(t for t in state.tasks.values() if t.node_id is not None)
    best = float("inf")
    for i in range(repeat):
        health = TaskHealth.UNHEALTHY if i % 2 == 0 else TaskHealth.HEALTHY
        report = C.TaskStatusReport(task.task_id, health=health)
        cmd = C.ReportTaskStates(at=float(i), node_id=task.node_id or "", reports=(report,))
        state, _, changes = apply_command(state, cmd)
        t0 = time.perf_counter()
        compiler.compile(builder.update(state, changes))
        best = min(best, time.perf_counter() - t0)
    return round(1000 * best, 2)
