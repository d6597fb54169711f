"""Real loopback UDP/TCP gossip nodes in one trio run."""

import os
import random
import socket
from types import SimpleNamespace

import trio
from prometheus_client.parser import text_string_to_metric_families

from p2porch.control.metrics_view import ClusterMetrics
from p2porch.gossip.config import GossipConfig
from p2porch.gossip.keyring import Keyring, derive_gossip_key
from p2porch.gossip.messages import NodeMeta
from p2porch.gossip.runner import serve_gossip
from p2porch.gossip.transport import UDP_AAD
from p2porch.metrics import Metrics

SECRET = b"cluster-secret-0123456789"


def fast_config(name):
    return GossipConfig.local(
        node_name=name,
        advertise_host="127.0.0.1",
        port=0,
        probe_interval_s=0.2,
        probe_timeout_s=0.08,
        gossip_interval_s=0.05,
        push_pull_interval_s=2.0,
        reconnect_interval_s=0.5,
        leave_propagate_s=0.5,
        join_retry_interval_s=0.2,
        tcp_timeout_s=1.0,
    )


class Cluster:
    def __init__(self, nursery):
        self.nursery = nursery
        self.handles = {}
        self.events = []

    async def start(self, name, seeds=(), keyring=None, meta=None):
        def on_event(event, name=name):
            self.events.append((name, event))

        handle = await self.nursery.start(
            serve_gossip,
            fast_config(name),
            keyring or Keyring.from_secret(SECRET),
            meta or NodeMeta(advertise_addr="127.0.0.1", labels={"name": name}),
            list(seeds),
            on_event,
        )
        self.handles[name] = handle
        return handle

    def sees(self, observer, subject, state):
        view = self.handles[observer].members()
        return subject in view and view[subject].state == state

    def converged(self, names):
        return all(
            all(self.sees(o, s, "alive") for s in names) and len(self.handles[o].members()) >= len(names)
            for o in names
        )


async def wait_for(predicate, timeout_s=10.0):
    with trio.fail_after(timeout_s):
        while not predicate():
            await trio.sleep(0.05)


async def test_converge_kill_detect_restart_with_higher_incarnation():
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery)
        seed = await c.start("n0")
        names = [f"n{i}" for i in range(5)]
        for name in names[1:]:
            await c.start(name, [seed.addr])
        await wait_for(lambda: c.converged(names))
        assert c.handles["n1"].members()["n2"].meta["l"] == {"name": "n2"}

        victim = c.handles["n3"]
        old_inc = victim.incarnation
        victim.stop()
        others = [n for n in names if n != "n3"]
        await wait_for(lambda: all(c.sees(o, "n3", "dead") for o in others), timeout_s=15.0)
        assert any(who == "n1" and e.kind == "dead" and e.name == "n3" for who, e in c.events)

        await c.start("n3", [seed.addr])  # a new process, new port, same name
        await wait_for(lambda: all(c.sees(o, "n3", "alive") for o in others), timeout_s=15.0)
        new_inc = c.handles["n3"].incarnation
        assert new_inc > old_inc
        assert all(c.handles[o].members()["n3"].incarnation == new_inc for o in others)
        for name in others:
            assert c.handles[name].metrics["auth_failures"] == 0
            assert c.handles[name].metrics["udp_packets_in"] > 0
        nursery.cancel_scope.cancel()


async def test_wrong_key_is_never_admitted():
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery)
        seed = await c.start("a")
        await c.start("b", [seed.addr])
        await wait_for(lambda: c.converged(["a", "b"]))
        intruder = await c.start("evil", [seed.addr], keyring=Keyring.from_secret(b"wrong secret"))
        # evil's join reached a and was refused (observable), and a and b gossiped on afterwards
        await wait_for(lambda: c.handles["a"].metrics["auth_failures"] > 0)
        before = c.handles["b"].metrics["udp_packets_in"]
        await wait_for(lambda: c.handles["b"].metrics["udp_packets_in"] >= before + 10)
        assert "evil" not in c.handles["a"].members()
        assert "evil" not in c.handles["b"].members()
        assert set(intruder.members()) == {"evil"}
        nursery.cancel_scope.cancel()


async def test_garbage_and_forged_packets_are_counted_and_dropped():
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery)
        a = await c.start("a")
        b = await c.start("b", [a.addr])
        await wait_for(lambda: c.converged(["a", "b"]))
        host, port = a.addr.rsplit(":", 1)
        keyring = Keyring.from_secret(SECRET)
        rng = random.Random(3)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(50):
                s.sendto(bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 300))), (host, int(port)))
            for _ in range(10):  # authentic but not a gossip packet
                s.sendto(keyring.seal(os.urandom(40), UDP_AAD), (host, int(port)))
        # TCP garbage too
        stream = await trio.open_tcp_stream(host, int(port))
        await stream.send_all(b"\x00\x00\x00\x10" + b"x" * 16)
        await stream.aclose()
        await wait_for(lambda: a.metrics["auth_failures"] >= 51 and a.metrics["malformed_packets"] >= 10)
        before = a.metrics["udp_packets_in"]  # still serving: b's packets keep being taken in
        await wait_for(lambda: a.metrics["udp_packets_in"] >= before + 10)
        assert c.converged(["a", "b"])
        assert b.metrics["auth_failures"] == 0
        nursery.cancel_scope.cancel()


async def test_key_rotation_accepts_previous_key():
    old, new = b"old-token-secret", b"new-token-secret"
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery)
        a = await c.start("a", keyring=Keyring.from_secret(new, [old]))  # rotated
        await c.start("b", [a.addr], keyring=Keyring.from_secret(new, [old]))  # rotated
        # not rotated yet, but already accepts the new key
        await c.start("c", [a.addr], keyring=Keyring(derive_gossip_key(old), [derive_gossip_key(new)]))
        await wait_for(lambda: c.converged(["a", "b", "c"]))
        nursery.cancel_scope.cancel()


async def test_graceful_leave_and_meta_update():
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery)
        a = await c.start("a")
        b = await c.start("b", [a.addr])
        await c.start("c", [a.addr])
        await wait_for(lambda: c.converged(["a", "b", "c"]))
        b.update_meta(NodeMeta(advertise_addr="127.0.0.1", labels={"zone": "z9"}))
        await wait_for(lambda: a.members()["b"].meta["l"] == {"zone": "z9"})
        assert any(who == "a" and e.kind == "updated" and e.name == "b" for who, e in c.events)
        await b.leave()
        await wait_for(lambda: c.sees("a", "b", "left") and c.sees("c", "b", "left"))
        # a left member is never probed: a probe of b would make it suspect within one probe round
        before = a.metrics["udp_packets_in"]
        await wait_for(lambda: a.metrics["udp_packets_in"] >= before + 20)
        assert not any(e.kind in ("suspect", "dead") and e.name == "b" for _, e in c.events)
        nursery.cancel_scope.cancel()


async def test_a_nodes_engine_version_reaches_the_others_through_its_metadata():
    """``node ls`` ENGINE VERSION: a board publishes its engine's version as one key of its gossip
    metadata (the rest kept, ``"t"`` here); another node's board reads it from real gossip."""
    from p2porch.context import LocalBoard

    async with trio.open_nursery() as nursery:
        c = Cluster(nursery)
        a = await c.start("a")
        b = await c.start("b", [a.addr], meta=NodeMeta(advertise_addr="127.0.0.1", traffic_index=7))
        await wait_for(lambda: c.converged(["a", "b"]))
        publisher, reader = LocalBoard(gossip=b), LocalBoard(gossip=a)
        assert reader.engine_versions().get("b") == ""
        publisher.publish_engine_version("27.5.1")
        await wait_for(lambda: reader.engine_versions().get("b") == "27.5.1")
        assert a.members()["b"].meta["t"] == 7  # the traffic index kept beside it
        nursery.cancel_scope.cancel()


async def test_tcp_fallback_ping_answers_only_for_the_right_name():
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery)
        a = await c.start("a")
        b = await c.start("b")
        transport = a._runner.transport
        assert await transport.tcp_ping(b.addr, 7, "b", 1.0)
        assert not await transport.tcp_ping(b.addr, 8, "not-b", 1.0)
        assert b.metrics["tcp_pings_in"] == 1
        nursery.cancel_scope.cancel()


async def test_a_restart_announcement_outlives_the_stop_and_the_restarted_daemon_clears_it():
    """``announce_restart`` (a daemon's graceful stop): the others read the hold in its meta while it is
    alive, still once gossip declares it dead (the leader holds it, leader/restart_hold.py), and the
    daemon started again is seen alive at a newer incarnation without it (its hold is released)."""
    from p2porch.gossip.messages import restart_hint
    from p2porch.member.gossip import announce_restart

    async with trio.open_nursery() as nursery:
        c = Cluster(nursery)
        a = await c.start("a")
        b = await c.start("b", [a.addr])
        await c.start("c", [a.addr])
        await wait_for(lambda: c.converged(["a", "b", "c"]))
        await announce_restart(b, 1_800_000_030)
        await wait_for(
            lambda: all(restart_hint(c.handles[o].members()["b"].meta) == 1_800_000_030 for o in ("a", "c"))
        )
        announced = a.members()["b"].incarnation
        assert any(who == "a" and e.kind == "updated" and e.name == "b" for who, e in c.events)
        b.stop()
        await wait_for(lambda: c.sees("a", "b", "dead") and c.sees("c", "b", "dead"), timeout_s=15.0)
        assert restart_hint(a.members()["b"].meta) == 1_800_000_030  # kept with the dead member
        await c.start("b", [a.addr])  # the daemon back: a new process, same name
        await wait_for(lambda: c.sees("a", "b", "alive") and c.sees("c", "b", "alive"), timeout_s=15.0)
        back = a.members()["b"]
        assert back.incarnation > announced and restart_hint(back.meta) == 0
        nursery.cancel_scope.cancel()


async def test_labels_that_fill_the_meta_leave_out_the_optional_keys_never_fail_start_or_stop(caplog):
    """Before: a node whose labels filled the 512-byte meta failed its gossip start with its engine
    version (WireError), its board's publish_engine_version raised into the agent's first start, and the
    restart announcement raised in the stop path. Now each optional key with no room left is left out,
    counted and logged once; the labels still reach the others."""
    from p2porch.context import LocalBoard
    from p2porch.gossip.messages import META_MAX_BYTES
    from p2porch.member.gossip import announce_restart
    from p2porch.wire import pack

    size = len(pack(NodeMeta(advertise_addr="127.0.0.1", labels={"fill": ""}).to_wire()))
    labels = {"fill": "x" * (META_MAX_BYTES - size - 2)}  # 2 bytes left: no optional key fits
    full = NodeMeta(advertise_addr="127.0.0.1", labels=labels, engine_version="27.5.1")
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery)
        a = await c.start("a")
        b = await c.start("b", [a.addr], meta=full)
        await wait_for(lambda: c.converged(["a", "b"]))
        assert a.members()["b"].meta["l"] == labels and "e" not in a.members()["b"].meta
        LocalBoard(gossip=b).publish_engine_version("27.5.1", "x86_64")
        await announce_restart(b, 1_800_000_030)
        b.set_own_meta("r", 1_800_000_031)
        assert b.metrics["meta_keys_skipped"] == 5 and b.members()["b"].meta["l"] == labels
        exported = Metrics()  # as the daemon's /metrics reads it (before: counted, never exported)
        exported.add_source(ClusterMetrics(SimpleNamespace(board=SimpleNamespace(gossip=b))).gossip)  # type: ignore[arg-type]
        (family,) = [
            f
            for f in text_string_to_metric_families(exported.render().decode())
            if f.name == "p2porch_gossip_meta_keys_skipped"
        ]
        assert [(s.name, s.value) for s in family.samples] == [("p2porch_gossip_meta_keys_skipped_total", 5)]
        logged = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
        assert len(logged) == 3, logged  # once per key: e, p, r
        nursery.cancel_scope.cancel()


async def test_a_held_meta_key_rides_with_the_next_update_or_goes_alone_after_its_hold():
    """The engine version is held back (``set_own_meta(..., hold_s=...)``, issue 19): the next update
    (a joiner's traffic index) carries it in the same alive message; with no update it goes alone once
    the hold ran out. Fails when a held key is broadcast at once (main: the engine version spreads on
    its own, before the traffic index). Refutations under load carry the meta without held keys."""
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery)
        a = await c.start("a")
        b = await c.start("b", [a.addr])
        await wait_for(lambda: c.converged(["a", "b"]))
        b.set_own_meta("e", "27.5.1", hold_s=30.0)
        await trio.sleep(0.3)  # several gossip rounds: nothing went out
        assert "e" not in a.members()["b"].meta and "e" not in b.members()["b"].meta
        b.set_own_meta("t", 9)
        assert {k: b.members()["b"].meta.get(k) for k in "et"} == {"e": "27.5.1", "t": 9}  # one update
        await wait_for(lambda: a.members()["b"].meta.get("t") == 9)
        assert a.members()["b"].meta["e"] == "27.5.1"  # in the same alive message
        b.set_own_meta("p", "x86_64", hold_s=0.2)  # no update follows: it goes alone after the hold
        await wait_for(lambda: a.members()["b"].meta.get("p") == "x86_64")
        assert a.members()["b"].meta["t"] == 9
        nursery.cancel_scope.cancel()
