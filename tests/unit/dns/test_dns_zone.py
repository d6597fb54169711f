"""Unit tests of ZoneData and its compilation."""

from __future__ import annotations

import pytest

from p2porch.dns.zone import PortEntry, TaskEntry, ZoneData, compile_zone, reverse_labels, to_labels
from p2porch.errors import ConfigError


def test_names_and_empty_non_terminals() -> None:
    zone = compile_zone(
        ZoneData(
            services={"Web": [TaskEntry(1, "10.0.0.2", ports=(PortEntry(80),))]}, nodes={"n1": "10.1.0.1"}
        )
    )
    assert set(zone.names) == {
        (b"p2p",),
        (b"web", b"p2p"),
        (b"tasks", b"web", b"p2p"),
        (b"1", b"web", b"p2p"),
        (b"_80", b"_tcp", b"web", b"p2p"),
        (b"_tcp", b"web", b"p2p"),
        (b"n1", b"node", b"p2p"),
        (b"node", b"p2p"),
    }
    assert zone.reverse[(b"2", b"0", b"0", b"10", b"in-addr", b"arpa")].ptr == [(b"1", b"web", b"p2p")]


def test_service_without_healthy_tasks_still_exists() -> None:
    zone = compile_zone(ZoneData(services={"db": [TaskEntry(1, "10.0.0.2", healthy=False)]}))
    assert zone.names[(b"db", b"p2p")].a == []
    assert (b"1", b"db", b"p2p") not in zone.names
    assert zone.reverse == {}


def test_odd_entries_are_skipped_not_raised() -> None:
    zone = compile_zone(
        ZoneData(
            services={
                "ok": [
                    TaskEntry(1, "not-an-ip"),
                    TaskEntry("a.b", "10.0.0.3"),
                    TaskEntry(2, "10.0.0.4", ports=(PortEntry(0), PortEntry(80, "sctp"))),
                ],
                "x" * 64: [TaskEntry(1, "10.0.0.5")],
                "bad..name": [TaskEntry(1, "10.0.0.6")],
                "ünï": [TaskEntry(1, "10.0.0.7")],
            },
            nodes={"n1": "::1", "n2": "10.1.0.2"},
        )
    )
    assert zone.names[(b"ok", b"p2p")].a == ["10.0.0.4"]
    assert (b"n2", b"node", b"p2p") in zone.names and (b"n1", b"node", b"p2p") not in zone.names
    assert len(zone.skipped) == 8


def test_duplicate_addresses_are_answered_once() -> None:
    zone = compile_zone(ZoneData(services={"w": [TaskEntry(1, "10.0.0.2"), TaskEntry(1, "10.0.0.2")]}))
    assert zone.names[(b"w", b"p2p")].a == ["10.0.0.2"]


def test_invalid_domain_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        compile_zone(ZoneData(domain=""))
    with pytest.raises(ConfigError):
        compile_zone(ZoneData(domain="a..b"))


def test_label_helpers() -> None:
    assert to_labels("Web.P2P.") == (b"web", b"p2p")
    assert to_labels("a" * 64) is None
    assert reverse_labels("10.1.2.3") == (b"3", b"2", b"1", b"10", b"in-addr", b"arpa")
    assert reverse_labels("fe80::1") is None


def test_dict_round_trip_and_short_port_form() -> None:
    zone = ZoneData(
        domain="c.local",
        services={"web": [TaskEntry(1, "10.0.0.2", healthy=False, ports=(PortEntry(53, "udp"),))]},
        nodes={"n1": "10.1.0.1"},
        nameservers=("10.1.0.1",),
        version=7,
    )
    again = ZoneData.from_dict(zone.to_dict())
    assert again.to_dict() == zone.to_dict()
    assert ZoneData.from_dict(
        {"services": {"w": [{"slot": 1, "address": "10.0.0.2", "ports": [80]}]}}
    ).services["w"][0].ports == (PortEntry(80, "tcp"),)
    with pytest.raises(ConfigError):
        ZoneData.from_dict({"services": {"w": [{"address": "10.0.0.2"}]}})


def test_a_vip_service_name_answers_its_virtual_address_and_tasks_name_the_tasks() -> None:
    from p2porch.dns.zone import TaskEntry, ZoneData, compile_zone

    tasks = [
        TaskEntry(1, "10.240.1.5"),
        TaskEntry(2, "10.240.2.5"),
        TaskEntry(3, "10.240.3.5", healthy=False),
    ]
    zone = ZoneData(services={"web": tasks, "db": tasks[:1]}, vips={"web": "10.239.0.7", "bad": "x"})
    compiled = compile_zone(zone)
    web = compiled.names[(b"web", b"p2p")]
    assert web.a == ["10.239.0.7"] and not web.rotate
    assert compiled.names[(b"tasks", b"web", b"p2p")].a == ["10.240.1.5", "10.240.2.5"]
    assert compiled.names[(b"db", b"p2p")].a == ["10.240.1.5"]  # dnsrr: the task addresses
    assert compiled.reverse[(b"7", b"0", b"239", b"10", b"in-addr", b"arpa")].ptr == [(b"web", b"p2p")]
    assert ZoneData.from_dict(zone.to_dict()) == zone
