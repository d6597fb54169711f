"""``/metrics`` on a real 2-node sandbox (issue 18): the counters move when the cluster works.

One cluster (``p2me``, 10.22.0.0/24) whose daemons also serve the API over TLS on ADDRESS:7951. Every
scrape is parsed with prometheus_client's official parser. A service create moves the leader's
placements and the agents' container starts; DNS queries from the host namespace move the responses by
rcode; the TLS listener serves ``/metrics`` to a read token and refuses a scrape without one.
"""

from __future__ import annotations

import ssl

import dns.message
import dns.query
import dns.rcode
import httpx
from clusterkit import IMAGE, api_get, cli, cli_json, cluster_fixture, wait_for
from prometheus_client.parser import text_string_to_metric_families

from p2porch.sandbox.sandbox import Sandbox, SandboxNode

PORT = 7951
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(sb: Sandbox, node: SandboxNode) -> Samples:
    """``p2porch metrics`` inside the node (its unix socket)."""
    result = cli(sb, node.name, "metrics")
    assert result.returncode == 0, result.stderr.decode()
    return parse(result.stdout.decode())


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


cluster = cluster_fixture("p2me", "10.22.0.0/24", 2, api_port=PORT)


def test_counters_move_when_the_cluster_works(cluster):
    sb, nodes = cluster

    # DNS is served once the overlay is up; gossip sees both members alive
    def both_alive():
        return all(value(scrape(sb, n), "p2porch_gossip_members", state="alive") == 2 for n in nodes)

    wait_for(both_alive, 60, "both members alive in gossip on both nodes")
    before = [scrape(sb, n) for n in nodes]
    assert sum(value(s, "p2porch_raft_is_leader") for s in before) == 1
    for s in before:
        assert value(s, "p2porch_raft_term") >= 1
        assert value(s, "p2porch_raft_journal_bytes") > 0
        assert value(s, "p2porch_raft_has_quorum") == 1
    leader = next(i for i, s in enumerate(before) if value(s, "p2porch_raft_is_leader") == 1)

    created = cli_json(
        sb, "n1", "service", "create", "-d", "--name", "web", "--replicas", "2",
        "--stop-grace-period", "1s", IMAGE, "sleep", "3600",
    )  # fmt: skip
    assert created["name"] == "web"
    wait_for(
        lambda: (
            [t["state"] for t in api_get(nodes[0], "/services/web/tasks", all="false")] == ["running"] * 2
        ),
        120,
        "2 running tasks of web",
    )

    def moved():
        after = [scrape(sb, n) for n in nodes]
        starts = sum(
            value(a, "p2porch_agent_task_starts_total", result="ok")
            - value(b, "p2porch_agent_task_starts_total", result="ok")
            for a, b in zip(after, before, strict=True)
        )
        return after if starts >= 2 else None

    after = wait_for(moved, 30, "2 more container starts counted")
    placed = value(after[leader], "p2porch_scheduler_placements_total") - value(
        before[leader], "p2porch_scheduler_placements_total"
    )
    assert placed >= 2
    assert value(after[leader], "p2porch_scheduler_round_seconds_count") > value(
        before[leader], "p2porch_scheduler_round_seconds_count"
    )
    assert sum(value(a, "p2porch_agent_container_start_seconds_count") for a in after) >= 2
    assert value(after[0], "p2porch_raft_commit_seconds_count") > value(
        before[0], "p2porch_raft_commit_seconds_count"
    )
    route = {"route": "/v1/services", "method": "POST", "code": "200"}
    assert value(after[0], "p2porch_api_requests_total", **route) == 1
    for a in after:
        assert value(a, "p2porch_overlay_peers") == 1
        assert value(a, "p2porch_overlay_reconcile_seconds_count") >= 1
        assert value(a, "p2porch_gossip_probe_rtt_seconds_count") >= 1

    # DNS: a cluster name (NOERROR), an unknown one (NXDOMAIN), recursion from a non-member (REFUSED)
    server = nodes[0].address
    for name, rcode in (("web.p2p", dns.rcode.NOERROR), ("nothing.p2p", dns.rcode.NXDOMAIN),
                        ("example.com", dns.rcode.REFUSED)):  # fmt: skip
        response = dns.query.udp(dns.message.make_query(name, "A"), server, timeout=2.0)
        assert response.rcode() == rcode, (name, dns.rcode.to_text(response.rcode()))
    dns_before, dns_after = after[0], scrape(sb, nodes[0])
    for rcode in ("NOERROR", "NXDOMAIN", "REFUSED"):
        grew = value(dns_after, "p2porch_dns_responses_total", rcode=rcode) - value(
            dns_before, "p2porch_dns_responses_total", rcode=rcode
        )
        assert grew >= 1, rcode
    assert value(dns_after, "p2porch_dns_queries_total") >= value(dns_before, "p2porch_dns_queries_total") + 2


def test_the_tls_api_serves_metrics_to_a_token_only(cluster):
    sb, nodes = cluster
    read_token = cli(sb, "n1", "access", "create", "scraper", "--role", "read").stdout.decode().strip()
    ca_pem = cli(sb, "n1", "cluster", "ca").stdout.decode()
    assert read_token.startswith("p2pat_") and "BEGIN CERTIFICATE" in ca_pem
    context = ssl.create_default_context(cadata=ca_pem)

    def get(headers: dict[str, str]) -> httpx.Response:
        with httpx.Client(verify=context, timeout=10) as client:
            return client.get(f"https://{nodes[1].address}:{PORT}/metrics", headers=headers)

    # the token is committed through Raft: n2 accepts it once it has applied the write
    ok = wait_for(lambda: (r := get({"authorization": f"Bearer {read_token}"})).status_code == 200 and r, 30,
                  "n2 to serve /metrics to the read token")  # fmt: skip
    samples = parse(ok.text)
    assert value(samples, "p2porch_gossip_members", state="alive") == 2
    assert get({}).status_code == 401
