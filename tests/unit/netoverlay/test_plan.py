import pytest

from p2porch.errors import ConfigError
from p2porch.netoverlay.plan import (
    LocalNode,
    OverlayPeer,
    OverlaySettings,
    plan_firewall,
    plan_network,
    plan_overlay,
    vtep_address,
    vtep_mac,
)

SETTINGS = OverlaySettings(cluster_cidr="10.241.0.0/16", vni=77)
LOCAL = LocalNode("n1", "10.80.0.1", "10.241.1.0/24", "eth0")


def peer(i: int, underlay: str | None = None) -> OverlayPeer:
    return OverlayPeer(f"n{i}", underlay or f"10.80.0.{i}", f"10.241.{i}.0/24")


def test_vtep_mac_is_derived_from_the_lease():
    assert vtep_mac("10.241.2.0/24") == "0e:70:0a:f1:02:00"
    assert vtep_mac("10.240.255.0/24") == "0e:70:0a:f0:ff:00"
    assert vtep_address("10.241.2.0/24") == "10.241.2.0"
    first_octet = int(vtep_mac("10.241.2.0/24").split(":")[0], 16)
    assert first_octet & 0b10 and not first_octet & 0b1  # locally administered, unicast


def test_plan_has_device_address_and_one_entry_per_peer():
    plan = plan_overlay(LOCAL, [peer(3), peer(2)], SETTINGS, "eth0")
    assert plan.link.name == "p2p-vx0"
    assert (plan.link.vni, plan.link.port, plan.link.local, plan.link.underlay_dev) == (
        77,
        4789,
        "10.80.0.1",
        "eth0",
    )
    assert plan.link.mac == "0e:70:0a:f1:01:00"
    assert not plan.link.learning
    assert plan.address == "10.241.1.0/32"
    assert plan.routes == {"10.241.2.0/24": "10.241.2.0", "10.241.3.0/24": "10.241.3.0"}
    assert plan.neighbours == {"10.241.2.0": "0e:70:0a:f1:02:00", "10.241.3.0": "0e:70:0a:f1:03:00"}
    assert plan.fdb == {"0e:70:0a:f1:02:00": "10.80.0.2", "0e:70:0a:f1:03:00": "10.80.0.3"}
    assert [p.node_id for p in plan.peers] == ["n2", "n3"]


def test_bad_and_conflicting_peers_are_skipped_with_a_reason():
    peers = [
        peer(1),  # the local node itself
        OverlayPeer("n2", "10.80.0.2", "10.241.1.128/25"),  # overlaps the local lease
        OverlayPeer("n3", "10.80.0.3", "10.9.0.0/24"),  # outside the cluster CIDR
        OverlayPeer("n4", "10.80.0.4", "10.241.4.0/24"),
        OverlayPeer("n5", "10.80.0.5", "10.241.4.0/24"),  # same subnet as n4
        OverlayPeer("n6", "10.80.0.4", "10.241.6.0/24"),  # same underlay as n4
        OverlayPeer("n7", "not-an-ip", "10.241.7.0/24"),
    ]
    plan = plan_overlay(LOCAL, peers, SETTINGS, "eth0")
    assert [p.node_id for p in plan.peers] == ["n4"]
    reasons = dict(plan.skipped)
    assert set(reasons) == {"n1", "n2", "n3", "n5", "n6", "n7"}
    assert "overlaps" in reasons["n2"] and "outside" in reasons["n3"] and "overlaps" in reasons["n5"]
    assert "underlay" in reasons["n6"] and "invalid" in reasons["n7"]


def test_plans_of_the_same_peers_are_equal_and_the_cluster_cidr_still_decides():
    """Each peer's addresses are parsed once and kept (a plan per join on every member): a plan made
    again equals the first, bad addresses (a leading zero, not an address) skipped again; the same subnet
    under another cluster CIDR is judged against that CIDR (the kept parse is per CIDR)."""
    peers = [
        peer(2),
        OverlayPeer("n3", "10.80.0.03", "10.241.3.0/24"),
        OverlayPeer("n4", "bad", "10.241.4.0/24"),
    ]
    first = plan_overlay(LOCAL, peers, SETTINGS, "eth0")
    assert plan_overlay(LOCAL, list(peers), SETTINGS, "eth0") == first
    assert [p.node_id for p in first.peers] == ["n2"] and {n for n, _ in first.skipped} == {"n3", "n4"}
    wide = OverlaySettings(cluster_cidr="10.0.0.0/8", vni=77)
    narrow = OverlaySettings(cluster_cidr="10.241.0.0/20", vni=77)
    far = OverlayPeer("n9", "10.80.0.9", "10.241.200.0/24")
    assert [p.subnet for p in plan_overlay(LOCAL, [far], wide, "eth0").peers] == ["10.241.200.0/24"]
    skipped = dict(plan_overlay(LOCAL, [far], narrow, "eth0").skipped)
    assert "outside the cluster CIDR 10.241.0.0/20" in skipped["n9"]


def test_local_lease_outside_cluster_is_a_config_error():
    with pytest.raises(ConfigError) as err:
        plan_overlay(LocalNode("n1", "10.80.0.1", "10.9.1.0/24"), [], SETTINGS, "eth0")
    assert err.value.field == "subnet"


def test_settings_are_validated():
    with pytest.raises(ConfigError):
        OverlaySettings(vni=0)
    with pytest.raises(ConfigError):
        OverlaySettings(device="a-name-that-is-far-too-long")
    with pytest.raises(ConfigError):
        OverlaySettings(cluster_cidr="10.0.0.1/8")


def test_network_spec_uses_gateway_dot_one_and_overlay_mtu():
    spec = plan_network(LOCAL, SETTINGS, underlay_mtu=1500)
    assert (spec.subnet, spec.gateway, spec.mtu, spec.bridge) == (
        "10.241.1.0/24",
        "10.241.1.1",
        1450,
        "p2p-br0",
    )
    assert spec.options["com.docker.network.bridge.enable_ip_masquerade"] == "false"
    assert spec.options["com.docker.network.driver.mtu"] == "1450"
    assert spec.options["com.docker.network.bridge.name"] == "p2p-br0"


def test_a_smaller_path_mtu_shrinks_the_overlay_mtu_and_a_larger_one_is_ignored():
    across_wan = OverlaySettings(cluster_cidr="10.241.0.0/16", vni=77, path_mtu=1400)
    assert plan_network(LOCAL, across_wan, underlay_mtu=1500).mtu == 1350
    assert plan_network(LOCAL, across_wan, underlay_mtu=1300).mtu == 1250  # the device is smaller still
    jumbo = OverlaySettings(cluster_cidr="10.241.0.0/16", vni=77, path_mtu=9000)
    assert plan_network(LOCAL, jumbo, underlay_mtu=1500).mtu == 1450


def test_path_mtu_setting_is_checked():
    from p2porch.config import load_config

    assert load_config(env={"P2PORCH_OVERLAY_PATH_MTU": "1400"}).overlay.path_mtu == 1400
    with pytest.raises(ConfigError) as bad:
        load_config(env={"P2PORCH_OVERLAY_PATH_MTU": "100"})
    assert bad.value.field == "overlay.path_mtu"


def test_firewall_rules_masquerade_only_outside_the_cluster_and_carry_owner_comments():
    rules = plan_firewall(LOCAL, SETTINGS, "eth0", "DOCKER-USER")
    nat = [r for r in rules if r.table == "nat" and r.spec[0] != "-j"]  # jumps: test_service_rules.py
    assert len(nat) == 1
    assert nat[0].argv() == [
        "-s",
        "10.241.1.0/24",
        "!",
        "-d",
        "10.241.0.0/16",
        "-m",
        "comment",
        "--comment",
        nat[0].comment,
        "-j",
        "MASQUERADE",
    ]
    forward = [r.spec for r in rules if r.chain == "DOCKER-USER"]
    assert ("-i", "p2p-vx0", "-o", "p2p-br0", "-j", "ACCEPT") in forward
    assert any("4789" in r.spec for r in rules if r.chain == "INPUT")
    comments = [r.comment for r in rules]
    assert len(set(comments)) == len(rules) and all(c.startswith("p2porch-") for c in comments)
    # A new lease changes the masquerade rule's identity, so the old one is recognised as stale.
    other = plan_firewall(LocalNode("n1", "10.80.0.1", "10.241.9.0/24"), SETTINGS, "eth0", "DOCKER-USER")
    assert other[0].comment != nat[0].comment
    assert [r.comment for r in other[1:3]] == [r.comment for r in rules[1:3]]


def test_the_lease_is_rejected_from_the_overlay_until_its_bridge_exists():
    """Peers route the lease here before its Docker network (made on first need) gives it a local route:
    what arrives on the VXLAN device for it and is not forwarded to the bridge is rejected, never sent out
    of the underlay by the default route; the rule follows the lease."""
    rules = plan_firewall(LOCAL, SETTINGS, "eth0", "DOCKER-USER")
    reject = [r for r in rules if r.chain == "DOCKER-USER" and "REJECT" in r.spec]
    assert [r.spec for r in reject] == [
        ("-i", "p2p-vx0", "!", "-o", "p2p-br0", "-d", "10.241.1.0/24")
        + ("-j", "REJECT", "--reject-with", "icmp-host-unreachable")
    ]
    other = plan_firewall(LocalNode("n1", "10.80.0.1", "10.241.9.0/24"), SETTINGS, "eth0", "DOCKER-USER")
    assert "10.241.9.0/24" in [r for r in other if "REJECT" in r.spec][0].spec
    forward = plan_firewall(LOCAL, SETTINGS, "eth0", "FORWARD")  # no dockerd: FORWARD itself
    assert [r.chain for r in forward if "REJECT" in r.spec] == ["FORWARD"]


def test_vxlan_filter_allows_exactly_the_programmed_peers_and_drops_the_rest():
    from p2porch.netoverlay.plan import VXLAN_ALLOW_SET, VXLAN_FILTER_CHAIN, plan_overlay, plan_vxlan_filter

    peers = [
        OverlayPeer("n3", "10.80.0.3", "10.241.3.0/24"),
        OverlayPeer("n2", "10.80.0.2", "10.241.2.0/24"),
        OverlayPeer("bad", "10.80.0.9", "10.99.0.0/24"),  # outside the cluster CIDR: skipped, not allowed
    ]
    plan = plan_overlay(LOCAL, peers, SETTINGS, "eth0")
    wanted = plan_vxlan_filter(plan, SETTINGS)
    assert wanted.sources == ("10.80.0.2", "10.80.0.3")
    # The chain is static: it accepts the members of the set and drops the rest, whoever the members are.
    assert wanted.restore_text().splitlines() == [
        "*filter",
        f":{VXLAN_FILTER_CHAIN} - [0:0]",
        f"-A {VXLAN_FILTER_CHAIN} -m set --match-set {VXLAN_ALLOW_SET} src -j ACCEPT",
        f"-A {VXLAN_FILTER_CHAIN} -j DROP",
        "COMMIT",
    ]
    # No peers: the chain still exists (the set is empty) and drops everything.
    alone = plan_vxlan_filter(plan_overlay(LOCAL, [], SETTINGS, "eth0"), SETTINGS)
    assert alone.sources == () and alone.restore_text() == wanted.restore_text()
    # The INPUT rule sends VXLAN from every interface to the allow-list.
    rules = plan_firewall(LOCAL, SETTINGS, "eth0", "DOCKER-USER")
    assert ("-p", "udp", "--dport", "4789", "-j", VXLAN_FILTER_CHAIN) in [
        r.spec for r in rules if r.chain == "INPUT"
    ]
