"""The service traffic rule set (ingress ports + VIPs) rendered for iptables-restore (pure)."""

from __future__ import annotations

import random
from fractions import Fraction

from p2porch.netoverlay.ingress import IngressPort, port_chain
from p2porch.netoverlay.plan import LocalNode, OverlaySettings, plan_firewall
from p2porch.netoverlay.service_rules import render_traffic
from p2porch.netoverlay.traffic import MASQ_MARK, Backend, TrafficSettings
from p2porch.netoverlay.vip import ServiceVip, vip_chain

SETTINGS = TrafficSettings("10.240.0.0/16", "10.240.1.0/24", "10.239.0.0/16")
LOCAL, REMOTE, OTHER = Backend("10.240.1.5", True), Backend("10.240.2.5"), Backend("10.240.3.4")


def rules_of(text: str, chain: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(f"-A {chain} ")]


def jump_targets(text: str, chain: str) -> list[str]:
    return [r.split(" -j ")[1] for r in rules_of(text, chain)]


def dnat_of(text: str, chain: str) -> str:
    (rule,) = [r for r in rules_of(text, chain) if "DNAT" in r]
    return rule.split("--to-destination ")[1]


def marks_of(text: str, chain: str) -> list[str]:
    return [
        r.split(f"-A {chain} ")[1].split("-j MARK")[0].strip() for r in rules_of(text, chain) if "MARK" in r
    ]


def test_each_backend_gets_an_equal_share_and_the_last_pick_is_unconditional() -> None:
    port = IngressPort(8080, 80, "tcp", (REMOTE, LOCAL, OTHER))
    text = render_traffic([port], [], SETTINGS)
    picks = rules_of(text, port_chain(port))
    assert "statistic" not in picks[-1] and len(port_chain(port)) <= 28
    targets = [dnat_of(text, r.split(" -j ")[1]) for r in picks]
    assert targets == ["10.240.1.5:80", "10.240.2.5:80", "10.240.3.4:80"]
    probs = [
        Fraction(r.split("--probability ")[1].split()[0]) if "statistic" in r else Fraction(1) for r in picks
    ]
    remaining, shares = Fraction(1), []
    for p in probs:
        shares.append(remaining * p)
        remaining *= 1 - p
    assert all(abs(s - Fraction(1, 3)) < Fraction(1, 10**8) for s in shares)
    assert "-A P2P-INGRESS -p tcp --dport 8080 -j P2P-IN-TCP-8080" in text
    assert text.startswith("*nat\n") and text.endswith("COMMIT\n")


def test_cluster_policy_masquerades_remote_backends_only_and_local_policy_keeps_the_client() -> None:
    cluster = IngressPort(8080, 80, "tcp", (LOCAL, REMOTE))
    local = IngressPort(9090, 90, "udp", (LOCAL, REMOTE), policy="local")
    text = render_traffic([cluster, local], [], SETTINGS)
    by_target = {dnat_of(text, ep): ep for ep in jump_targets(text, port_chain(cluster))}
    assert marks_of(text, by_target["10.240.2.5:80"]) == [""]  # always: the reply must come back here
    assert marks_of(text, by_target["10.240.1.5:80"]) == ["-s 10.240.1.0/24"]  # only own containers
    (only,) = jump_targets(text, port_chain(local))
    assert dnat_of(text, only) == "10.240.1.5:90" and marks_of(text, only) == ["-s 10.240.1.0/24"]
    assert "-p udp -j DNAT" in text


def test_vip_balances_every_port_and_masquerades_what_could_bypass_conntrack() -> None:
    svc = ServiceVip("s1", "10.239.0.9", (LOCAL, REMOTE))
    text = render_traffic([], [svc], SETTINGS)
    assert f"-A P2P-SERVICES -d 10.239.0.9/32 -j {vip_chain(svc)}" in text
    by_target = {dnat_of(text, ep): ep for ep in jump_targets(text, vip_chain(svc))}
    assert set(by_target) == {"10.240.1.5", "10.240.2.5"}  # the original port is kept
    assert marks_of(text, by_target["10.240.1.5"]) == [""]
    assert marks_of(text, by_target["10.240.2.5"]) == ["! -s 10.240.0.0/16"]
    # VIP jumps come before the ingress jump; masquerade only marked packets; reject the rest of the range
    services = rules_of(text, "P2P-SERVICES")
    assert "-d 10.239.0.9/32" in services[0] and "addrtype" in services[-1]
    assert (
        rules_of(text, "P2P-POSTROUTING")[0]
        == f"-A P2P-POSTROUTING -m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN"
    )
    assert rules_of(text, "P2P-FORWARD")[-1] == "-A P2P-FORWARD -d 10.239.0.0/16 -j REJECT"


def test_no_backend_means_no_dnat_and_no_vip_jump() -> None:
    text = render_traffic([IngressPort(8080, 80, "tcp", ())], [ServiceVip("s1", "10.239.0.9", ())], SETTINGS)
    assert "-j DNAT" not in text and "10.239.0.9" not in text
    assert rules_of(text, "P2P-IN-TCP-8080") == []
    local_only = IngressPort(8080, 80, "tcp", (REMOTE,), policy="local")
    assert "-j DNAT" not in render_traffic([local_only], [], SETTINGS)


def test_stale_dynamic_chains_are_flushed_and_deleted_and_nothing_else() -> None:
    existing = ["P2P-EP-0123", "P2P-SVC-OLD", "P2P-IN-TCP-1", "P2P-VXLAN", "DOCKER", "P2P-SERVICES"]
    text = render_traffic([IngressPort(8080, 80, "tcp", (LOCAL,))], [], SETTINGS, existing)
    deleted = sorted(line[3:] for line in text.splitlines() if line.startswith("-X "))
    assert deleted == ["P2P-EP-0123", "P2P-IN-TCP-1", "P2P-SVC-OLD"]
    assert all(f":{c} - [0:0]" in text for c in deleted)  # declared (flushed) before deleted


def test_the_text_depends_only_on_the_sets_not_their_order() -> None:
    ports = [IngressPort(8080, 80, "tcp", (LOCAL, REMOTE, OTHER)), IngressPort(53, 53, "udp", (REMOTE,))]
    vips = [ServiceVip("a", "10.239.0.9", (LOCAL, OTHER)), ServiceVip("b", "10.239.0.3", (REMOTE,))]
    first = render_traffic(ports, vips, SETTINGS)
    rng = random.Random(7)
    for _ in range(20):
        shuffled_ports = [
            IngressPort(p.published, p.target, p.protocol, tuple(rng.sample(p.backends, len(p.backends))))
            for p in ports
        ]
        assert render_traffic(rng.sample(shuffled_ports, 2), rng.sample(vips, 2), SETTINGS) == first


def test_the_overlay_firewall_owns_the_jumps_into_the_traffic_chains() -> None:
    rules = plan_firewall(
        LocalNode("a", "10.0.0.1", "10.240.1.0/24"), OverlaySettings(), "eth0", "DOCKER-USER"
    )
    jumps = {(r.table, r.chain, r.spec[1]) for r in rules if r.spec[0] == "-j"}
    assert jumps == {
        ("nat", "PREROUTING", "P2P-SERVICES"),
        ("nat", "OUTPUT", "P2P-SERVICES"),
        ("nat", "POSTROUTING", "P2P-POSTROUTING"),
        ("filter", "DOCKER-USER", "P2P-FORWARD"),
    }
