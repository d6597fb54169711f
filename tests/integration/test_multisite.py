"""Two sites behind NAT with 40 ms and 1 % loss between them (issue 20).

One multi-site sandbox (``p2ms``: WAN 10.40.0.0/24, site 1 10.41.0.0/24, site 2 10.42.0.0/24, three
hosts each). Every host binds its private address and advertises its router's public address with
its own forwarded ports; nothing but the p2porch ports crosses the routers. The cluster forms across
the NAT, a service spread over the regions answers from both sites, a container of site 1 reaches a
container of site 2 over the overlay, DNS answers a service name with the client's own site's tasks,
and no node is declared dead over a window with the default gossip preset (``PRESET``; the site cut
is test_multisite_cut.py).
"""

from __future__ import annotations

import os
import re
import time

import pytest
from clusterkit import IMAGE, cli_json, wait_for
from multisite_kit import (
    SERVE,
    SITE1,
    SITE2,
    TASK_ADDR,
    dead_events,
    in_task,
    node_rows,
    running,
    two_sites,
    wait_settled,
)

NAME = "p2ms"
WAN = "10.40.0.0/24"
WINDOW_S = float(os.environ.get("P2PORCH_MULTISITE_WINDOW_S", "60"))


@pytest.fixture(scope="module")
def cluster():
    with two_sites(NAME, WAN) as (sb, nodes):
        yield sb, nodes


def test_cluster_forms_across_the_nat_with_voters_in_both_regions(cluster):
    sb, nodes = cluster
    rows = wait_for(
        lambda: (
            (r := node_rows(sb, "n4"))
            and len(r) == 6
            and all(row["gossip"] == "alive" for row in r.values())
            and r
        ),
        timeout_s=60,
        what="every node alive in gossip, seen from site 2",
    )
    # behind one NAT: one public address per site, one set of forwarded ports per node
    assert {rows[n]["address"] for n in SITE1} == {"10.40.0.1"}
    assert {rows[n]["address"] for n in SITE2} == {"10.40.0.2"}
    inspect = cli_json(sb, "n1", "node", "inspect", "n3")
    assert inspect["ports"] == {"gossip": 8146, "raft": 8147, "join": 8148, "vxlan": 4989}
    assert {rows[n]["labels"]["region"] for n in SITE1} == {"s1"}

    def spread():
        current = node_rows(sb, "n1")
        voters = [r for r in current.values() if r["raft_role"] in ("leader", "voter")]
        regions = {r["labels"]["region"] for r in voters}
        return len(voters) == 3 and regions == {"s1", "s2"}

    wait_for(spread, timeout_s=60, what="3 voters spread over both regions")

    wait_settled(sb)  # the demoted voter restarted as a replica and every node has the leader's state
    # the routers forward nothing but the p2porch ports: a host's private address is unreachable
    probe = sb.exec("n4", ["busybox", "ping", "-c", "1", "-W", "1", "10.41.0.1"], capture=True)
    assert probe.returncode != 0


def test_spread_service_answers_from_both_sites_over_the_overlay_and_dns_prefers_local(cluster):
    sb, nodes = cluster
    created = cli_json(
        sb, "n1", "service", "create", "--name", "web", "--replicas", "4",
        "--placement-pref", "spread=node.labels.region", "--publish", "mode=host,target=80",
        "--stop-grace-period", "1s",
        "--endpoint-mode", "dnsrr",  # topology-aware answers are task addresses (a VIP balances over all)
        IMAGE, "sh", "-c", SERVE,
    )  # fmt: skip
    assert created["name"] == "web"
    tasks = wait_for(lambda: running(nodes[0], "web", 4), timeout_s=120, what="4 running web tasks")
    by_site = {
        "s1": [t for t in tasks if t["node"] in SITE1],
        "s2": [t for t in tasks if t["node"] in SITE2],
    }
    assert len(by_site["s1"]) == 2 and len(by_site["s2"]) == 2, tasks
    a_task, b_task = by_site["s1"][0], by_site["s2"][0]
    a_node = sb.node_by_name(a_task["node"])
    # site 1 container -> site 2 container over VXLAN through both NATs (public address, forwarded port)
    page = wait_for(
        lambda: in_task(
            sb, a_node, a_task["container_id"], "wget", "-q", "-O-", f"http://{b_task['address']}/"
        ),
        timeout_s=30,
        what="a site-2 page fetched from a site-1 container",
    )
    assert page.strip() == f"hello-from-{b_task['node']}"
    b_node = sb.node_by_name(b_task["node"])
    back = in_task(sb, b_node, b_task["container_id"], "wget", "-q", "-O-", f"http://{a_task['address']}/")
    assert back.strip() == f"hello-from-{a_task['node']}"
    # DNS: `web` answers the client's own site; `tasks.web` answers every task
    for task, site in ((a_task, "s1"), (b_task, "s2")):
        node = sb.node_by_name(task["node"])
        local = {t["address"] for t in by_site[site]}
        answer = in_task(sb, node, task["container_id"], "nslookup", "web")
        found = set(TASK_ADDR.findall(answer))
        assert found == local, answer
        every = in_task(sb, node, task["container_id"], "nslookup", "tasks.web")
        assert set(re.findall(r"Address(?: \d+)?:\s+(10\.240\.\d+\.\d+)", every)) == {
            t["address"] for t in tasks
        }


def test_no_false_death_over_the_wan_window(cluster):
    sb, nodes = cluster
    before = dead_events(sb)
    assert before == [], before
    deadline = time.monotonic() + WINDOW_S
    while time.monotonic() < deadline:
        rows = node_rows(sb, "n1")
        not_alive = {
            n: r["gossip"] for n, r in rows.items() if r["gossip"] != "alive" or r["status"] != "ready"
        }
        assert not not_alive, not_alive
        time.sleep(2)
    assert dead_events(sb) == []
