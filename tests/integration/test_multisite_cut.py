"""A site cut off the WAN and healed (issue 20): two sites behind NAT, 40 ms and 1 % loss between them.

One sandbox ``p2mc`` (WAN 10.43.0.0/24, sites 10.44.0.0/24 and 10.45.0.0/24, three hosts each). Two
services spread over the regions: ``web`` keeps a lost site's tasks (``on_site_loss: keep``, the
default), ``api`` has them replaced (``--on-site-loss replace``). The site with one of the three Raft
voters is cut (its router silently drops every WAN packet). The minority keeps running both services'
containers and answers DNS for them from its last committed state, but cannot commit; the majority
keeps committing, keeps ``web``'s minority task and replaces ``api``'s. After the heal the minority
follows the leader again (its voter was removed meanwhile and restarts as a replica), exactly the
desired tasks run (the minority's superseded ``api`` container is stopped, ``web``'s original one was
never touched) and every acknowledged write is on every node.
"""

from __future__ import annotations

import pytest
from clusterkit import IMAGE, api_get, cli, wait_for
from multisite_kit import (
    SERVE,
    SITE1,
    SITE2,
    TASK_ADDR,
    containers,
    in_task,
    node_rows,
    running,
    two_sites,
    voters_by_region,
    wait_settled,
)

from p2porch.sandbox.sandbox import Sandbox

NAME = "p2mc"
WAN = "10.43.0.0/24"
NODES = (*SITE1, *SITE2)


@pytest.fixture(scope="module")
def cluster():
    with two_sites(NAME, WAN) as (sb, nodes):
        yield sb, nodes


def service_names(sb: Sandbox, node: str) -> set[str]:
    return {s["name"] for s in api_get(sb.node_by_name(node), "/services")}


def write_service(sb: Sandbox, node: str, name: str) -> None:
    """Create service ``name`` through ``node`` until its state has it (a create that timed out may
    still commit: the next round then finds it instead of creating it twice)."""

    def done() -> bool:
        if name in service_names(sb, node):
            return True
        cli(sb, node, "service", "create", "-d", "--name", name, "--replicas", "0", IMAGE, "sleep", "1d")
        return False

    wait_for(done, timeout_s=60, what=f"service {name} committed through {node}")


def spread_service(sb: Sandbox, name: str, *flags: str) -> None:
    result = cli(
        sb, "n1", "service", "create", "-d", "--name", name, "--replicas", "2", "--endpoint-mode", "dnsrr",
        "--placement-pref", "spread=node.labels.region", "--stop-grace-period", "1s", *flags,
        IMAGE, "sh", "-c", SERVE,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()


def test_a_cut_site_keeps_its_tasks_and_dns_cannot_commit_and_the_heal_ends_with_the_desired_tasks(cluster):
    sb, nodes = cluster
    # the autopilot spreads the voters in two steps (a replica of the empty region promoted and added,
    # then the extra voter of the crowded one demoted and removed): wait for the outcome, not a step
    wait_for(
        lambda: sorted(len(v) for v in voters_by_region(sb).values()) == [1, 2],
        timeout_s=60,
        what="three voters over both regions (one and two)",
    )
    wait_settled(sb)
    voters = voters_by_region(sb)
    assert sorted(len(v) for v in voters.values()) == [1, 2], voters
    minority_region = min(voters, key=lambda region: len(voters[region]))
    cut_site = int(minority_region[1:])
    minority = SITE1 if cut_site == 1 else SITE2
    majority = SITE2 if cut_site == 1 else SITE1
    here = sb.node_by_name(majority[0])
    spread_service(sb, "web")  # on_site_loss: keep (the default)
    spread_service(sb, "api", "--on-site-loss", "replace")
    web = wait_for(lambda: running(here, "web", 2), timeout_s=120, what="2 running web tasks")
    api = wait_for(lambda: running(here, "api", 2), timeout_s=120, what="2 running api tasks")
    assert len({t["node"] in minority for t in web}) == 2 and len({t["node"] in minority for t in api}) == 2
    acknowledged = {"web", "api"}
    kept = {n: (containers(sb, n, "web"), containers(sb, n, "api")) for n in minority}
    assert sum(len(w) for w, _ in kept.values()) == 1 and sum(len(a) for _, a in kept.values()) == 1
    web_out = next(t for t in web if t["node"] in minority)
    web_in = next(t for t in web if t["node"] in majority)

    sb.set_site_cut(cut_site, True)
    try:
        for i in range(3):  # the majority keeps committing (a new leader first, if it led from the cut site)
            write_service(sb, majority[0], f"during{i}")
            acknowledged.add(f"during{i}")
        refused = cli(sb, minority[1], "service", "create", "-d", "--name", "lost", IMAGE, "sleep", "1d")
        assert refused.returncode != 0, "the cut-off minority committed a write"
        wait_for(
            lambda: all(node_rows(sb, majority[0])[n]["status"] == "down" for n in minority),
            timeout_s=60,
            what="the majority marks the cut site down",
        )
        # the majority's autopilot replaces the voter it lost (that node learns it at the heal)
        majority_region = f"s{3 - cut_site}"
        wait_for(
            lambda: voters_by_region(sb, majority[0]) == {majority_region: sorted(majority)},
            timeout_s=60,
            what="the cut site's voter replaced and removed: three voters on the majority's site",
        )
        # api's minority task is replaced in the majority; web's is kept (the same task, no new one)
        replaced = wait_for(
            lambda: (r := running(here, "api", 2)) and all(t["node"] in majority for t in r) and r,
            timeout_s=60,
            what="api replaced on the majority's site",
        )
        assert {t["id"] for t in api_get(here, "/services/web/tasks", all="false")} == {t["id"] for t in web}
        # the minority still runs both services' containers and answers their names from its last state
        assert {n: (containers(sb, n, "web"), containers(sb, n, "api")) for n in minority} == kept
        out_node = sb.node_by_name(web_out["node"])
        answer = in_task(sb, out_node, web_out["container_id"], "nslookup", "web")
        assert set(TASK_ADDR.findall(answer)) == {web_out["address"]}, answer
        # the majority's DNS leaves the unreachable task out
        in_node = sb.node_by_name(web_in["node"])
        wait_for(
            lambda: (
                set(TASK_ADDR.findall(in_task(sb, in_node, web_in["container_id"], "nslookup", "tasks.web")))
                == {web_in["address"]}
            ),
            timeout_s=15,
            what="the majority's DNS answering only its reachable web task",
        )
    finally:
        sb.set_site_cut(cut_site, False)

    wait_for(
        lambda: all(r["status"] == "ready" for r in node_rows(sb, majority[0]).values()),
        timeout_s=90,
        what="every node ready again after the heal",
    )
    wait_settled(sb, majority[0], timeout_s=90)  # the removed voter restarted as a replica and caught up
    wait_for(
        lambda: set(voters_by_region(sb, majority[0])) == {"s1", "s2"}, timeout_s=60, what="voters spread"
    )
    wait_settled(sb, majority[0], timeout_s=60)

    def desired_only() -> bool:
        api_now = {n: containers(sb, n, "api") for n in NODES}
        web_now = {n: containers(sb, n, "web") for n in NODES}
        return (
            all(not api_now[n] for n in minority)  # the superseded minority container is stopped
            and sum(len(c) for c in api_now.values()) == 2
            and sum(len(c) for c in web_now.values()) == 2
        )

    wait_for(desired_only, timeout_s=60, what="exactly the desired api and web containers")
    assert {n: containers(sb, n, "web") for n in minority} == {n: w for n, (w, _) in kept.items()}
    assert {t["id"] for t in running(here, "api", 2) or []} == {t["id"] for t in replaced}
    for node in NODES:  # no acknowledged write is lost, wherever it is read
        assert acknowledged <= wait_for(lambda n=node: service_names(sb, n), what=f"services on {node}")
