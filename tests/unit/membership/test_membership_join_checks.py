"""What a member admits: joiner fields, API init/join bodies, published ports (pure)."""

import pytest

from p2porch.errors import ConfigError
from p2porch.membership.join_checks import (
    check_api_body,
    check_joiner,
    check_published_ports,
    reserved_ports,
)
from p2porch.model import Node

LIVE = [Node("a" * 16, "n1", "10.0.0.1", 7947, 7946, status="ready")]


def joiner(**changes):
    request = {
        "node_id": "b" * 16,
        "name": "n2",
        "addr": "10.0.0.2",
        "raft_port": 7947,
        "gossip_port": 7946,
        "labels": {"zone": "a"},
        "cpu_nanos": 2_000_000_000,
        "memory_bytes": 1 << 30,
        "key_pub": "",
    }
    request.update(changes)
    return request


def test_a_well_formed_joiner_from_its_own_address_is_admitted():
    fields = check_joiner(joiner(), "10.0.0.2", LIVE)
    assert fields["addr"] == "10.0.0.2" and fields["labels"] == {"zone": "a"}


@pytest.mark.parametrize(
    ("changes", "source", "field"),
    [
        ({}, "10.0.0.9", "--advertise-addr"),  # advertises an address it does not come from
        ({"addr": "10.0.0.1"}, "10.0.0.1", "--advertise-addr"),  # another live node's address
        ({"addr": "10.0.0.1", "behind_nat": True}, "10.0.0.9", "--advertise-addr"),  # NAT is no excuse
        ({"addr": "0.0.0.0"}, "0.0.0.0", "--advertise-addr"),
        ({"addr": "not-an-ip"}, "10.0.0.2", "--advertise-addr"),
        ({"node_id": "../../etc"}, "10.0.0.2", "node_id"),
        ({"name": "Bad Name"}, "10.0.0.2", "--name"),
        ({"name": "x" * 64}, "10.0.0.2", "--name"),
        ({"cpu_nanos": -1}, "10.0.0.2", "cpu_nanos"),
        ({"cpu_nanos": 10**30}, "10.0.0.2", "cpu_nanos"),
        ({"memory_bytes": True}, "10.0.0.2", "memory_bytes"),
        ({"raft_port": 0}, "10.0.0.2", "raft.port"),
        ({"labels": {f"k{i}": "v" for i in range(65)}}, "10.0.0.2", "--label"),
        ({"labels": {"bad key": "v"}}, "10.0.0.2", "--label"),
        ({"labels": {"k": "x" * 257}}, "10.0.0.2", "--label"),
        ({"labels": {"k": "line\nforged"}}, "10.0.0.2", "--label"),
        ({"labels": ["k=v"]}, "10.0.0.2", "--label"),
        ({"key_pub": 5}, "10.0.0.2", "key_pub"),
    ],
)
def test_bad_joiner_fields_are_refused_naming_the_field(changes, source, field):
    with pytest.raises(ConfigError) as info:
        check_joiner(joiner(**changes), source, LIVE)
    assert info.value.field == field


def test_behind_nat_lifts_only_the_source_check_and_a_left_node_frees_its_address():
    assert check_joiner(joiner(behind_nat=True), "192.0.2.7", LIVE)["addr"] == "10.0.0.2"
    left = [Node("a" * 16, "n1", "10.0.0.1", 7947, 7946, status="left")]
    assert check_joiner(joiner(addr="10.0.0.1"), "10.0.0.1", left)["addr"] == "10.0.0.1"


def test_a_wiped_host_whose_old_record_is_down_is_told_to_node_rm_it():
    """h52b journey: a host whose data dir was wiped joined again from its address; the refusal spoke of
    NAT (`behind one NAT give each node its own --advertise-*-port`), not of its own old record, down."""
    down = [Node("a" * 16, "n3", "10.0.0.3", 7947, 7946, status="down")]
    with pytest.raises(ConfigError) as info:
        check_joiner(joiner(name="n3", addr="10.0.0.3"), "10.0.0.3", down)
    assert info.value.field == "--advertise-addr"
    assert "node n3, which is down" in info.value.message and "`p2porch node rm n3`" in info.value.message
    assert "NAT" not in info.value.message
    with pytest.raises(ConfigError) as info:  # another name at that address: the NAT hint, as before
        check_joiner(joiner(addr="10.0.0.1"), "10.0.0.1", LIVE)
    assert "behind one NAT" in info.value.message


def test_the_hint_follows_the_joiners_name_then_the_old_records_status():
    """Review r52c: the data-dir hint went by the old record's status alone: another node down behind the
    same NAT was told to `node rm` it, and a wiped host whose old record was still ready (not yet seen
    dead) was told about NAT."""
    down = [Node("a" * 16, "n3", "10.0.0.3", 7947, 7946, status="down")]
    with pytest.raises(ConfigError) as info:  # another node: its own ports behind the NAT
        check_joiner(joiner(name="n4", addr="10.0.0.3"), "10.0.0.3", down)
    assert "behind one NAT" in info.value.message and "node rm" not in info.value.message
    ready = [Node("a" * 16, "n3", "10.0.0.3", 7947, 7946, status="ready")]
    with pytest.raises(ConfigError) as info:  # the same name, its old record still ready: wait, then rm
        check_joiner(joiner(name="n3", addr="10.0.0.3"), "10.0.0.3", ready)
    assert "node n3, which is ready: if this host was n3 and lost its data dir, wait until n3 is down" in (
        info.value.message
    )
    assert "`p2porch node rm n3`" in info.value.message and "NAT" not in info.value.message


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "UPPER"}, "--name"),
        ({"advertise_addr": "10.0.0.300"}, "--advertise-addr"),
        ({"domain": "bad_domain!"}, "--domain"),
        ({"domain": "a." * 130 + "b"}, "--domain"),
        ({"cluster_cidr": "10.240.0.1/16"}, "--cluster-cidr"),
        ({"cluster_cidr": "10.240.0.0/28"}, "--cluster-cidr"),
        ({"labels": {"k": 1}}, "--label"),
    ],
)
def test_api_init_and_join_bodies_are_validated(body, field):
    with pytest.raises(ConfigError) as info:
        check_api_body(body)
    assert info.value.field == field


def test_good_api_body_passes():
    check_api_body(
        {"name": "n1", "advertise_addr": "10.1.0.1", "domain": "p2p", "cluster_cidr": "10.8.0.0/16"}
    )


def test_services_may_not_publish_p2porchs_own_ports():
    reserved = reserved_ports({"raft.port": 17947, "dns.port": 53, "join.port": 0})
    for port in (7946, 7947, 7948, 4789, 53, 17947):
        with pytest.raises(ConfigError) as info:
            check_published_ports([("tcp", port)], reserved)
        assert info.value.field == "--publish" and str(port) in info.value.message
    check_published_ports([("tcp", 8080), ("udp", 5353)], reserved)


def test_the_tls_api_port_is_reserved_when_it_is_on():
    from p2porch.config import load_config
    from p2porch.membership.join_checks import config_reserved_ports

    assert 7949 not in config_reserved_ports(load_config())
    reserved = config_reserved_ports(load_config(overrides={"api.addr": "10.0.0.1:7949"}))
    with pytest.raises(ConfigError, match="7949"):
        check_published_ports([("tcp", 7949)], reserved)
