"""``/metrics``: the families read from this node's subsystems at scrape time, and the route (shell).

Owns what a scrape reads: Raft status and journal size from the store, gossip members and counters
from the gossip handle, DNS and overlay counters from the member board, pending tasks from the
committed state. It only reads: it never changes a subsystem or blocks (every value is in memory,
the journal size is one ``stat``). The instruments updated as things happen live in
:class:`p2porch.metrics.Metrics`; docs/metrics.md lists every metric.
"""

from __future__ import annotations

import os
from collections import Counter as Tally
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..buckets import BucketCounts
from ..metrics import CONTENT_TYPE, Metrics
from ..model import DesiredState, TaskState

if TYPE_CHECKING:
    from ..membership.manager import ClusterManager
    from ..promclient import GaugeMetricFamily, HistogramMetricFamily, Metric

__all__ = ["ClusterMetrics", "metrics_route", "pending_reason"]

GOSSIP_STATES = ("alive", "suspect", "dead", "left")

#: (label, how the scheduler's reason starts), first match wins
_PENDING_REASONS = (
    ("no_nodes", "no nodes in the cluster"),
    ("insufficient_memory", "insufficient memory"),
    ("insufficient_cpu", "insufficient cpu"),
    ("host_port", "host port"),
    ("constraint", "constraint"),
    ("max_per_node", "max replicas per node"),
    ("affinity", "affinity"),
    ("affinity", "anti-affinity"),
    ("availability", "availability"),
    ("node_not_ready", "node "),
)


def pending_reason(message: str) -> str:
    """A bounded label for a pending task's explanation: its most frequent rejection reason.

    ``"3 nodes: 2 insufficient memory (need 512MiB), 1 constraint ..."`` -> ``insufficient_memory``;
    no explanation yet -> ``waiting``; a pinned node -> ``pinned_node``; anything else -> ``other``."""
    if not message:
        return "waiting"
    if message.startswith("pinned node"):
        return "pinned_node"
    _, sep, rest = message.partition(": ")
    first = rest.split(", ")[0].lstrip("0123456789 ") if sep else message
    for label, prefix in _PENDING_REASONS:
        if first.startswith(prefix):
            return label
    return "other"


class ClusterMetrics:
    """The pulled families of one daemon (see the module docstring)."""

    def __init__(self, cluster: ClusterManager) -> None:
        self.cluster = cluster

    def collect(self) -> Iterator[Metric]:
        yield from self.raft()
        yield from self.gossip()
        yield from self.scheduler()
        yield from self.dns()
        yield from self.overlay()
        yield from self.refused()

    def raft(self) -> Iterator[Metric]:
        from ..promclient import CounterMetricFamily

        store = self.cluster.store
        if store is None:
            return
        status = store.status()
        yield _gauge("p2porch_raft_term", "Current Raft term as this node sees it", status.term)
        yield _gauge("p2porch_raft_is_leader", "1 while this node is the Raft leader", int(status.is_leader))
        yield _gauge("p2porch_raft_has_quorum", "1 while this node sees a quorum", int(status.has_quorum))
        yield _gauge("p2porch_raft_commit_index", "Raft commit index of this node", status.commit_index)
        yield _gauge(
            "p2porch_raft_last_applied", "Last Raft index applied to this node's state", status.last_applied
        )
        yield _gauge(
            "p2porch_raft_apply_lag_entries",
            "Committed entries (the leader's commit index as last heard) not yet applied here",
            max(0, status.leader_commit_index - status.last_applied),
        )
        yield _gauge(
            "p2porch_raft_lag_seconds", "How long this node has missed a committed entry", status.lag_s
        )
        yield _gauge("p2porch_raft_voters", "Raft voters in this node's configuration", len(status.voters))
        changes = CounterMetricFamily(
            "p2porch_raft_leader_changes", "Times the leader this node sees changed to another node"
        )
        changes.add_metric([], store.leader_changes.count)
        yield changes
        journal = os.path.join(store.config.data_dir, "raft.journal")
        try:
            size = os.stat(journal).st_size
        except OSError:
            size = 0
        yield _gauge("p2porch_raft_journal_bytes", "Size of this node's Raft journal file", size)

    def gossip(self) -> Iterator[Metric]:
        from ..promclient import CounterMetricFamily, GaugeMetricFamily

        handle = self.cluster.board.gossip
        if handle is None:
            return
        members = GaugeMetricFamily(
            "p2porch_gossip_members", "Gossip members by state as this node sees them", labels=["state"]
        )
        states = Tally(m.state for m in handle.members().values())
        for state in GOSSIP_STATES:
            members.add_metric([state], states.get(state, 0))
        yield members
        core = handle.core_counters
        for name, key, doc in (
            ("p2porch_gossip_suspicions", "suspicions", "Peers this node started to suspect"),
            (
                "p2porch_gossip_suspects_recovered",
                "suspects_recovered",
                "Suspected peers that proved alive (false-positive suspicions)",
            ),
            ("p2porch_gossip_refutations", "refutations", "Accusations about this node that it refuted"),
        ):
            family = CounterMetricFamily(name, doc)
            family.add_metric([], core.get(key, 0))
            yield family
        skipped = CounterMetricFamily(
            "p2porch_gossip_meta_keys_skipped",
            "Optional keys (command versions, engine version, architecture, restart hold) left out of this "
            "node's gossip meta because its labels left them no room",
        )
        skipped.add_metric([], handle.metrics.get("meta_keys_skipped", 0))
        yield skipped
        yield _histogram(
            "p2porch_gossip_probe_rtt_seconds",
            "Round trip of the direct gossip probes answered",
            handle.probe_rtt,
        )
        yield _gauge(
            "p2porch_gossip_health_score", "Lifeguard local health (0 = healthy)", handle.health_score()
        )

    def scheduler(self) -> Iterator[Metric]:
        from ..promclient import GaugeMetricFamily

        store = self.cluster.store
        if store is None:
            return
        state = store.snapshot()
        reasons = Tally(
            pending_reason(t.message)
            for t in state.tasks.values()
            if t.state == TaskState.PENDING and t.desired_state == DesiredState.RUNNING
        )
        family = GaugeMetricFamily(
            "p2porch_scheduler_pending_tasks",
            "Tasks wanted running that no node took yet, by the scheduler's main reason",
            labels=["reason"],
        )
        for reason, count in sorted(reasons.items()):
            family.add_metric([reason], count)
        yield family

    def dns(self) -> Iterator[Metric]:
        from ..promclient import CounterMetricFamily

        board = self.cluster.board
        resolver, server = board.resolver, board.dns_counters
        if resolver is None or server is None:
            return
        rc = resolver.counters
        queries = CounterMetricFamily(
            "p2porch_dns_responses",
            "Cluster DNS responses by rcode (forwarded answers are counted apart)",
            labels=["rcode"],
        )
        for rcode, value in (
            ("NOERROR", rc.answered + rc.nodata),
            ("NXDOMAIN", rc.nxdomain),
            ("FORMERR", rc.formerr),
            ("NOTIMP", rc.notimp),
            ("REFUSED", rc.refused + server.refused_recursion),
            ("SERVFAIL", server.servfail),
            ("BADVERS", rc.badvers),
        ):
            queries.add_metric([rcode], value)
        yield queries
        for name, value, doc in (
            ("p2porch_dns_queries", rc.queries, "Queries the resolver looked up (cache hits and misses)"),
            ("p2porch_dns_cache_hits", rc.cache_hits, "Queries answered from the packed-answer cache"),
            ("p2porch_dns_forwarded", server.forwarded, "Queries outside the cluster domain sent upstream"),
            ("p2porch_dns_forward_replies", server.forward_replies, "Upstream replies relayed to clients"),
            ("p2porch_dns_upstream_timeouts", server.upstream_timeouts, "Forwarded queries with no answer"),
            (
                "p2porch_dns_dropped",
                rc.dropped + server.rrl_dropped,
                "Queries dropped (garbage or rate limit)",
            ),
        ):
            family = CounterMetricFamily(name, doc)
            family.add_metric([], value)
            yield family

    def refused(self) -> Iterator[Metric]:
        """What the gossip, join and Raft ports counted and dropped (garbage, strangers, replays, caps)."""
        from ..promclient import CounterMetricFamily

        family = CounterMetricFamily(
            "p2porch_port_refused",
            "Packets, frames and connections a cluster port dropped, by port and reason",
            labels=["port", "reason"],
        )
        gossip = self.cluster.board.gossip
        for port, counters, keys in (
            ("gossip", gossip.metrics if gossip is not None else None, GOSSIP_REFUSALS),
            ("join", getattr(getattr(self.cluster, "join_service", None), "metrics", None), JOIN_REFUSALS),
            ("raft", raft_refusals(self.cluster.store), RAFT_REFUSALS),
        ):
            if counters is not None:
                for key in keys:
                    family.add_metric([port, key], counters.get(key, 0))
        yield family

    def overlay(self) -> Iterator[Metric]:
        from ..promclient import CounterMetricFamily

        overlay = self.cluster.board.overlay
        if overlay is None:
            return
        peers = overlay.status().get("peers", [])
        yield _gauge(
            "p2porch_overlay_peers",
            "Overlay peers programmed in this node's kernel (VXLAN FDB, neighbour, route)",
            sum(1 for p in peers if p.get("programmed")),
        )
        counters = overlay.counters
        yield _histogram(
            "p2porch_overlay_reconcile_seconds",
            "Duration of the overlay's kernel reconcile passes",
            counters.durations,
        )
        failures = CounterMetricFamily("p2porch_overlay_reconcile_failures", "Reconcile passes that failed")
        failures.add_metric([], counters.failures)
        yield failures


GOSSIP_REFUSALS = (
    "auth_failures",
    "malformed_packets",
    "replayed_packets",
    "tcp_rejected",
    "tcp_auth_timeouts",
)
JOIN_REFUSALS = ("refused", "garbage", "rejected_connections", "auth_timeouts")
RAFT_REFUSALS = ("bad_frames", "oversized_frames", "evicted_unauthenticated", "handshake_timeouts")


def raft_refusals(store: Any) -> dict[str, int] | None:
    """The Raft port guard's counters (``transport_guard.GuardStats``), None without a store."""
    so = getattr(store, "_so", None)
    guard = getattr(getattr(so, "_SyncObj__transport", None), "guard_stats", None)  # pysyncobj's own name
    return None if guard is None else {key: getattr(guard, key) for key in RAFT_REFUSALS}


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    from ..promclient import GaugeMetricFamily

    return GaugeMetricFamily(name, doc, value=value)


def _histogram(name: str, doc: str, counts: BucketCounts) -> HistogramMetricFamily:
    """A histogram family from a component's bucketed counts (cumulative ``le`` buckets, sum)."""
    from ..promclient import HistogramMetricFamily, floatToGoString

    family = HistogramMetricFamily(name, doc)
    family.add_metric(
        [], [(floatToGoString(bound), n) for bound, n in counts.cumulative()], sum_value=counts.total
    )
    return family


def metrics_route(metrics: Metrics) -> Route:
    """``GET /metrics``: the registry in the Prometheus text format."""

    async def scrape(_: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return Route("/metrics", scrape, methods=["GET"])
