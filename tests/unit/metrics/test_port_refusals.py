"""``p2porch_port_refused_total{port, reason}``: what the gossip, join and Raft ports dropped, read at
scrape time from the counters the listeners already keep (before: only in memory, no scrape showed them)."""

from __future__ import annotations

from types import SimpleNamespace

from p2porch.control.metrics_view import ClusterMetrics
from p2porch.raft.transport_guard import GuardStats


def refused(cluster: SimpleNamespace) -> dict[tuple[str, str], float]:
    (family,) = ClusterMetrics(cluster).refused()  # type: ignore[arg-type]
    assert family.name == "p2porch_port_refused" and family.type == "counter"
    return {(s.labels["port"], s.labels["reason"]): s.value for s in family.samples}


def test_each_ports_drop_counters_are_scraped():
    guard = GuardStats(oversized_frames=2, evicted_unauthenticated=3, handshake_timeouts=4)
    guard.refuse("undecodable")
    store = SimpleNamespace(_so=SimpleNamespace(_SyncObj__transport=SimpleNamespace(guard_stats=guard)))
    gossip = SimpleNamespace(metrics={"auth_failures": 5, "replayed_packets": 6, "udp_packets_in": 99})
    board = SimpleNamespace(gossip=gossip)
    join = SimpleNamespace(metrics={"refused": 7, "garbage": 8, "rejected_connections": 9, "accepted": 1})
    got = refused(SimpleNamespace(store=store, board=board, join_service=join))
    assert got[("gossip", "auth_failures")] == 5 and got[("gossip", "replayed_packets")] == 6
    assert got[("gossip", "malformed_packets")] == 0 and ("gossip", "udp_packets_in") not in got
    assert got[("join", "refused")] == 7 and got[("join", "garbage")] == 8
    assert got[("join", "rejected_connections")] == 9 and ("join", "accepted") not in got
    assert got[("raft", "bad_frames")] == 1 and got[("raft", "oversized_frames")] == 2
    assert got[("raft", "evicted_unauthenticated")] == 3 and got[("raft", "handshake_timeouts")] == 4


def test_a_node_outside_a_cluster_has_only_the_join_ports_counters():
    join = SimpleNamespace(metrics={"garbage": 1})
    got = refused(SimpleNamespace(store=None, board=SimpleNamespace(gossip=None), join_service=join))
    assert set(got) == {("join", r) for r in ("refused", "garbage", "rejected_connections", "auth_timeouts")}
