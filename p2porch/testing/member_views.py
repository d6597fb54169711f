"""The member views a daemon rebuilds on committed changes, without their kernel side effects (shell; bench).

A daemon (``p2porch/daemon.py``) runs, on its trio thread next to the leader loop and the API, one
subscriber per view that rebuilds it from the committed state after each burst of commits: the DNS zone
and scopes (``member/dns.py``: ``ZoneBuilder`` + ``TaskNetworkIndex`` + ``ClientScopes`` + ``dns_scopes``),
the ingress/VIP inputs (``member/traffic.py``: a ``TrafficIndex`` when the state changed), the overlay plan
(``netoverlay/reconciler.py``: once a burst pauses, ``Debounce`` 50/250 ms, the peers its node and lease
changes named, planned alone by a ``KeptPlan``) and the network-policy plan (``member/netpolicy.py``: a
``PolicyPlanner`` once a burst pauses, ``Debounce`` 50/1,000 ms); the DNS and policy rebuilds are spaced
by their own cost as the daemon's (``debounce.CostShare``).
:func:`serve_views` runs the same pure rebuilds the same way for one node, so their CPU counts in a
control-member process; it never touches the kernel, DNS sockets or Docker (those are each node's own
and not the control plane's). Left out: the usage sampler (Docker stats, not state) and the autopilot
(it would reconfigure Raft around simulated nodes).
"""

from __future__ import annotations

import math
import time
from functools import partial
from typing import Any

import trio

from ..debounce import VIEW_REBUILD_MAX_GAP_S, VIEW_REBUILD_SHARE, CostShare, Debounce
from ..dns.resolver import Resolver
from ..dns.scope import ClientScopes
from ..member.netpolicy import POLICY_MAX_DELAY_S, POLICY_QUIET_S, next_burst
from ..member.netviews import DnsScopes
from ..member.policy_planner import PolicyPlanner
from ..member.task_networks import TaskNetworkIndex
from ..member.traffic_index import TrafficIndex
from ..member.views import local_overlay_node, overlay_peer, overlay_peers
from ..member.zone_builder import ZoneBuilder
from ..netoverlay.plan import OverlaySettings
from ..netoverlay.plan_patch import KeptPlan
from ..netoverlay.reconciler import CHANGE_MAX_DELAY_S, CHANGE_QUIET_S, PEER_CHANGE_KINDS
from ..raft.store import RaftStore
from ..supervisor import drained


class ViewCounters:
    """Bursts handled, thread CPU seconds spent per view and the full rebuilds of the incremental indexes
    (read by the ``sim_status`` op)."""

    def __init__(self) -> None:
        self.bursts: dict[str, int] = {}
        self.cpu_s: dict[str, float] = {}
        self.full_rebuilds: dict[str, int] = {}  # index -> full rebuilds so far (a stream it did not trust)

    def add(self, view: str, cpu_s: float) -> None:
        self.bursts[view] = self.bursts.get(view, 0) + 1
        self.cpu_s[view] = self.cpu_s.get(view, 0.0) + cpu_s

    def status(self) -> dict[str, Any]:
        return {
            "bursts": dict(self.bursts),
            "cpu_s": {k: round(v, 3) for k, v in self.cpu_s.items()},
            "full_rebuilds": dict(self.full_rebuilds),
        }


async def serve_views(
    store: RaftStore,
    node_id: str,
    counters: ViewCounters,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Rebuild ``node_id``'s views on every burst of commits, as the daemon's member services do."""
    async with trio.open_nursery() as nursery:
        index = TaskNetworkIndex()  # the node's one address index, as member/task_networks.shared_index
        for view in (partial(_dns, index=index), _traffic, _overlay, partial(_policy, index=index)):
            await nursery.start(view, store, node_id, counters)
        task_status.started()


def _timed(counters: ViewCounters, view: str, fn: Any, *args: Any) -> Any:
    t0 = time.thread_time()
    try:
        return fn(*args)
    finally:
        counters.add(view, time.thread_time() - t0)


async def _dns(
    store: RaftStore, node_id: str, counters: ViewCounters, task_status: Any, *, index: TaskNetworkIndex
) -> None:
    async with store.subscribe() as changes:
        zones = ZoneBuilder(("127.0.0.1",), node_id)
        clients = index
        kept = DnsScopes()  # as member/dns.py
        state = store.snapshot()
        zone = zones.update(state)
        resolver = Resolver(zone)
        scopes = ClientScopes(resolver, partial(Resolver))
        scopes.update(zone, kept.update(state, clients.update(state), clients.addresses_of))
        task_status.started()
        pacing = CostShare(VIEW_REBUILD_SHARE, VIEW_REBUILD_MAX_GAP_S)  # as member/dns.py
        async for change in changes:
            await trio.sleep(pacing.wait_s(trio.current_time()))
            burst = [change, *drained(changes)]  # one zone update per burst of commits
            state = store.snapshot()

            def rebuild(state: Any = state, burst: list[Any] = burst) -> None:
                scopes.update(
                    zones.update(state, burst),
                    kept.update(state, clients.update(state, burst), clients.addresses_of),
                )

            started = trio.current_time()
            _timed(counters, "dns", rebuild)
            pacing.done(started, trio.current_time())
            counters.full_rebuilds["dns_zone"] = zones.full_rebuilds
            counters.full_rebuilds["dns_clients"] = clients.full_rebuilds


async def _traffic(store: RaftStore, node_id: str, counters: ViewCounters, task_status: Any) -> None:
    index = TrafficIndex(node_id)  # one per node, as member/traffic.py keeps it
    async with store.subscribe() as changes:
        task_status.started()
        done = None
        burst: list[Any] = []
        while True:
            state = store.snapshot()
            if state is not done:  # the same immutable object: the same inputs (member/traffic.py)
                _timed(counters, "traffic", index.update, state, frozenset(), burst)
                counters.full_rebuilds["traffic"] = index.full_rebuilds
                done, burst = state, []
            burst += [await changes.receive(), *drained(changes)]


async def _overlay(store: RaftStore, node_id: str, counters: ViewCounters, task_status: Any) -> None:
    """As the daemon's reconciler (``netoverlay/reconciler.py``, ``member/overlay.py``'s ``PeerView``): a
    pass per debounced burst looks up only the peers the burst's node and lease changes named and plans
    them alone (``KeptPlan.delta``); the first pass, a reset, or a delta it cannot take plans every peer."""
    debounce = Debounce(CHANGE_QUIET_S, CHANGE_MAX_DELAY_S)
    async with store.subscribe() as changes:
        task_status.started()
        settings: OverlaySettings | None = None
        kept: KeptPlan | None = None
        moved: set[str] = set()
        moved_all = False
        while True:
            due = debounce.due_at()
            with trio.move_on_after(math.inf if due is None else max(0.0, due - trio.current_time())):
                for change in [await changes.receive(), *drained(changes)]:
                    kind = getattr(change, "kind", None)
                    if kind in PEER_CHANGE_KINDS:
                        moved.add(change.key)
                    elif kind is None or kind == "reset":
                        moved_all = True
                debounce.change(trio.current_time())
                continue
            if not debounce.take(trio.current_time()):
                continue
            state = store.snapshot()
            local = local_overlay_node(state, node_id)
            if local is None:
                continue
            settings = settings or OverlaySettings(cluster_cidr=state.cluster_cidr)

            def plan(state: Any = state, local: Any = local, settings: Any = settings) -> None:
                nonlocal kept, moved, moved_all
                named, everything, moved, moved_all = moved, moved_all, set(), False
                delta = None
                if kept is not None and not everything:
                    delta = kept.delta({n: overlay_peer(state, n, node_id) for n in named})
                    if delta:
                        kept.apply(delta)
                if delta is None:  # as the reconciler's full pass: every peer planned
                    kept = KeptPlan(local, settings, "eth0", overlay_peers(state, node_id, frozenset()))

            _timed(counters, "overlay", plan)


async def _policy(
    store: RaftStore, node_id: str, counters: ViewCounters, task_status: Any, *, index: TaskNetworkIndex
) -> None:
    planner = PolicyPlanner(node_id, index)  # one per node, as member/netpolicy.py keeps it
    async with store.subscribe() as changes:
        _timed(counters, "netpolicy", planner.plan, store.snapshot())
        task_status.started()
        debounce = Debounce(POLICY_QUIET_S, POLICY_MAX_DELAY_S)
        pacing = CostShare(VIEW_REBUILD_SHARE, VIEW_REBUILD_MAX_GAP_S)  # as member/netpolicy.py
        while True:
            burst: list[Any] = []
            await trio.sleep(pacing.wait_s(trio.current_time()))
            await next_burst(changes, debounce, burst, math.inf)
            started = trio.current_time()
            _timed(counters, "netpolicy", planner.plan, store.snapshot(), burst)
            pacing.done(started, trio.current_time())
            counters.full_rebuilds["netpolicy"] = planner.index_rebuilds
