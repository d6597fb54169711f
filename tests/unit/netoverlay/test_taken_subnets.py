"""TakenSubnets answers exactly what the linear scan it replaced answered (seeded random networks)."""

import ipaddress
import random

import pytest

from p2porch.netoverlay.plan import LocalNode, OverlayPeer, OverlaySettings, TakenSubnets, plan_overlay


def _scan(taken: list[ipaddress.IPv4Network], net: ipaddress.IPv4Network) -> ipaddress.IPv4Network | None:
    return next((other for other in taken if net.overlaps(other)), None)


def _random_net(rng: random.Random) -> ipaddress.IPv4Network:
    plen = rng.choice([8, 12, 16, 20, 22, 24, 24, 24, 26, 30, 32])
    addr = rng.choice([0x0A000000, 0x0AF00000, 0x0AF10000]) | rng.getrandbits(20)
    return ipaddress.IPv4Network((addr, plen), strict=False)


@pytest.mark.parametrize("seed", range(20))
def test_first_overlap_matches_the_linear_scan(seed: int) -> None:
    rng = random.Random(seed)
    taken, fast = [], TakenSubnets()
    for _ in range(300):
        net = _random_net(rng)
        expected = _scan(taken, net)
        assert fast.first_overlap(net) == expected, (seed, net)
        if expected is None and rng.random() < 0.8:
            taken.append(net)
            fast.add(net)


def test_plan_of_many_peers_skips_overlaps_in_order() -> None:
    settings = OverlaySettings(cluster_cidr="10.240.0.0/12")
    local = LocalNode("n0", "192.168.0.1", "10.240.0.0/24")
    rng = random.Random(7)
    peers = [
        OverlayPeer(f"n{i:04d}", f"192.168.{i // 250}.{i % 250 + 2}", str(_random_subnet(rng)))
        for i in range(1, 400)
    ]
    plan = plan_overlay(local, peers, settings, "eth0")
    taken = [ipaddress.IPv4Network(local.subnet)]
    for peer in sorted(peers, key=lambda p: p.node_id):  # the reasons the old scan would give, in order
        net = ipaddress.IPv4Network(peer.subnet)
        other = _scan(taken, net)
        if other is None:
            taken.append(net)
        reason = dict(plan.skipped).get(peer.node_id)
        assert reason == (None if other is None else f"subnet {net} overlaps {other}")
    assert len(plan.peers) == len(taken) - 1 and plan.skipped


def _random_subnet(rng: random.Random) -> ipaddress.IPv4Network:
    plen = rng.choice([20, 22, 24, 24, 24])
    return ipaddress.IPv4Network((0x0AF00000 | rng.getrandbits(16) << 4, plen), strict=False)
