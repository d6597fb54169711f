"""Which conntrack entries go when backends leave the traffic rules (pure), and the applier's use of it."""

from __future__ import annotations

import random
from collections import Counter

import trio

from p2porch.netoverlay.conntrack_plan import (
    ConntrackEntry,
    FlushTarget,
    ingress_pairs,
    removed_targets,
    should_delete,
    vip_pairs,
)
from p2porch.netoverlay.ingress import IngressPort
from p2porch.netoverlay.traffic import Backend, TrafficSettings
from p2porch.netoverlay.traffic_apply import TrafficApplier
from p2porch.netoverlay.vip import ServiceVip

SETTINGS = TrafficSettings("10.240.0.0/16", "10.240.1.0/24", "10.239.0.0/16")
A, B, C = Backend("10.240.1.5", True), Backend("10.240.2.5"), Backend("10.240.3.4")
VIP = "10.239.0.7"


def test_a_backend_that_leaves_a_vip_is_flushed_for_both_protocols_on_that_vip_only() -> None:
    old = ([], [ServiceVip("s1", VIP, (A, B)), ServiceVip("s2", "10.239.0.8", (A,))])
    new = ([], [ServiceVip("s1", VIP, (B,)), ServiceVip("s2", "10.239.0.8", (A,))])
    assert removed_targets(old, new) == [
        FlushTarget("tcp", A.address, None, VIP, None),
        FlushTarget("udp", A.address, None, VIP, None),
    ]


def test_an_ingress_backend_is_flushed_with_its_target_port_and_the_published_port() -> None:
    old = ([IngressPort(5353, 53, "udp", (A, B))], [])
    new = ([IngressPort(5353, 53, "udp", (B, C))], [])
    assert removed_targets(old, new) == [FlushTarget("udp", A.address, 53, None, 5353)]
    # a changed target port is a new DNAT target: the old one's entries go
    moved = ([IngressPort(5353, 54, "udp", (A, B))], [])
    assert {t.backend_port for t in removed_targets(old, moved)} == {53}


def test_a_removed_service_or_port_flushes_every_backend_and_nothing_is_flushed_without_a_known_old_set() -> (
    None
):
    old = ([IngressPort(8080, 80, "tcp", (A, B))], [ServiceVip("s1", VIP, (A, B))])
    gone = removed_targets(old, ([], []))
    assert len(gone) == 2 + 4 and {t.backend for t in gone} == {A.address, B.address}
    assert removed_targets(None, ([], [])) == []
    assert removed_targets(old, old) == []


def test_local_policy_counts_only_local_backends_as_dnat_targets() -> None:
    port = IngressPort(8080, 80, "tcp", (A, B), policy="local")
    assert {t.backend for t in ingress_pairs([port])} == {A.address}
    # switching the policy to cluster adds B as a target; back to local removes it
    cluster = IngressPort(8080, 80, "tcp", (A, B))
    assert removed_targets(([cluster], []), ([port], [])) == [FlushTarget("tcp", B.address, 80, None, 8080)]


def test_removed_targets_is_the_set_difference_of_the_dnat_targets_on_random_rule_sets() -> None:
    rng = random.Random(7)
    pool = [Backend(f"10.240.{i}.{j}", i == 1) for i in range(1, 4) for j in range(2, 5)]

    def rules() -> tuple[list[IngressPort], list[ServiceVip]]:
        ports = [
            IngressPort(
                p,
                rng.choice((80, 81)),
                rng.choice(("tcp", "udp")),
                tuple(rng.sample(pool, rng.randint(0, 4))),
            )
            for p in rng.sample((8080, 8081, 5353), rng.randint(0, 3))
        ]
        vips = [
            ServiceVip(f"s{i}", f"10.239.0.{i}", tuple(rng.sample(pool, rng.randint(0, 4)))) for i in range(3)
        ]
        return ports, rng.sample(vips, rng.randint(0, 3))

    for _ in range(300):
        old, new = rules(), rules()
        got = removed_targets(old, new)
        after = ingress_pairs(new[0]) | vip_pairs(new[1])
        assert not set(got) & after and len(got) == len(set(got))
        assert set(got) | after >= ingress_pairs(old[0]) | vip_pairs(old[1])


def entry(
    proto: str = "udp", dest: str = VIP, dport: int = 53, src: str = A.address, sport: int = 53, state=None
):
    return ConntrackEntry(proto, dest, dport, src, sport, state)


def test_udp_entries_of_the_backend_through_that_rule_are_deleted_and_nothing_else() -> None:
    vip_udp = FlushTarget("udp", A.address, None, VIP, None)
    assert should_delete(vip_udp, entry())
    assert should_delete(vip_udp, entry(dport=514, sport=514))  # a VIP balances every port
    assert not should_delete(vip_udp, entry(src=B.address))  # another backend
    assert not should_delete(vip_udp, entry(dest="10.239.0.8"))  # another VIP to the same task
    assert not should_delete(vip_udp, entry(proto="tcp", state="SYN_SENT"))  # the udp target only
    ingress = FlushTarget("udp", A.address, 53, None, 5353)
    assert should_delete(ingress, entry(dest="192.168.1.9", dport=5353))  # any local address
    assert not should_delete(ingress, entry(dest="192.168.1.9", dport=5354))
    assert not should_delete(ingress, entry(dest="192.168.1.9", dport=5353, sport=54))


def test_tcp_entries_go_only_while_the_backend_never_answered() -> None:
    target = FlushTarget("tcp", A.address, None, VIP, None)
    verdicts = {
        state: should_delete(target, entry("tcp", dport=80, sport=80, state=state))
        for state in ("SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "TIME_WAIT", None)
    }
    assert verdicts == {
        "SYN_SENT": True,
        "SYN_RECV": False,  # answered: deleting it would reset the connection (see conntrack_plan)
        "ESTABLISHED": False,  # the acknowledged drain waits for it
        "FIN_WAIT": False,
        "CLOSE_WAIT": False,
        "TIME_WAIT": False,
        None: False,
    }


class FakeFirewall:
    """The applier's firewall calls without iptables (this test checks the flush wiring only)."""

    def chain_names(self, table: str) -> list[str]:
        return []

    def restore(self, text: str) -> None:
        self.text = text


class RecordingFlusher:
    """Records the targets the applier asks to flush and answers one deletion per target."""

    def __init__(self) -> None:
        self.calls: list[list[FlushTarget]] = []

    def flush(self, targets):
        self.calls.append(list(targets))
        return Counter(t.protocol for t in targets)


def test_the_applier_flushes_what_a_write_dropped_against_the_previous_write_and_counts_it() -> None:
    flusher, counted = RecordingFlusher(), []
    applier = TrafficApplier(FakeFirewall(), flusher, lambda proto, n: counted.append((proto, n)))  # type: ignore[arg-type]

    async def write(vip: ServiceVip, force: bool = False) -> bool:
        wrote = await applier.apply(([], [vip], SETTINGS), force=force)
        await applier.flush_removed()
        return wrote

    async def main() -> None:
        assert await write(ServiceVip("s1", VIP, (A, B)))  # first: nothing known
        assert not applier.flush_waiting
        assert await applier.apply(([], [ServiceVip("s1", VIP, (B,))], SETTINGS))
        assert applier.flush_waiting and flusher.calls == []  # the write does not wait for the flush
        await applier.flush_removed()
        assert not await write(ServiceVip("s1", VIP, (B,)))  # unchanged: no write
        assert await write(ServiceVip("s1", VIP, (B,)), force=True)  # same set
        # dropped, then written again before the flush: its entries are not deleted
        assert await applier.apply(([], [ServiceVip("s1", VIP, (A,))], SETTINGS))
        assert await write(ServiceVip("s1", VIP, (A, B)))

    trio.run(main)
    assert flusher.calls == [
        [FlushTarget("tcp", A.address, None, VIP, None), FlushTarget("udp", A.address, None, VIP, None)]
    ]
    assert counted == [("tcp", 1), ("udp", 1)]
