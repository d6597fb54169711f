"""Adapters from cluster state to overlay peers and the DNS zone (pure)."""

from p2porch.member.views import dns_zone, gateway_of, local_overlay_node, overlay_peers
from p2porch.model import Node, PortPublish, Service, ServiceSpec, SubnetLease, Task
from p2porch.raft.state import ClusterState


def state() -> ClusterState:
    nodes = {
        "a": Node("a", "n1", "10.0.0.1", 7947, 7946),
        "b": Node("b", "n2", "10.0.0.2", 7947, 7946),
        "c": Node("c", "n3", "10.0.0.3", 7947, 7946, status="down"),
        "d": Node("d", "n4", "10.0.0.4", 7947, 7946),  # no lease yet
    }
    leases = {k: SubnetLease(k, f"10.240.{i}.0/24") for i, k in enumerate("abc")}
    services = {
        "s1": Service("s1", ServiceSpec(name="web", image="nginx", publish=(PortPublish(80),))),
    }
    tasks = {
        "t1": Task("t1", "s1", 1, "a", state="running", address="10.240.0.2"),
        "t2": Task("t2", "s1", 2, "b", state="running", address="10.240.1.2"),
        "t3": Task("t3", "s1", 3, "b", state="starting", address="10.240.1.3"),
        "t4": Task("t4", "s1", 4, "b", state="running", desired_state="shutdown", address="10.240.1.4"),
        "t5": Task("t5", "s1", 5, None, state="new"),
    }
    return ClusterState(
        cluster_id="x",
        domain="p2p",
        cluster_cidr="10.240.0.0/16",
        version=7,
        nodes=nodes,
        services=services,
        tasks=tasks,
        leases=leases,
    )


def test_overlay_peers_are_live_leased_other_nodes():
    s = state()
    assert [p.node_id for p in overlay_peers(s, "a")] == ["b"]
    assert overlay_peers(s, "a", frozenset({"b"})) == []
    assert [p.node_id for p in overlay_peers(s, "b")] == ["a"]
    local = local_overlay_node(s, "a")
    assert local is not None and local.subnet == "10.240.0.0/24" and local.underlay_addr == "10.0.0.1"
    assert local_overlay_node(s, "d") is None
    assert gateway_of("10.240.3.0/24") == "10.240.3.1"


def test_dns_zone_answers_only_running_tasks_that_should_run():
    zone = dns_zone(state(), ("10.0.0.1",))
    web = {t.slot: t for t in zone.services["web"]}
    assert set(web) == {1, 2, 3, 4}  # tasks without an address are left out
    assert [s for s, t in sorted(web.items()) if t.answerable] == [1, 2]
    assert web[1].ports[0].number == 80
    assert zone.nodes == {"n1": "10.0.0.1", "n2": "10.0.0.2", "n3": "10.0.0.3", "n4": "10.0.0.4"}
    assert zone.version == 7 and zone.nameservers == ("10.0.0.1",)
