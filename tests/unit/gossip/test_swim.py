"""Merge rules, refutation, probing and Lifeguard behaviour of the pure SWIM core, driven by hand."""

import random

import pytest

from p2porch.gossip.config import GossipConfig
from p2porch.gossip.messages import (
    Ack,
    Alive,
    Dead,
    IndirectPing,
    Nack,
    Ping,
    StateEntry,
    Suspect,
)
from p2porch.gossip.swim import Swim, TcpPing, push_pull_scale_s

CFG = GossipConfig.lan()


def make(name="a", now=0.0, **kw):
    return Swim(CFG, name, f"{name}:1", {"role": name}, random.Random(1), now, **kw)


def alive(core, name, inc, now=0.0, meta=None):
    return core.handle_packet(now, f"{name}:1", [Alive(inc, name, f"{name}:1", meta or {})])


def state(core, name):
    return core.members()[name].state


def queued(core, key):
    return core.queue.transmits(key) is not None


def test_alive_adds_member_and_emits_joined_once():
    a = make()
    out = alive(a, "b", 1)
    assert [(e.kind, e.name) for e in out.events] == [("joined", "b")]
    assert queued(a, "b")  # re-gossiped
    assert alive(a, "b", 1).events == []  # same incarnation: ignored


def test_alive_does_not_override_suspect_at_same_incarnation_but_higher_does():
    a = make()
    alive(a, "b", 1)
    out = a.handle_packet(0.0, "c:1", [Suspect(1, "b", "c")])
    assert [e.kind for e in out.events] == ["suspect"]
    assert alive(a, "b", 1).events == []
    assert state(a, "b") == "suspect"
    out = alive(a, "b", 2)
    assert [e.kind for e in out.events] == ["alive"]
    assert state(a, "b") == "alive"


def test_suspect_with_older_incarnation_is_ignored():
    a = make()
    alive(a, "b", 5)
    assert a.handle_packet(0.0, "c:1", [Suspect(4, "b", "c")]).events == []
    assert state(a, "b") == "alive"


def test_dead_overrides_and_alive_with_higher_incarnation_revives():
    a = make()
    alive(a, "b", 1)
    out = a.handle_packet(0.0, "c:1", [Dead(1, "b", "c")])
    assert [e.kind for e in out.events] == ["dead"]
    assert a.handle_packet(0.0, "c:1", [Suspect(1, "b", "c")]).events == []  # dead stays dead
    assert alive(a, "b", 1).events == []
    out = alive(a, "b", 2)
    assert [e.kind for e in out.events] == ["joined"]


def test_dead_from_self_means_left():
    a = make()
    alive(a, "b", 3)
    out = a.handle_packet(0.0, "b:1", [Dead(3, "b", "b")])
    assert [e.kind for e in out.events] == ["left"]
    assert state(a, "b") == "left"


def test_meta_change_with_higher_incarnation_emits_updated():
    a = make()
    alive(a, "b", 1, meta={"v": 1})
    out = alive(a, "b", 2, meta={"v": 2})
    assert [e.kind for e in out.events] == ["updated"]
    assert a.members()["b"].meta == {"v": 2}


def test_alive_from_other_address_is_a_conflict_while_alive():
    a = make()
    alive(a, "b", 1)
    a.handle_packet(0.0, "x:1", [Alive(2, "b", "x:1", {})])
    assert a.members()["b"].addr == "b:1"
    assert a.counters["conflicts"] == 1


@pytest.mark.parametrize("accusation", [Suspect(1, "a", "c"), Dead(1, "a", "c"), Suspect(7, "a", "c")])
def test_refutation_bumps_incarnation_above_accusation(accusation):
    a = make()
    assert a.incarnation == 1
    out = a.handle_packet(0.0, "c:1", [accusation])
    assert out.events == []
    assert a.incarnation == max(2, accusation.incarnation + 1)
    assert state(a, "a") == "alive"
    assert a.awareness.score == 1  # Lifeguard: having to refute means we may be the slow one
    msgs, _ = a.queue.get(10_000, 10)
    assert Alive(a.incarnation, "a", "a:1", {"role": "a"}) in msgs


def test_stale_alive_about_self_is_ignored_and_newer_is_refuted():
    a = make(incarnation=4)
    assert a.incarnation == 5
    a.handle_packet(0.0, "c:1", [Alive(3, "a", "a:1", {})])
    assert a.incarnation == 5
    a.handle_packet(0.0, "c:1", [Alive(5, "a", "a:1", {"role": "a"})])
    assert a.incarnation == 5  # identical: nothing to refute
    a.handle_packet(0.0, "c:1", [Alive(5, "a", "a:1", {"role": "evil"})])
    assert a.incarnation == 6


def test_leave_is_not_refuted_and_broadcasts_left():
    a = make()
    alive(a, "b", 1)
    a.leave(0.0)
    assert state(a, "a") == "left"
    a.handle_packet(0.0, "b:1", [Suspect(1, "a", "b")])
    assert a.incarnation == 1
    msgs, _ = a.queue.get(10_000, 10)
    assert Dead(1, "a", "a") in msgs


def test_a_meta_change_after_the_leave_does_not_announce_the_node_alive_again():
    """A stopping daemon's subsystems may still publish meta (the traffic index) while its leave spreads
    (a host shutdown, member/held.py): an alive at a newer incarnation undid the leave on every member
    (seen ``joined`` 0.2 s later, the node marked ready again and its tasks back until gossip's dead
    verdict)."""
    a, b = make(), make("b")
    alive(a, "b", 1)
    alive(b, "a", 1)
    a.leave(0.0)
    a.update_meta(0.1, {"role": "a", "t": 7})
    msgs, _ = a.queue.get(10_000, 10)
    assert not [m for m in msgs if isinstance(m, Alive) and m.node == "a"] and a.incarnation == 1
    b.handle_packet(0.2, "a:1", msgs)
    assert state(b, "a") == "left"


def run_until_ping(core, now, until, step=0.01):
    while now < until:
        out = core.tick(now)
        if any(isinstance(m, Ping) for p in out.packets for m in p.msgs):
            return now, out
        now = round(now + step, 6)
    raise AssertionError("no ping")


def test_probe_ack_indirect_and_suspect_flow():
    a = make()
    for peer in ("b", "c", "d", "e"):
        alive(a, peer, 1)
    # drain the broadcast queue so probe packets carry only the probe
    while a.queue.get(10_000, 100)[0]:
        pass
    now = 0.0
    while True:
        out = a.tick(now)
        pings = [(p.addr, m) for p in out.packets for m in p.msgs if isinstance(m, Ping)]
        if pings:
            break
        now = round(now + 0.01, 6)
    ((addr, ping),) = pings
    target = ping.target
    assert addr == f"{target}:1"
    # no ack: after probe_timeout the core asks indirect_checks=3 other members
    out = a.tick(now + CFG.probe_timeout_s)
    reqs = [(p.addr, m) for p in out.packets for m in p.msgs if isinstance(m, IndirectPing)]
    assert len(reqs) == 3
    assert out.tcp_pings == [TcpPing(f"{target}:1", ping.seq, target)]  # memberlist's TCP fallback
    assert all(r.target == target and r.nack and addr != f"{target}:1" for addr, r in reqs)
    # one helper nacks; nobody acks: at the end of the probe interval the target becomes suspect
    a.handle_packet(now + 0.6, reqs[0][0], [Nack(ping.seq)])
    out = a.tick(now + CFG.probe_interval_s)
    assert ("suspect", target) in [(e.kind, e.name) for e in out.events]
    assert a.awareness.score == 2  # 3 expected nacks, 1 received
    # the next probe of the suspect carries the suspicion to it (buddy system)
    t = now + CFG.probe_interval_s
    found = False
    while not found and t < 60:
        out = a.tick(t)
        for p in out.packets:
            ping = p.msgs[0]
            if isinstance(ping, Ping) and ping.target == target:
                assert Suspect(1, target, "a") in p.msgs
                found = True
            elif isinstance(ping, Ping):  # other members answer at once
                a.handle_packet(t, p.addr, [Ack(ping.seq)])
        t = round(t + 0.05, 6)
    assert found


def test_ack_in_time_prevents_suspicion_and_heals_awareness():
    a = make()
    alive(a, "b", 1)
    a.awareness.apply(3)
    now, out = run_until_ping(a, 0.0, 5.0)
    ping = next(m for p in out.packets for m in p.msgs if isinstance(m, Ping))
    a.handle_packet(now + 0.01, "b:1", [Ack(ping.seq)])
    out = a.tick(now + 10.0)
    assert all(e.kind != "suspect" for e in out.events)
    assert a.awareness.score < 3


def test_indirect_ping_is_relayed_and_nacked_on_timeout():
    b = make("b")
    out = b.handle_packet(0.0, "a:1", [IndirectPing(42, "c", "c:1", "a", True)])
    relay = [(p.addr, m) for p in out.packets for m in p.msgs if isinstance(m, Ping)]
    assert relay and relay[0][0] == "c:1"
    seq = relay[0][1].seq
    out = b.handle_packet(0.1, "c:1", [Ack(seq)])
    assert ("a:1", Ack(42)) in [(p.addr, m) for p in out.packets for m in p.msgs]
    out = b.handle_packet(0.0, "a:1", [IndirectPing(43, "c", "c:1", "a", True)])
    out = b.tick(1.0)
    assert ("a:1", Nack(43)) in [(p.addr, m) for p in out.packets for m in p.msgs]


def test_ping_for_another_node_is_not_acked():
    b = make("b")
    out = b.handle_packet(0.0, "a:1", [Ping(1, "zzz", "a")])
    assert not any(isinstance(m, Ack) for p in out.packets for m in p.msgs)
    out = b.handle_packet(0.0, "a:1", [Ping(1, "b", "a")])
    assert any(p.addr == "a:1" and Ack(1) in p.msgs for p in out.packets)


def test_suspicion_times_out_to_dead_and_confirmations_shorten_it():
    def suspect_then_wait(confirmers):
        a = make()
        for peer in "bcdefghijk":
            alive(a, peer, 1)
        a.handle_packet(0.0, "c:1", [Suspect(1, "b", "c")])
        for who in confirmers:
            a.handle_packet(0.1, f"{who}:1", [Suspect(1, "b", who)])
        t = 0.0
        while t < 200:
            t += 0.25
            out = a.tick(t)
            if any(e.kind == "dead" and e.name == "b" for e in out.events):
                return t
        raise AssertionError("never dead")

    # N = 11: min = 4 * log10(11) * 1 s = 4.17 s; max = 6 * min; k = 2
    assert suspect_then_wait([]) == pytest.approx(25.0, abs=0.3)
    assert suspect_then_wait(["d"]) < 20.0
    assert suspect_then_wait(["d", "e"]) == pytest.approx(4.25, abs=0.3)


def test_push_pull_merge_refutes_our_death_and_learns_members():
    a = make()
    states = [
        StateEntry("a", "a:1", 7, 2, {}),  # remote thinks we are dead
        StateEntry("b", "b:1", 1, 0, {}),
        StateEntry("c", "c:1", 1, 3, {}),
    ]
    reply, out = a.handle_pushpull(0.0, states, join=True)
    assert a.incarnation == 8
    assert state(a, "b") == "alive"
    assert "c" not in a.members()  # a left node we never knew stays unknown
    assert {s.name for s in reply} == {"a", "b"}
    assert [e.kind for e in out.events] == ["joined"]


def test_join_requests_push_pull_with_seeds_except_self():
    a = make()
    out = a.join(0.0, ["s1:1", "a:1", "s2:1"])
    assert [(r.addr, r.join) for r in out.pushpulls] == [("s1:1", True), ("s2:1", True)]


def test_push_pull_interval_scaling():
    assert push_pull_scale_s(30.0, 32) == 30.0
    assert push_pull_scale_s(30.0, 33) == 60.0
    assert push_pull_scale_s(30.0, 1000) == 180.0


def test_gossip_sends_only_when_there_is_news_and_respects_budget():
    a = make()
    for i in range(200):
        alive(a, f"n{i:03d}", 1, meta={"labels": "x" * 50})
    out = a.tick(0.25)
    gossip = [p for p in out.packets if not any(isinstance(m, Ping) for m in p.msgs)]
    assert 1 <= len(gossip) <= CFG.gossip_nodes
    assert all(p.size_bytes <= CFG.udp_buffer_bytes - 29 for p in out.packets)
    # drain, then gossip rounds are silent
    for _ in range(400):
        a.queue.get(10_000, 100)
    out = a.tick(0.45)
    assert all(any(isinstance(m, Ping) for m in p.msgs) for p in out.packets)


def test_tcp_fallback_ping_can_be_disabled():
    a = Swim(GossipConfig.lan(tcp_fallback_ping=False), "a", "a:1", {}, random.Random(1), 0.0)
    alive(a, "b", 1)
    now, _ = run_until_ping(a, 0.0, 5.0)
    out = a.tick(now + CFG.probe_timeout_s)
    assert out.tcp_pings == []
    assert a.answers_tcp_ping("a") and not a.answers_tcp_ping("b")


def test_counters_suspicions_refutations_recoveries_and_probe_rtt():
    a = make()
    alive(a, "b", 1)
    a.handle_packet(0.0, "c:1", [Suspect(1, "b", "c")])
    assert state(a, "b") == "suspect" and a.counters["suspicions"] == 1
    a.handle_packet(0.1, "b:1", [Alive(2, "b", "b:1", {})])  # b refutes: the suspicion was a false positive
    assert state(a, "b") == "alive" and a.counters["suspects_recovered"] == 1
    a.handle_packet(0.2, "c:1", [Suspect(1, "a", "c")])  # about a itself
    assert a.counters["refutations"] == 1
    now, out = run_until_ping(a, 0.2, 5.0)
    ping = next(m for p in out.packets for m in p.msgs if isinstance(m, Ping))
    a.handle_packet(now + 0.004, "b:1", [Ack(ping.seq)])
    assert a.counters["probe_acks"] == 1
    assert a.probe_rtt.total == pytest.approx(0.004) and a.probe_rtt.count == 1
    assert dict(a.probe_rtt.cumulative())[0.005] == 1 and dict(a.probe_rtt.cumulative())[0.0025] == 0


def test_an_answered_probe_leaves_no_timeout_timer_behind():
    a = make()
    alive(a, "b", 1)
    now, out = run_until_ping(a, 0.0, 5.0)
    ping = next(m for p in out.packets for m in p.msgs if isinstance(m, Ping))
    timeout_at = now + CFG.probe_timeout_s
    assert timeout_at in [when for when, *_ in a._timers]  # the probe's timeout is armed
    a.handle_packet(now + 0.01, "b:1", [Ack(ping.seq)])
    assert timeout_at not in [when for when, *_ in a._timers]  # answered: it would only wake the node


def test_the_gossip_timer_parks_when_idle_and_a_broadcast_rearms_it_on_its_grid():
    a = make()
    for peer in ("b", "c"):
        alive(a, peer, 1)
    while a.queue.get(10_000, 100)[0]:  # drain: nothing left to spread
        pass
    wakeups = 0
    now = 0.0
    while now < 3.0:  # run the timers (every probe is answered)
        now = a.next_deadline()
        out = a.tick(now)
        for ping in [(p.addr, m) for p in out.packets for m in p.msgs if isinstance(m, Ping)]:
            a.handle_packet(now, ping[0], [Ack(ping[1].seq)])
        wakeups += 1
    gossip_every = CFG.gossip_interval_s
    # idle: the probe rounds wake the core, not every gossip interval as well
    assert wakeups <= 3.0 / CFG.probe_interval_s + 2
    parked_at = a._gossip_parked_at
    assert parked_at is not None
    # news within one interval of parking: gossiped on the old grid
    alive(a, "d", 1, now=parked_at + gossip_every / 2)
    assert a.next_deadline() == pytest.approx(parked_at + gossip_every)
    out = a.tick(parked_at + gossip_every)
    assert any(isinstance(m, Alive) and m.node == "d" for p in out.packets for m in p.msgs)
    # news long after parking: at once
    while a.queue.get(10_000, 100)[0]:
        pass
    later = a.next_deadline()
    a.tick(later)
    while a._gossip_parked_at is None:
        later = a.next_deadline()
        a.tick(later)
    alive(a, "e", 1, now=later + 10.0)
    assert later + 10.0 in [when for when, *_ in a._timers]  # the gossip round, due at once
