"""A queued broadcast is not sent back to a peer that sent it here (issue 19): the transmission counts as
made, the other peers receive it as before, and a gossip packet left empty is not sent."""

import random

from p2porch.gossip.broadcast import BroadcastQueue
from p2porch.gossip.config import GossipConfig
from p2porch.gossip.messages import Alive, Dead, Ping, Suspect
from p2porch.gossip.swim import Swim
from p2porch.testing.simulator import Simulator


def test_queue_leaves_out_what_the_peer_sent_and_counts_it():
    q = BroadcastQueue()
    msg = Alive(2, "x", "x:1", {})
    q.queue("x", msg, 60)
    q.queue("y", "msg-y", 60)
    q.held_by("x", Alive(2, "x", "x:1", {}), "b:1")  # equal content from b
    msgs, used = q.get(1000, limit=3, peer="b:1")
    assert msgs == ["msg-y"] and used == 60  # x's left out, no bytes for it
    assert q.transmits("x") == 1 and q.transmits("y") == 1  # counted as sent all the same
    assert q.get(1000, limit=3, peer="c:1")[0] == ["msg-y", msg]  # c still gets both
    assert q.get(1000, limit=3)[0] == ["msg-y", msg]  # no peer named: as before
    assert len(q) == 0  # x sent 3 times (one of them to b, left out)


def test_queue_counts_a_held_message_only_where_it_would_have_fitted():
    q = BroadcastQueue()
    q.queue("x", "msg-x", 100)
    q.held_by("x", "msg-x", "b:1")
    assert q.get(60, limit=3, peer="b:1") == ([], 0)
    assert q.transmits("x") == 0  # no room for it: left for the next packet, as before
    q.queue("y", "msg-y", 80)
    assert q.get(200, limit=3, peer="b:1") == (["msg-y"], 80)  # x takes no room where it is left out
    assert q.transmits("x") == 1 and q.transmits("y") == 1


def test_queue_marks_only_the_message_queued_under_the_key():
    q = BroadcastQueue()
    q.queue("x", Alive(3, "x", "x:1", {}), 60)
    q.held_by("x", Alive(2, "x", "x:1", {}), "b:1")  # an older one: b may not have the newer
    q.held_by("z", Alive(1, "z", "z:1", {}), "b:1")  # nothing queued under z
    assert q.get(1000, limit=3, peer="b:1")[0] == [Alive(3, "x", "x:1", {})]
    q.queue("x", Alive(4, "x", "x:1", {}), 60)  # replaced: the new item starts with no holders
    q.held_by("x", Alive(3, "x", "x:1", {}), "c:1")
    assert q.get(1000, limit=3, peer="c:1")[0] == [Alive(4, "x", "x:1", {})]


def make(name):
    return Swim(GossipConfig.lan(), name, f"{name}:1", {}, random.Random(1), 0.0)


def test_news_from_a_peer_is_not_gossiped_back_to_it():
    a = make("a")
    a.handle_packet(0.0, "b:1", [Alive(1, "b", "b:1", {})])
    a.handle_packet(0.0, "c:1", [Alive(1, "c", "c:1", {})])
    a.tick(10.0)  # a's own alive and the two joins go out
    while len(a.queue):
        a.tick(a.next_deadline())
    news = Alive(1, "x", "x:1", {"k": 1})
    a.handle_packet(20.0, "b:1", [news])  # b tells a about x: a queues it
    assert a.queue.transmits("x") == 0
    sent = {"b:1": [], "c:1": [], "x:1": []}
    while len(a.queue):
        out = a.tick(a.next_deadline())
        for packet in out.packets:
            sent[packet.addr].append(packet.msgs)
    assert not any(news in msgs for msgs in sent["b:1"])  # never back to the peer that sent it
    assert any(news in msgs for msgs in sent["c:1"])
    assert all(msgs for msgs in sent["b:1"])  # a packet with nothing b lacks is not sent at all


def test_a_probe_carries_no_piggyback_the_target_sent():
    a = make("a")
    a.handle_packet(0.0, "b:1", [Alive(1, "b", "b:1", {})])
    while len(a.queue):
        a.tick(a.next_deadline())
    suspect = Suspect(1, "x", "b")
    a.handle_packet(1.0, "c:1", [Alive(1, "x", "x:1", {}), Alive(1, "c", "c:1", {})])
    a.handle_packet(1.0, "b:1", [suspect])
    seen = []
    for _ in range(40):
        out = a.tick(a.next_deadline())
        seen += [(p.addr, m) for p in out.packets for m in p.msgs]
    assert ("b:1", suspect) not in seen and ("c:1", suspect) in seen
    assert any(addr == "b:1" and isinstance(m, Ping) for addr, m in seen)  # b is probed all the same


def test_a_dead_message_is_not_sent_back_to_its_sender():
    a = make("a")
    for peer in ("b", "c", "d"):
        a.handle_packet(0.0, f"{peer}:1", [Alive(1, peer, f"{peer}:1", {})])
    while len(a.queue):
        a.tick(a.next_deadline())
    dead = Dead(1, "d", "b")
    a.handle_packet(5.0, "b:1", [dead])
    seen = []
    while len(a.queue):
        out = a.tick(a.next_deadline())
        seen += [(p.addr, m) for p in out.packets for m in p.msgs]
    assert ("b:1", dead) not in seen and ("c:1", dead) in seen


def test_formation_sends_no_message_back_to_its_sender_and_converges():
    """20 nodes joining through one seed, 8 at a time, each with a metadata update 0.6 s after its start
    (its traffic index): no node sends a queued message to a peer that sent it that message, and every
    node sees every other alive, as before (before this change a quarter of the messages went back to
    a peer that had sent them: 1,493 of 5,802)."""
    sim = Simulator(7, GossipConfig.fast_lan())
    for i in range(1, 21):
        sim.add_node(f"n{i}", {"a": f"n{i}", "t": 0})
    received: dict[tuple[str, str], set[str]] = {}  # (receiver, sender addr) -> messages from it (repr)
    back = 0
    sent = 0
    real_apply = sim._apply

    def apply(node, out):
        nonlocal back, sent
        for packet in out.packets:
            for msg in packet.msgs:
                if isinstance(msg, Alive | Suspect | Dead):
                    sent += 1
                    back += repr(msg) in received.get((node.name, packet.addr), ())
        real_apply(node, out)

    real_deliver = Swim.handle_packet

    def deliver(core, now, src, msgs):
        received.setdefault((core.name, src), set()).update(
            repr(m) for m in msgs if isinstance(m, Alive | Suspect | Dead)
        )
        return real_deliver(core, now, src, msgs)

    sim._apply = apply
    Swim.handle_packet = deliver
    try:
        sim.start("n1")
        sim.run_for(1.0)
        t = sim.now
        for k in range(19):
            name = f"n{k + 2}"
            when = t + (k // 8) * 0.35 + (k % 8) * 0.01
            sim.at(when, lambda name=name: sim.start(name, ["n1"]))
            sim.at(when + 0.6, lambda name=name: sim.update_meta(name, "t", 1))
        sim.run_for(6.0)
    finally:
        Swim.handle_packet = real_deliver
    assert sim.converged()
    assert sent > 1000
    assert back == 0, f"{back} of {sent} messages went back to the peer that sent them"


def test_a_held_message_is_charged_to_the_selection_so_a_long_queue_spreads_to_the_others_as_before() -> None:
    """Review r52f: a held message took no room, so one packet to its holder counted every queued
    message as sent, and the others received far fewer copies under a queue longer than one packet."""

    def deliveries(hold: bool) -> int:
        q = BroadcastQueue()
        for i in range(100):
            q.queue(f"k{i}", ("m", i), 60)
            if hold:
                q.held_by(f"k{i}", ("m", i), "b")
        got = 0
        for _ in range(200):
            q.get(1400, 8, peer="b")
            msgs, _ = q.get(1400, 8, peer="c")
            got += len(msgs)
        return got

    assert deliveries(hold=True) == deliveries(hold=False)


def test_a_suspect_does_not_hold_the_dead_with_the_same_fields() -> None:
    """Review r52f: Suspect and Dead are NamedTuples with equal fields; a peer relaying a Suspect does
    not hold the Dead queued about the same node."""
    q = BroadcastQueue()
    q.queue("x", Dead(1, "x", "c"), 40)
    q.held_by("x", Suspect(1, "x", "c"), "b")
    msgs, _ = q.get(1400, 8, peer="b")
    assert msgs == [Dead(1, "x", "c")]
