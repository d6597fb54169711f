"""Bind vs advertise addresses and per-port advertised ports (issue 20)."""

from __future__ import annotations

import pytest

from p2porch.config import load_config
from p2porch.errors import ConfigError
from p2porch.membership.addresses import choose_listen_addr, node_addresses
from p2porch.membership.join_checks import check_joiner
from p2porch.model import Node as NodeRecord

LOCAL = {"10.41.0.3", "127.0.0.1"}


def is_local(addr: str) -> bool:
    return addr in LOCAL


def default_route() -> str:
    return "10.41.0.3"


def test_listen_defaults_to_the_advertise_address_when_it_is_local():
    assert choose_listen_addr("10.41.0.3", "", is_local, default_route) == "10.41.0.3"


def test_a_public_advertise_address_binds_the_default_route_address():
    assert choose_listen_addr("10.40.0.1", "", is_local, default_route) == "10.41.0.3"


def test_a_listen_address_that_is_not_local_is_refused_naming_the_flag():
    with pytest.raises(ConfigError) as err:
        choose_listen_addr("10.40.0.1", "10.9.9.9", is_local, default_route)
    assert err.value.field == "--listen-addr"


def test_advertised_ports_come_from_the_body_then_the_config_then_the_local_ports():
    config = load_config(
        overrides={"node.advertise_addr": "10.40.0.1", "node.advertise_raft_port": 8147, "raft.port": 7947}
    )
    body = {"listen_addr": "10.41.0.3", "advertise_ports": {"gossip": 8146}}
    addrs = node_addresses(config, body, is_local=is_local, default_route_addr=default_route)
    assert (addrs.advertise_addr, addrs.listen_addr) == ("10.40.0.1", "10.41.0.3")
    assert (addrs.gossip_port, addrs.raft_port, addrs.join_port, addrs.vxlan_port) == (8146, 8147, 7948, 4789)
    assert addrs.behind_nat


@pytest.mark.parametrize("bad", [{"gossip": 0.5}, {"gossip": 70000}, {"dns": 53}, "x"])
def test_bad_advertised_ports_are_refused(bad):
    config = load_config(overrides={"node.advertise_addr": "10.40.0.1"})
    with pytest.raises(ConfigError):
        node_addresses(config, {"advertise_ports": bad}, is_local=is_local, default_route_addr=default_route)


def _request(node_id: str, **ports: int) -> dict:
    return {
        "node_id": node_id, "name": f"n-{node_id[:4]}", "addr": "10.40.0.1", "raft_port": 7947,
        "gossip_port": 7946, "labels": {}, "cpu_nanos": 0, "memory_bytes": 0, **ports,
    }  # fmt: skip


def test_nodes_behind_one_nat_share_an_address_but_not_a_port():
    first = NodeRecord(**check_joiner(_request("a" * 16), "10.40.0.1", []))
    second = check_joiner(
        _request("b" * 16, raft_port=8047, gossip_port=8046, join_port=8048, vxlan_port=4889),
        "10.40.0.1",
        [first],
    )
    assert second["addr"] == first.addr and second["join_port"] == 8048
    with pytest.raises(ConfigError) as err:
        check_joiner(_request("c" * 16, raft_port=8047), "10.40.0.1", [first])
    assert "7946" in err.value.message and err.value.field == "--advertise-addr"


def test_join_target_carries_the_forwarded_join_port():
    node = NodeRecord("a" * 16, "n1", "10.40.0.1", 8147, 8146, join_port=8148)
    assert node.join_target == "10.40.0.1:8148"
    assert NodeRecord("b" * 16, "n2", "10.0.0.2", 7947, 7946).join_target == "10.0.0.2"


def test_init_with_an_advertise_address_not_of_this_host_says_what_it_guessed():
    # h26 walk: `init --advertise-addr 10.39.0.7` (a typo: the host is 10.39.0.1) made a cluster whose
    # join command named 10.39.0.7, silently
    from p2porch.membership.addresses import guessed_nat_warning

    config = load_config()
    typo = node_addresses(
        config, {"advertise_addr": "10.40.0.7"}, is_local=is_local, default_route_addr=default_route
    )
    warning = guessed_nat_warning(typo, listen_given=False)
    assert warning is not None
    assert warning.startswith("--advertise-addr 10.40.0.7 is not an address of this host")
    assert "binds 10.41.0.3" in warning and "leave --force" in warning and "--listen-addr" in warning
    assert guessed_nat_warning(typo, listen_given=True) is None  # behind a NAT, said so
    right = node_addresses(
        config, {"advertise_addr": "10.41.0.3"}, is_local=is_local, default_route_addr=default_route
    )
    assert guessed_nat_warning(right, listen_given=False) is None


def test_the_cli_prints_inits_warning_on_stderr_and_the_join_command_on_stdout(capsys, monkeypatch):
    from p2porch.cli import cluster
    from p2porch.cli.main import main

    class Client:
        def post(self, path, body):
            return {
                "cluster_id": "0" * 16,
                "node_id": "1" * 16,
                "token": "P2PT-1-" + "0" * 16 + "-" + "A" * 43,
                "join_addr": "10.40.0.7:7948",
                "warning": "--advertise-addr 10.40.0.7 is not an address of this host: ...",
            }

    monkeypatch.setattr(cluster, "local_client_for", lambda args, timeout_s=30.0: Client())
    assert main(["init", "--advertise-addr", "10.40.0.7"]) == 0
    out, err = capsys.readouterr()
    assert err == "warning: --advertise-addr 10.40.0.7 is not an address of this host: ...\n"
    assert "p2porch join 10.40.0.7:7948" in out and "warning" not in out


def test_join_waits_for_the_daemon_longer_than_the_daemon_works_on_it(monkeypatch):
    """The h48 walk: `leave`, then `join` again; the daemon's join took its 30 s wait for its own record
    after the member's reply, and the CLI's 30 s read timeout said "the p2porch daemon ... did not answer
    in time" instead of the daemon's "joined, but this node's record did not replicate here within 30 s;
    run the same join again"."""
    from p2porch.cli import cluster
    from p2porch.cli.main import main
    from p2porch.membership.manager import JOIN_REPLY_TIMEOUT_S

    waits: list[float] = []

    class Client:
        def post(self, path, body):
            return {"cluster_id": "0" * 16, "node_id": "1" * 16, "role": "replica"}

    def client(args, timeout_s=30.0):
        waits.append(timeout_s)
        return Client()

    monkeypatch.setattr(cluster, "local_client_for", client)
    assert main(["join", "10.40.0.7", "--token", "P2PT-1-" + "0" * 16 + "-" + "A" * 43]) == 0
    assert waits and all(w > JOIN_REPLY_TIMEOUT_S + 30 for w in waits), waits
