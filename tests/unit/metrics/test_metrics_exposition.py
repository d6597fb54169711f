"""The daemon's metrics registry and pulled families, parsed with prometheus_client's official parser."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from p2porch.buckets import PROBE_RTT_BUCKETS, BucketCounts
from p2porch.control.metrics_view import ClusterMetrics, pending_reason
from p2porch.dns.resolver import ResolverCounters
from p2porch.dns.server import ServerCounters
from p2porch.metrics import Metrics
from p2porch.model import DesiredState, Task, TaskState
from p2porch.netoverlay.reconciler import ReconcileCounters
from p2porch.raft.status import LeaderChanges


def families(metrics: Metrics) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(metrics.render().decode())}


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(metrics.render().decode())
        for s in f.samples
    }


def test_pushed_instruments_follow_prometheus_conventions():
    m = Metrics()
    m.api_requests.labels("/v1/services", "POST", "200").inc()
    m.api_request_timeouts.labels("unix").inc()
    m.raft_commit_seconds.observe(0.003)
    m.scheduler_placements.inc(3)
    m.scheduler_round_seconds.observe(0.02)
    m.agent_task_starts.labels("ok").inc()
    m.agent_container_start_seconds.observe(1.5)
    m.endpoint_drains.labels("acknowledged").inc()
    m.connection_drains.labels("ended").inc()
    m.listen_waits.labels("listening").inc()
    m.conntrack_flushed.labels("udp").inc(4)
    fams = families(m)
    assert {name: f.type for name, f in fams.items()} == {  # type: ignore[attr-defined]
        "p2porch_api_requests": "counter",
        "p2porch_api_request_timeouts": "counter",
        "p2porch_raft_commit_seconds": "histogram",
        "p2porch_scheduler_placements": "counter",
        "p2porch_restart_holds_gated": "counter",
        "p2porch_scheduler_round_seconds": "histogram",
        "p2porch_agent_task_starts": "counter",
        "p2porch_endpoint_drains": "counter",
        "p2porch_connection_drains": "counter",
        "p2porch_listen_waits": "counter",
        "p2porch_conntrack_flushed": "counter",
        "p2porch_agent_container_start_seconds": "histogram",
    }
    got = samples(m)
    assert got[("p2porch_api_request_timeouts_total", (("listener", "unix"),))] == 1
    assert (
        got[("p2porch_api_requests_total", (("code", "200"), ("method", "POST"), ("route", "/v1/services")))]
        == 1
    )
    assert got[("p2porch_scheduler_placements_total", ())] == 3
    assert got[("p2porch_conntrack_flushed_total", (("protocol", "udp"),))] == 4
    assert got[("p2porch_raft_commit_seconds_bucket", (("le", "0.005"),))] == 1
    assert got[("p2porch_raft_commit_seconds_bucket", (("le", "0.0025"),))] == 0
    assert got[("p2porch_agent_container_start_seconds_count", ())] == 1
    assert got[("p2porch_endpoint_drains_total", (("outcome", "acknowledged"),))] == 1
    assert got[("p2porch_connection_drains_total", (("outcome", "ended"),))] == 1
    assert not any(name.endswith("_created") for name, _ in got)  # no *_created noise


def test_two_daemons_in_one_process_keep_separate_registries():
    one, two = Metrics(), Metrics()
    one.scheduler_placements.inc()
    assert samples(one)[("p2porch_scheduler_placements_total", ())] == 1
    assert samples(two)[("p2porch_scheduler_placements_total", ())] == 0


def test_a_failing_source_is_skipped_and_the_rest_still_renders(caplog):
    m = Metrics()

    def broken():
        raise RuntimeError("boom")

    m.add_source(broken)
    m.scheduler_placements.inc()
    assert samples(m)[("p2porch_scheduler_placements_total", ())] == 1
    assert "metrics source" in caplog.text


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("", "waiting"),
        ("no nodes in the cluster", "no_nodes"),
        (
            "3 nodes: 2 insufficient memory (need 512MiB), 1 constraint node.labels.ssd==true",
            "insufficient_memory",
        ),
        ("2 nodes: 2 insufficient cpu (need 4)", "insufficient_cpu"),
        ("1 node: 1 host port 80/tcp in use", "host_port"),
        ("3 nodes: 3 constraint node.role==manager", "constraint"),
        ("2 nodes: 2 availability drain", "availability"),
        ("2 nodes: 1 node down, 1 availability pause", "node_not_ready"),
        ("2 nodes: 2 anti-affinity service==db", "affinity"),
        ("pinned node n4 is not in the cluster", "pinned_node"),
        ("3 nodes: no node fits", "other"),
    ],
)
def test_pending_reasons_are_a_bounded_set(message, reason):
    assert pending_reason(message) == reason


def _fake_cluster(tmp_path):
    raft_dir = tmp_path / "raft"
    raft_dir.mkdir()
    (raft_dir / "raft.journal").write_bytes(b"x" * 1234)
    status = SimpleNamespace(
        term=7,
        is_leader=True,
        has_quorum=True,
        commit_index=40,
        last_applied=38,
        leader_commit_index=41,
        lag_s=0.0,
        voters=("a", "b", "c"),
    )
    tasks = {
        "t1": Task(
            "t1", "s", 1, state=TaskState.PENDING, message="1 node: 1 insufficient memory (need 1GiB)"
        ),
        "t2": Task("t2", "s", 2, state=TaskState.PENDING),
        "t3": Task("t3", "s", 3, state=TaskState.RUNNING, node_id="n1"),
        "t4": Task("t4", "s", 4, state=TaskState.PENDING, desired_state=DesiredState.SHUTDOWN),
    }
    store = SimpleNamespace(
        status=lambda: status,
        snapshot=lambda: SimpleNamespace(tasks=tasks),
        leader_changes=SimpleNamespace(count=2),
        config=SimpleNamespace(data_dir=str(raft_dir)),
    )
    rtt = BucketCounts(PROBE_RTT_BUCKETS)
    for value in (0.0002, 0.0008, 0.003, 0.003, 0.004, 0.004, 0.006, 0.007, 0.01, 2.0):
        rtt.observe(value)  # 10 answered probes, one slower than every bound
    passes = ReconcileCounters(passes=4, seconds=0.2, failures=1)
    for value in (0.02, 0.03, 0.05, 0.1):
        passes.durations.observe(value)
    members = {n: SimpleNamespace(state=s) for n, s in {"a": "alive", "b": "alive", "c": "suspect"}.items()}
    gossip = SimpleNamespace(
        members=lambda: members,
        core_counters={"suspicions": 4, "suspects_recovered": 3, "refutations": 1, "probe_acks": 10},
        probe_rtt=rtt,
        health_score=lambda: 0,
        metrics={"meta_keys_skipped": 2, "timer_wakeups": 9},
    )
    rc = ResolverCounters(cache_hits=5, cache_misses=2, answered=4, nxdomain=2, nodata=1)
    server = ServerCounters(forwarded=3, servfail=1, refused_recursion=2)
    overlay = SimpleNamespace(
        status=lambda: {"peers": [{"programmed": True}, {"programmed": True}, {"programmed": False}]},
        counters=passes,
    )
    board = SimpleNamespace(
        gossip=gossip, resolver=SimpleNamespace(counters=rc), dns_counters=server, overlay=overlay
    )
    return SimpleNamespace(store=store, board=board)


def test_pulled_families_read_every_subsystem(tmp_path):
    m = Metrics()
    m.add_source(ClusterMetrics(_fake_cluster(tmp_path)).collect)  # type: ignore[arg-type]
    got = samples(m)
    assert got[("p2porch_raft_term", ())] == 7
    assert got[("p2porch_raft_is_leader", ())] == 1
    assert got[("p2porch_raft_apply_lag_entries", ())] == 3
    assert got[("p2porch_raft_leader_changes_total", ())] == 2
    assert got[("p2porch_raft_journal_bytes", ())] == 1234
    assert got[("p2porch_gossip_members", (("state", "alive"),))] == 2
    assert got[("p2porch_gossip_members", (("state", "suspect"),))] == 1
    assert got[("p2porch_gossip_members", (("state", "dead"),))] == 0
    assert got[("p2porch_gossip_suspicions_total", ())] == 4
    assert got[("p2porch_gossip_suspects_recovered_total", ())] == 3
    assert got[("p2porch_gossip_refutations_total", ())] == 1
    assert got[("p2porch_gossip_meta_keys_skipped_total", ())] == 2
    assert got[("p2porch_gossip_probe_rtt_seconds_count", ())] == 10
    assert got[("p2porch_gossip_probe_rtt_seconds_sum", ())] == pytest.approx(2.038)
    assert got[("p2porch_gossip_probe_rtt_seconds_bucket", (("le", "0.0005"),))] == 1
    assert got[("p2porch_gossip_probe_rtt_seconds_bucket", (("le", "0.005"),))] == 6
    assert got[("p2porch_gossip_probe_rtt_seconds_bucket", (("le", "0.01"),))] == 9  # 0.01 <= 0.01
    assert got[("p2porch_gossip_probe_rtt_seconds_bucket", (("le", "1.0"),))] == 9
    assert got[("p2porch_gossip_probe_rtt_seconds_bucket", (("le", "+Inf"),))] == 10
    assert got[("p2porch_scheduler_pending_tasks", (("reason", "insufficient_memory"),))] == 1
    assert got[("p2porch_scheduler_pending_tasks", (("reason", "waiting"),))] == 1
    assert sum(v for (n, _), v in got.items() if n == "p2porch_scheduler_pending_tasks") == 2
    assert got[("p2porch_dns_responses_total", (("rcode", "NOERROR"),))] == 5
    assert got[("p2porch_dns_responses_total", (("rcode", "NXDOMAIN"),))] == 2
    assert got[("p2porch_dns_responses_total", (("rcode", "REFUSED"),))] == 2
    assert got[("p2porch_dns_responses_total", (("rcode", "SERVFAIL"),))] == 1
    assert got[("p2porch_dns_queries_total", ())] == 7
    assert got[("p2porch_dns_forwarded_total", ())] == 3
    assert got[("p2porch_overlay_peers", ())] == 2
    assert got[("p2porch_overlay_reconcile_seconds_count", ())] == 4
    assert got[("p2porch_overlay_reconcile_seconds_bucket", (("le", "0.05"),))] == 3
    assert got[("p2porch_overlay_reconcile_seconds_bucket", (("le", "+Inf"),))] == 4
    assert got[("p2porch_overlay_reconcile_failures_total", ())] == 1


def test_a_node_outside_a_cluster_exposes_only_its_own_instruments():
    m = Metrics()
    board = SimpleNamespace(gossip=None, resolver=None, dns_counters=None, overlay=None)
    m.add_source(ClusterMetrics(SimpleNamespace(store=None, board=board)).collect)  # type: ignore[arg-type]
    names = {name for name, _ in samples(m)}
    pulled = ("p2porch_raft_term", "p2porch_gossip_members", "p2porch_dns_responses_total")
    assert not names & set(pulled)
    assert "p2porch_scheduler_placements_total" in names


def test_leader_changes_count_only_a_new_leader():
    changes = LeaderChanges()
    for seen in (None, "a:1", "a:1", None, "a:1", "b:1", "b:1", "a:1"):
        changes.observe(seen)
    assert changes.count == 2  # a -> b -> a; the first leader and "no leader known" are not changes
