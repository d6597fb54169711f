"""SWIM + Lifeguard membership protocol, sans-IO (pure).

Owns one node's view of the cluster and every protocol decision: probing, indirect probes, suspicion,
refutation, alive/suspect/dead/left merge rules (memberlist semantics), piggybacked dissemination, push/pull
merge, leave. Callers feed it ``now`` (float seconds), incoming messages and timer ticks; it returns
:class:`Output` (packets to send, push/pull exchanges to start, membership events). It never performs
I/O, reads a clock, logs, or uses randomness other than its own ``random.Random``.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Mapping
from typing import Any

from ..buckets import PROBE_RTT_BUCKETS, BucketCounts
from .awareness import Awareness
from .broadcast import BroadcastQueue
from .config import GossipConfig
from .envelope import envelope_bytes
from .membership import Member, MemberTable
from .messages import (
    ALIVE,
    DEAD,
    LEFT,
    PACKET_OVERHEAD_BYTES,
    SEAL_OVERHEAD_BYTES,
    STATE_NAMES,
    SUSPECT,
    Ack,
    Alive,
    Dead,
    IndirectPing,
    MemberEvent,
    Message,
    Nack,
    Packet,
    Ping,
    StateEntry,
    Suspect,
    check_meta,
    message_size,
    retransmit_limit,
)
from .suspicion import Suspicion, suspicion_min_timeout_s
from .suspicion import failure_detection_bound_s as failure_detection_bound_s  # re-exported
from .swim_output import MemberView as MemberView  # re-exported: callers import them from swim
from .swim_output import Output as Output
from .swim_output import PushPullRequest as PushPullRequest
from .swim_output import TcpPing as TcpPing

# timer kinds
_PROBE, _PROBE_TIMEOUT, _GOSSIP, _PUSHPULL, _RECONNECT, _SUSPICION, _RELAY_TIMEOUT = range(7)
_PUSH_PULL_SCALE_THRESHOLD = 32
_EPS = 1e-9


class _Probe:
    __slots__ = ("acked", "expected_nacks", "incarnation", "nacks", "sent_at", "seq", "target")

    def __init__(self, seq: int, target: Member, sent_at: float = 0.0) -> None:
        self.sent_at = sent_at
        self.seq = seq
        self.target = target
        self.incarnation = target.incarnation
        self.acked = False
        self.nacks = 0
        self.expected_nacks = 0


class _Relay:
    __slots__ = ("nack", "origin_addr", "origin_seq")

    def __init__(self, origin_addr: str, origin_seq: int, nack: bool) -> None:
        self.origin_addr = origin_addr
        self.origin_seq = origin_seq
        self.nack = nack


def push_pull_scale_s(interval_s: float, num_nodes: int) -> float:
    """memberlist pushPullScale: back off push/pull above 32 nodes, ``ceil(log2 N - log2 32) + 1`` times."""
    if num_nodes <= _PUSH_PULL_SCALE_THRESHOLD:
        return interval_s
    multiplier = math.ceil(math.log2(num_nodes) - math.log2(_PUSH_PULL_SCALE_THRESHOLD)) + 1
    return interval_s * multiplier


class Swim:
    """One node's SWIM/Lifeguard state machine. All methods take ``now`` and return an Output."""

    def __init__(
        self,
        config: GossipConfig,
        name: str,
        addr: str,
        meta: Mapping[str, Any],
        rng: random.Random,
        now: float,
        *,
        incarnation: int = 0,
    ) -> None:
        check_meta(meta)
        self.config = config
        self.name = name
        self.addr = addr
        self.rng = rng
        self.table = MemberTable(rng)
        self.queue = BroadcastQueue()
        self.awareness = Awareness(config.awareness_max_multiplier)
        self.leaving = False
        self.counters: dict[str, int] = {
            "conflicts": 0,
            "misdirected_pings": 0,
            "unknown_acks": 0,
            "suspicions": 0,  # peers this node started to suspect
            "suspects_recovered": 0,  # suspected peers that refuted: false positives
            "refutations": 0,  # accusations about this node that it refuted
            "probe_acks": 0,  # direct probes answered (probe_rtt holds their round trips)
        }
        self.probe_rtt = BucketCounts(PROBE_RTT_BUCKETS)
        self._budget_bytes = (
            config.udp_buffer_bytes - SEAL_OVERHEAD_BYTES - PACKET_OVERHEAD_BYTES - envelope_bytes(name, addr)
        )
        self._timers: list[tuple[float, int, int, Any]] = []
        self._timer_seq = 0
        # the gossip timer is parked (not in _timers) while there is nothing to spread: when it was
        # due and found the queue empty; a broadcast re-arms it (an idle node does not wake for it)
        self._gossip_parked_at: float | None = None
        self._seq = 0
        self._probe: _Probe | None = None
        self._relays: dict[int, _Relay] = {}
        self._suspicions: dict[str, Suspicion] = {}
        self._dispatch = {
            Ping: self._on_ping,
            IndirectPing: self._on_indirect_ping,
            Ack: self._on_ack,
            Nack: self._on_nack,
            Alive: self._on_alive_msg,
            Suspect: self._on_suspect_msg,
            Dead: self._on_dead_msg,
        }
        self.me = Member(name, addr, incarnation + 1, ALIVE, dict(meta), now)
        self.table.add(self.me)
        self._broadcast(now, name, Alive(self.me.incarnation, name, addr, self.me.meta))
        u = rng.random
        self._schedule(now + u() * config.probe_interval_s, _PROBE, None)
        self._schedule(now + u() * config.gossip_interval_s, _GOSSIP, None)
        self._schedule(now + (0.5 + u()) * config.push_pull_interval_s, _PUSHPULL, None)
        self._schedule(now + (0.5 + u()) * config.reconnect_interval_s, _RECONNECT, None)

    # ------------------------------------------------------------------------------------ public API

    @property
    def incarnation(self) -> int:
        return self.me.incarnation

    def num_live(self) -> int:
        return self.table.num_live

    def next_deadline(self) -> float:
        """When :meth:`tick` next has work to do."""
        return self._timers[0][0] if self._timers else math.inf

    def tick(self, now: float) -> Output:
        """Run every timer due at ``now``."""
        out = Output()
        timers = self._timers
        while timers and timers[0][0] <= now + _EPS:
            _, _, kind, arg = heapq.heappop(timers)
            if kind == _PROBE:
                self._probe_round(now, out)
            elif kind == _PROBE_TIMEOUT:
                self._probe_timeout(arg, out)
            elif kind == _GOSSIP:
                self._gossip(now, out)
            elif kind == _PUSHPULL:
                self._push_pull_timer(now, out)
            elif kind == _RECONNECT:
                self._reconnect_timer(now, out)
            elif kind == _SUSPICION:
                self._suspicion_timer(now, arg, out)
            else:
                self._relay_timeout(arg, out)
        return out

    def handle_packet(self, now: float, src_addr: str, msgs: list[Message]) -> Output:
        """Process one decoded UDP packet from ``src_addr``."""
        out = Output()
        dispatch = self._dispatch
        by_name = self.table.by_name
        me = self.me
        held_by = self.queue.held_by
        probes: list[Message] = []
        for msg in msgs:
            if type(msg) is Alive:
                # fast path: stale news about a known other member (the bulk of gossip traffic)
                member = by_name.get(msg.node)
                if member is None or member is me or msg.incarnation > member.incarnation:
                    self._on_alive(now, msg, out)
                held_by(msg.node, msg, src_addr)  # the sender holds it: none of our transmissions go to it
            elif type(msg) is Ping or type(msg) is IndirectPing:
                probes.append(msg)  # answered after the news it carries: the ack's piggyback leaves it out
            else:
                dispatch[type(msg)](now, src_addr, msg, out)  # type: ignore[operator]
                if type(msg) is Suspect or type(msg) is Dead:
                    held_by(msg.node, msg, src_addr)
        for msg in probes:
            dispatch[type(msg)](now, src_addr, msg, out)  # type: ignore[operator]
        return out

    def join(self, now: float, seed_addrs: list[str]) -> Output:
        """Start joining: a push/pull (join=True) with each seed."""
        out = Output()
        for addr in seed_addrs:
            if addr != self.addr:
                out.pushpulls.append(PushPullRequest(addr, True))
        return out

    def local_state(self) -> list[StateEntry]:
        """Full state for a push/pull exchange."""
        return [StateEntry(m.name, m.addr, m.incarnation, m.state, m.meta) for m in self.table]

    def handle_pushpull(
        self, now: float, states: list[StateEntry], join: bool
    ) -> tuple[list[StateEntry], Output]:
        """Serve a push/pull: merge the remote state, reply with ours (after merging, so refutes travel)."""
        out = self.merge_remote(now, states)
        return self.local_state(), out

    def merge_remote(self, now: float, states: list[StateEntry]) -> Output:
        """memberlist mergeState: alive -> alive rules, left -> leave, dead/suspect -> suspect (refutable)."""
        out = Output()
        for s in states:
            if s.state == ALIVE:
                self._on_alive(now, Alive(s.incarnation, s.name, s.addr, s.meta), out)
            elif s.state == LEFT:
                self._on_dead(now, Dead(s.incarnation, s.name, s.name), out)
            else:
                self._on_suspect(now, Suspect(s.incarnation, s.name, self.name), out)
        return out

    def leave(self, now: float) -> Output:
        """Gracefully leave: broadcast dead(self, from=self); stop probing and refuting."""
        out = Output()
        if not self.leaving:
            self.leaving = True
            self._on_dead(now, Dead(self.me.incarnation, self.name, self.name), out)
        return out

    def answers_tcp_ping(self, target: str) -> bool:
        """Whether a TCP fallback ping for ``target`` should be answered by this node."""
        return target == self.name

    def leave_transmits(self) -> int | None:
        """How many times our leave message went out (None once fully disseminated or never queued)."""
        return self.queue.transmits(self.name)

    def spread(self) -> bool:
        """Whether our own latest broadcast (a leave, an alive with new meta) went out ``gossip_nodes``
        times or left the queue: what a stopping node waits for (``leave_propagate_s`` at most)."""
        transmits = self.leave_transmits()
        return transmits is None or transmits >= self.config.gossip_nodes

    def update_meta(self, now: float, meta: Mapping[str, Any]) -> Output:
        """Change this node's metadata: bump incarnation and broadcast alive; once leaving, only kept (an
        alive after the leave undid it: every member saw the node joined again, and its tasks back)."""
        check_meta(meta)
        me = self.me
        me.meta = dict(meta)
        if self.leaving:
            return Output()
        me.incarnation += 1
        self._broadcast(now, self.name, Alive(me.incarnation, self.name, self.addr, me.meta))
        return Output()

    def members(self) -> dict[str, MemberView]:
        return {
            m.name: MemberView(m.name, m.addr, STATE_NAMES[m.state], m.incarnation, m.meta)
            for m in self.table
        }

    def dead_names(self) -> set[str]:
        """The members in state dead: ``members()`` filtered, in O(1) while none is (the count is kept)."""
        if not self.table.num_dead:
            return set()
        return {m.name for m in self.table if m.state == DEAD}

    def gone_names(self) -> set[str]:
        """The members in state dead or left (a host shutting down leaves: ``member/held.py``), in O(1)
        while none is."""
        if not self.table.num_dead and not self.table.counts[LEFT]:
            return set()
        return {m.name for m in self.table if m.state in (DEAD, LEFT)}

    # ------------------------------------------------------------------------------------ timers

    def _schedule(self, when: float, kind: int, arg: Any) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (when, self._timer_seq, kind, arg))

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # ------------------------------------------------------------------------------------ sending

    def _send(self, out: Output, addr: str, msgs: list[Message]) -> None:
        """Queue a packet to ``addr`` with broadcasts piggybacked up to the UDP budget."""
        size = 0
        for m in msgs:
            size += message_size(m)
        extra, used = self.queue.get(self._budget_bytes - size, self._retransmit_limit(), addr)
        if extra:
            msgs.extend(extra)
        out.packets.append(Packet(addr, msgs, size + used + PACKET_OVERHEAD_BYTES))

    def _retransmit_limit(self) -> int:
        return retransmit_limit(self.config.retransmit_mult, self.table.num_live)

    def _broadcast(self, now: float, key: str, msg: Message) -> None:
        self.queue.queue(key, msg, message_size(msg))
        if self._gossip_parked_at is not None:  # on the parked timer's grid: never later than before
            self._schedule(max(now, self._gossip_parked_at + self.config.gossip_interval_s), _GOSSIP, None)
            self._gossip_parked_at = None

    def _cancel_timer(self, kind: int, arg: Any) -> None:
        """Drop a pending timer that has nothing left to do (a probe answered): one wakeup less."""
        timers = self._timers
        for i, entry in enumerate(timers):
            if entry[2] == kind and entry[3] is arg:
                timers[i] = timers[-1]
                timers.pop()
                heapq.heapify(timers)
                return

    # ------------------------------------------------------------------------------------ probing

    def _probe_round(self, now: float, out: Output) -> None:
        cfg = self.config
        interval = self.awareness.scale(cfg.probe_interval_s)
        self._schedule(now + interval, _PROBE, None)
        probe = self._probe
        if probe is not None:
            self._probe = None
            if not probe.acked:
                self._probe_failed(now, probe, out)
        if self.leaving:
            return
        target = self.table.next_probe_target(self.name)
        if target is None:
            return
        probe = _Probe(self._next_seq(), target, now)
        self._probe = probe
        msgs: list[Message] = [Ping(probe.seq, target.name, self.name)]
        if target.state == SUSPECT:  # Lifeguard buddy system: tell the suspect so it can refute at once
            msgs.append(Suspect(target.incarnation, target.name, self.name))
        self._send(out, target.addr, msgs)
        self._schedule(now + self.awareness.scale(cfg.probe_timeout_s), _PROBE_TIMEOUT, probe)

    def _probe_timeout(self, probe: _Probe, out: Output) -> None:
        if probe is not self._probe or probe.acked:
            return
        target = probe.target
        helpers = self.table.random_members(
            self.config.indirect_checks,
            lambda m: m.state == ALIVE and m is not target and m is not self.me,
        )
        for helper in helpers:
            req = IndirectPing(probe.seq, target.name, target.addr, self.name, True)
            self._send(out, helper.addr, [req])
        probe.expected_nacks = len(helpers)
        if self.config.tcp_fallback_ping:  # memberlist: TCP gets through where UDP is lossy
            out.tcp_pings.append(TcpPing(target.addr, probe.seq, target.name))

    def _probe_failed(self, now: float, probe: _Probe, out: Output) -> None:
        # Lifeguard: each missing nack means our own network/CPU may be the problem
        delta = max(probe.expected_nacks - probe.nacks, 0) if probe.expected_nacks > 0 else 1
        self.awareness.apply(delta)
        self._on_suspect(now, Suspect(probe.incarnation, probe.target.name, self.name), out)

    def _on_ping(self, now: float, src: str, msg: Ping, out: Output) -> None:
        if msg.target != self.name:
            self.counters["misdirected_pings"] += 1
            return
        self._send(out, src, [Ack(msg.seq)])

    def _on_indirect_ping(self, now: float, src: str, msg: IndirectPing, out: Output) -> None:
        seq = self._next_seq()
        relay = _Relay(src, msg.seq, msg.nack)
        self._relays[seq] = relay
        self._send(out, msg.target_addr, [Ping(seq, msg.target, self.name)])
        self._schedule(now + self.config.probe_timeout_s, _RELAY_TIMEOUT, seq)

    def _relay_timeout(self, seq: int, out: Output) -> None:
        relay = self._relays.pop(seq, None)
        if relay is not None and relay.nack:
            self._send(out, relay.origin_addr, [Nack(relay.origin_seq)])

    def _on_ack(self, now: float, src: str, msg: Ack, out: Output) -> None:
        probe = self._probe
        if probe is not None and probe.seq == msg.seq:
            if not probe.acked:
                probe.acked = True
                self._cancel_timer(_PROBE_TIMEOUT, probe)
                self.awareness.apply(-1)
                self.counters["probe_acks"] += 1
                self.probe_rtt.observe(max(0.0, now - probe.sent_at))
            return
        relay = self._relays.pop(msg.seq, None)
        if relay is not None:
            self._send(out, relay.origin_addr, [Ack(relay.origin_seq)])
            return
        self.counters["unknown_acks"] += 1

    def _on_nack(self, now: float, src: str, msg: Nack, out: Output) -> None:
        probe = self._probe
        if probe is not None and probe.seq == msg.seq:
            probe.nacks += 1

    # ------------------------------------------------------------------------------------ gossip

    def _gossip(self, now: float, out: Output) -> None:
        cfg = self.config
        if not len(self.queue):
            self._gossip_parked_at = now  # re-armed by the next broadcast (_broadcast)
            return
        self._schedule(now + cfg.gossip_interval_s, _GOSSIP, None)
        dead_cutoff = now - cfg.gossip_to_the_dead_s
        me = self.me
        targets = self.table.random_members(
            cfg.gossip_nodes,
            lambda m: m is not me and (m.state <= SUSPECT or m.state_change_s > dead_cutoff),
        )
        limit = self._retransmit_limit()
        queue = self.queue
        for target in targets:
            msgs, used = queue.get(self._budget_bytes, limit, target.addr)
            if msgs:  # none: the target holds every message due (or the queue ran dry): no packet
                out.packets.append(Packet(target.addr, msgs, used + PACKET_OVERHEAD_BYTES))
            elif not len(queue):
                return

    def _push_pull_timer(self, now: float, out: Output) -> None:
        cfg = self.config
        self._schedule(
            now + push_pull_scale_s(cfg.push_pull_interval_s, self.table.num_live), _PUSHPULL, None
        )
        me = self.me
        peers = self.table.random_members(1, lambda m: m is not me and m.state == ALIVE)
        if peers:
            out.pushpulls.append(PushPullRequest(peers[0].addr, False))

    def _reconnect_timer(self, now: float, out: Output) -> None:
        """serf-like healing: push/pull with one random dead member so healed partitions merge back."""
        cfg = self.config
        self._schedule(now + cfg.reconnect_interval_s, _RECONNECT, None)
        self.table.reap(now, cfg.reconnect_timeout_s)
        if self.table.num_dead == 0 or self.leaving:
            return
        cutoff = now - cfg.reconnect_timeout_s
        peers = self.table.random_members(1, lambda m: m.state == DEAD and m.state_change_s > cutoff)
        if peers:
            out.pushpulls.append(PushPullRequest(peers[0].addr, False))

    # ------------------------------------------------------------------------------------ merge rules

    def _on_alive_msg(self, now: float, src: str, msg: Alive, out: Output) -> None:
        self._on_alive(now, msg, out)

    def _on_suspect_msg(self, now: float, src: str, msg: Suspect, out: Output) -> None:
        self._on_suspect(now, msg, out)

    def _on_dead_msg(self, now: float, src: str, msg: Dead, out: Output) -> None:
        self._on_dead(now, msg, out)

    def _refute(self, now: float, accused_incarnation: int) -> None:
        me = self.me
        inc = me.incarnation + 1
        self.counters["refutations"] += 1
        if accused_incarnation >= inc:
            inc = accused_incarnation + 1
        me.incarnation = inc
        self.awareness.apply(1)
        self._broadcast(now, self.name, Alive(inc, self.name, self.addr, me.meta))

    def _on_alive(self, now: float, msg: Alive, out: Output) -> None:
        name = msg.node
        member = self.table.by_name.get(name)
        if member is self.me:
            me = self.me
            if self.leaving or msg.incarnation < me.incarnation:
                return
            if msg.incarnation == me.incarnation and msg.addr == me.addr and msg.meta == me.meta:
                return
            self._refute(now, msg.incarnation)
            return
        if member is None:
            if not name:
                return
            member = Member(name, msg.addr, msg.incarnation, ALIVE, msg.meta, now)
            self.table.add(member)
            self._broadcast(now, name, msg)
            out.events.append(MemberEvent("joined", name, msg.addr, msg.incarnation, msg.meta))
            return
        if msg.incarnation <= member.incarnation:
            return
        old_state = member.state
        if msg.addr != member.addr and old_state <= SUSPECT:
            self.counters["conflicts"] += 1
            return
        meta_changed = msg.meta != member.meta
        member.incarnation = msg.incarnation
        member.addr = msg.addr
        member.meta = msg.meta
        self._suspicions.pop(name, None)
        self._broadcast(now, name, msg)
        if old_state != ALIVE:
            self.table.set_state(member, ALIVE, now)
        if old_state >= DEAD:
            out.events.append(MemberEvent("joined", name, msg.addr, msg.incarnation, msg.meta))
        elif old_state == SUSPECT:
            self.counters["suspects_recovered"] += 1
            out.events.append(MemberEvent("alive", name, msg.addr, msg.incarnation, msg.meta))
        if meta_changed and old_state <= SUSPECT:
            out.events.append(MemberEvent("updated", name, msg.addr, msg.incarnation, msg.meta))

    def _on_suspect(self, now: float, msg: Suspect, out: Output) -> None:
        name = msg.node
        member = self.table.by_name.get(name)
        if member is None or msg.incarnation < member.incarnation:
            return
        suspicion = self._suspicions.get(name)
        if suspicion is not None:
            if suspicion.confirm(msg.sender):
                self._broadcast(now, name, msg)
                self._schedule(suspicion.deadline_s(), _SUSPICION, (name, suspicion))
            return
        if member.state != ALIVE:
            return
        if member is self.me:
            if not self.leaving:
                self._refute(now, msg.incarnation)
            return
        self._broadcast(now, name, msg)
        member.incarnation = msg.incarnation
        self.table.set_state(member, SUSPECT, now)
        self.counters["suspicions"] += 1
        cfg = self.config
        n = self.table.num_live
        k = cfg.suspicion_mult - 2
        if n - 2 < k:
            k = 0
        min_s = suspicion_min_timeout_s(cfg.suspicion_mult, n, cfg.probe_interval_s)
        suspicion = Suspicion(msg.sender, k, min_s, cfg.suspicion_max_timeout_mult * min_s, now)
        self._suspicions[name] = suspicion
        self._schedule(suspicion.deadline_s(), _SUSPICION, (name, suspicion))
        out.events.append(MemberEvent("suspect", name, member.addr, member.incarnation, member.meta))

    def _suspicion_timer(self, now: float, arg: tuple[str, Suspicion], out: Output) -> None:
        name, suspicion = arg
        if self._suspicions.get(name) is not suspicion:
            return
        deadline = suspicion.deadline_s()
        if now + _EPS < deadline:
            self._schedule(deadline, _SUSPICION, arg)
            return
        del self._suspicions[name]
        member = self.table.by_name[name]
        self._on_dead(now, Dead(member.incarnation, name, self.name), out)

    def _on_dead(self, now: float, msg: Dead, out: Output) -> None:
        name = msg.node
        member = self.table.by_name.get(name)
        if member is None or msg.incarnation < member.incarnation:
            return
        self._suspicions.pop(name, None)
        if member.state >= DEAD:
            return
        if member is self.me and not self.leaving:
            self._refute(now, msg.incarnation)
            return
        self._broadcast(now, name, msg)
        member.incarnation = msg.incarnation
        left = msg.sender == name
        self.table.set_state(member, LEFT if left else DEAD, now)
        if member is not self.me:
            out.events.append(
                MemberEvent("left" if left else "dead", name, member.addr, member.incarnation, member.meta)
            )
