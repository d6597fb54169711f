"""The multi-site sandbox's address plan and NAT rules, and the WAN emulator's schedule (pure parts)."""

from __future__ import annotations

import random

import pytest

from p2porch.errors import SandboxError
from p2porch.sandbox.sites import SitePlan, parse_delay_ms, parse_loss_percent
from p2porch.sandbox.wanlink import WanSchedule

PLAN = SitePlan.build("p2ms", 2, 3, "10.40.0.0/24", 40, 1)


def test_sites_addresses_and_forwarded_ports():
    assert [PLAN.site_of(i) for i in (1, 3, 4, 6)] == [(1, 1), (1, 3), (2, 1), (2, 3)]
    assert [str(PLAN.site_subnet(s)) for s in (1, 2)] == ["10.41.0.0/24", "10.42.0.0/24"]
    assert (PLAN.private_addr(4), PLAN.public_addr(2), PLAN.site_gateway(2)) == (
        "10.42.0.1",
        "10.40.0.2",
        "10.42.0.254",
    )
    assert PLAN.public_port(3, 7946) == 8146 and PLAN.public_port(4, 4789) == 4789
    flags = PLAN.daemon_flags(6)
    assert flags[:4] == ["--advertise-addr", "10.40.0.2", "--listen-addr", "10.42.0.3"]
    assert "--advertise-vxlan-port" in flags and "4989" in flags and "region=s2" in flags


def test_the_router_forwards_only_the_p2porch_ports_of_its_own_nodes():
    rules = PLAN.nat_rules(1)
    dnat = [r for r in rules if "DNAT" in r]
    assert len(dnat) == 3 * 5  # gossip udp+tcp, raft, join, vxlan for each of the 3 nodes
    targets = {r[-1] for r in dnat}
    assert targets == {f"10.41.0.{i}:{p}" for i in (1, 2, 3) for p in (7946, 7947, 7948, 4789)}
    assert all(r[r.index("-d") + 1] == "10.40.0.1" for r in dnat)
    assert ["-t", "nat", "-A", "POSTROUTING", "-o", "wan0", "-j", "MASQUERADE"] in rules


def test_a_cut_site_drops_every_wan_packet_silently_in_both_directions():
    assert sorted(PLAN.cut_rules()) == [
        ["FORWARD", "-i", "wan0", "-j", "DROP"],
        ["FORWARD", "-o", "wan0", "-j", "DROP"],
    ]  # DROP, never REJECT: a real cut answers nothing


@pytest.mark.parametrize(
    "call",
    [
        lambda: SitePlan.build("x", 0, 3),
        lambda: SitePlan.build("x", 2, 21),
        lambda: SitePlan.build("x", 2, 3, "10.0.0.0/16"),
    ],
)
def test_bad_plans_are_refused(call):
    with pytest.raises(SandboxError):
        call()


def test_delay_and_loss_parsing():
    assert parse_delay_ms("40ms") == 40 and parse_delay_ms("0.04s") == 40 and parse_delay_ms("15") == 15
    assert parse_loss_percent("1%") == 1
    for bad in ("fast", "-1ms"):
        with pytest.raises(SandboxError):
            parse_delay_ms(bad)
    with pytest.raises(SandboxError):
        parse_loss_percent("150%")


def _frame(dst: bytes, src: bytes) -> bytes:
    return dst + src + b"\x08\x00" + b"x" * 50


def test_wan_schedule_delays_learns_and_drops_at_the_configured_rate():
    a, b, c = b"\x02" + b"\x00" * 5, b"\x02" + b"\x00" * 4 + b"\x01", b"\x02" + b"\x00" * 4 + b"\x02"
    schedule = WanSchedule(3, 0.02, 0.0)
    assert schedule.route(1.0, 0, _frame(b"\xff" * 6, a)) == [(1.02, 1), (1.02, 2)]  # broadcast floods
    schedule.route(1.0, 1, _frame(a, b))
    assert schedule.route(2.0, 0, _frame(b, a)) == [(2.02, 1)]  # learned: only to b's port
    assert schedule.route(2.0, 2, _frame(c, c)) == []  # never back out of its own port
    lossy = WanSchedule(2, 0.0, 0.01, random.Random(7))
    for _ in range(20000):
        lossy.route(0.0, 0, _frame(b"\xff" * 6, a))
    assert 140 <= lossy.dropped <= 260 and lossy.forwarded == 20000 - lossy.dropped
    assert WanSchedule(2, 0.0, 0.0).route(0.0, 0, b"short") == []


def test_gossip_preset_for_the_measured_round_trip():
    from p2porch.gossip.config import preset_for_rtt

    assert [preset_for_rtt(r) for r in (0.0005, 0.04, 0.125, 0.2, 0.3, 2.0)] == [
        "fast-lan",
        "fast-lan",
        "fast-lan",
        "lan",
        "wan",
        "wan",
    ]
