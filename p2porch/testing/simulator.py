"""Deterministic discrete-event simulator for many SWIM cores (pure, for tests and benchmarks).

Owns one heap of events (packet deliveries, push/pull legs, timer ticks, resumes), the simulated clock,
and per-node seeded RNGs. Nothing depends on set or hash order, so a seed reproduces a run exactly. It
passes message objects between cores (no codec) but accounts the exact packed packet sizes. It never
sleeps, reads the wall clock or touches sockets.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..gossip.config import GossipConfig
from ..gossip.messages import Ack, MemberEvent, StateEntry
from ..gossip.swim import Output, Swim
from ..gossip.swim_output import MemberView
from .network import Faults, Latency, uniform

_DELIVER, _TICK, _PP_REQUEST, _PP_REPLY, _RESUME, _CALL, _TCP_PING = range(7)
PUSHPULL_ENTRY_BYTES = 48  # estimated packed size of one push/pull state entry, plus per-node meta


class SimNode:
    """One simulated process: its SWIM core, liveness, pause backlog and traffic counters."""

    __slots__ = (
        "addr",
        "backlog",
        "core",
        "index",
        "meta",
        "name",
        "packets_sent",
        "paused_until",
        "pushpull_bytes",
        "rng",
        "running",
        "sent_bytes",
        "sent_msgs",
        "tick_at",
    )

    def __init__(self, index: int, name: str, addr: str, meta: Mapping[str, Any]) -> None:
        self.index = index
        self.name = name
        self.addr = addr
        self.meta = meta
        self.core: Swim | None = None
        self.rng: random.Random | None = None
        self.running = False
        self.paused_until = -math.inf
        self.backlog: list[tuple[int, Any]] = []
        self.tick_at = math.inf
        self.packets_sent = 0
        self.sent_msgs = 0
        self.sent_bytes = 0
        self.pushpull_bytes = 0


EventHook = Callable[[float, str, MemberEvent], None]


class Simulator:
    """Runs SWIM cores over a simulated network; see tests/sim for usage."""

    def __init__(
        self,
        seed: int,
        config: GossipConfig,
        *,
        latency: Latency | None = None,
        record: Iterable[str] = ("suspect", "alive", "dead", "left"),
        extra_delay: Callable[[str, str], float] | None = None,
    ) -> None:
        """``extra_delay(src, dst)``: a one-way delay added to ``latency`` per node pair (a WAN)."""
        self.seed = seed
        self.config = config
        self.now = 0.0
        self.faults = Faults()
        self.latency = latency or uniform(0.0005, 0.003)
        self.extra_delay = extra_delay
        self.net_rng = random.Random(f"{seed}:network")
        self.nodes: dict[str, SimNode] = {}
        self._by_addr: dict[str, SimNode] = {}
        self._heap: list[tuple[float, int, int, SimNode, Any]] = []
        self._seq = 0
        self._record = tuple(record)
        self.events: list[tuple[float, str, MemberEvent]] = []
        self.hooks: list[EventHook] = []
        self.event_counts: dict[str, int] = {}
        self.processed_events = 0
        self._lives: dict[str, int] = {}

    # ------------------------------------------------------------------------------------ nodes

    def add_node(self, name: str, meta: Mapping[str, Any] | None = None) -> SimNode:
        """Create a node (not started)."""
        addr = f"{name}:7946"
        node = SimNode(len(self.nodes), name, addr, dict(meta or {}))
        self.nodes[name] = node
        self._by_addr[addr] = node
        return node

    def start(self, name: str, seeds: Iterable[str] = ()) -> SimNode:
        """Start (or restart with fresh state) the node ``name`` and join through the named seed nodes."""
        node = self.nodes.get(name) or self.add_node(name)
        life = self._lives.get(name, 0) + 1
        self._lives[name] = life
        node.rng = random.Random(f"{self.seed}:{name}:{life}")
        node.core = Swim(self.config, name, node.addr, node.meta, node.rng, self.now)
        node.running = True
        node.paused_until = -math.inf
        node.backlog = []
        node.tick_at = math.inf
        seed_addrs = [self.nodes[s].addr for s in seeds if s != name]
        self._apply(node, node.core.join(self.now, seed_addrs))
        return node

    def push_pull(self, name: str, seeds: Iterable[str]) -> None:
        """The running node ``name`` pushes/pulls its state with ``seeds`` (a member's seed round for the
        Raft members its gossip does not know, member/gossip.py)."""
        node = self.nodes[name]
        assert node.core is not None and node.running
        self._apply(node, node.core.join(self.now, [self.nodes[s].addr for s in seeds if s != name]))

    def bootstrap(self, names: list[str]) -> None:
        """Start ``names`` as an already converged cluster (every table filled directly, no join traffic).

        For benchmarks at thousands of nodes, where gossiping N**2 joins would dominate the run.
        """
        from ..gossip.membership import Member

        for name in names:
            self.start(name)
        nodes = [self.nodes[name] for name in names]
        for node in nodes:
            core = node.core
            assert core is not None and node.rng is not None
            table = core.table
            for other in nodes:
                if other is not node:
                    member = Member(other.name, other.addr, 1, 0, other.meta, self.now)
                    table.by_name[other.name] = member
                    table.order.append(member)
            table.counts[0] = len(table.by_name)
            node.rng.shuffle(table.order)

    def update_meta(self, name: str, key: str, value: Any) -> None:
        """Set one key of the running node ``name``'s metadata for this life (``GossipHandle.announce``:
        its incarnation bumped, an alive broadcast); a restart starts from ``add_node``'s meta again."""
        node = self.nodes[name]
        assert node.core is not None and node.running
        self._apply(node, node.core.update_meta(self.now, {**node.core.me.meta, key: value}))

    def spread(self, name: str) -> Callable[[], bool]:
        """Whether ``name``'s own latest broadcast has spread (``Swim.spread``, what ``gossip/runner.py``
        waits for before a stopping node's gossip stops)."""
        core = self.nodes[name].core
        assert core is not None
        return core.spread

    def members(self, observer: str) -> dict[str, MemberView]:
        """``observer``'s member views (state, incarnation, meta), as ``GossipHandle.members`` gives them."""
        core = self.nodes[observer].core
        assert core is not None
        return core.members()

    def kill(self, name: str) -> None:
        """Crash the node: it stops sending, receiving and ticking (like kill -9)."""
        node = self.nodes[name]
        node.running = False
        node.backlog = []

    def leave(self, name: str) -> None:
        node = self.nodes[name]
        assert node.core is not None
        self._apply(node, node.core.leave(self.now))

    def pause(self, name: str, seconds: float) -> None:
        """Stall the process: no receive, send or tick for ``seconds``, then it processes its backlog."""
        node = self.nodes[name]
        node.paused_until = self.now + seconds
        self._push(node.paused_until, _RESUME, node, None)

    def at(self, when: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` at simulated time ``when`` (for scripted faults)."""
        self._push(when, _CALL, next(iter(self.nodes.values())), fn)

    # ------------------------------------------------------------------------------------ faults

    def drop(self, a: str, b: str, p: float) -> None:
        self.faults.drop(a, b, p)

    def cut(self, a: str, b: str) -> None:
        self.faults.cut(a, b)

    def isolate(self, n: str) -> None:
        self.faults.isolate(n)

    def partition(self, groups: Iterable[Iterable[str]]) -> None:
        self.faults.partition(groups)

    def set_loss(self, p: float) -> None:
        """Drop every UDP packet with probability p."""
        self.faults.loss = p

    def heal(self) -> None:
        self.faults.heal()

    # ------------------------------------------------------------------------------------ running

    def run_for(self, seconds: float) -> None:
        self.run_until(self.now + seconds)

    def run_until(
        self, until: float, stop: Callable[[], bool] | None = None, check_every_s: float = 0.1
    ) -> bool:
        """Process events up to ``until``; with ``stop``, return True once it holds (checked periodically)."""
        heap = self._heap
        pop = heapq.heappop
        next_check = self.now + check_every_s
        processed = 0
        try:
            while heap and heap[0][0] <= until:
                when, _, kind, node, payload = pop(heap)
                self.now = when
                processed += 1
                if kind == _TICK:
                    if node.tick_at != when:
                        continue
                    node.tick_at = math.inf
                    if not node.running or node.paused_until > when:
                        continue
                    assert node.core is not None
                    self._apply(node, node.core.tick(when))
                elif kind == _DELIVER:
                    if not node.running:
                        continue
                    if node.paused_until > when:
                        node.backlog.append((kind, payload))
                        continue
                    assert node.core is not None
                    self._apply(node, node.core.handle_packet(when, payload[0], payload[1]))
                elif kind == _RESUME:
                    if node.running and node.paused_until <= when:
                        self._resume(node)
                elif kind == _CALL:
                    payload()
                else:
                    self._pushpull_leg(kind, node, payload)
                if stop is not None and when >= next_check:
                    next_check = when + check_every_s
                    if stop():
                        return True
            self.now = max(self.now, until)
            return stop() if stop is not None else False
        finally:
            self.processed_events += processed

    def _resume(self, node: SimNode) -> None:
        core = node.core
        assert core is not None
        backlog, node.backlog = node.backlog, []
        for kind, payload in backlog:
            if kind == _DELIVER:
                self._apply(node, core.handle_packet(self.now, payload[0], payload[1]))
            else:
                self._pushpull_leg(kind, node, payload)
        self._apply(node, core.tick(self.now))

    def _delay(self, src: SimNode, dst: SimNode) -> float:
        extra = self.extra_delay(src.name, dst.name) if self.extra_delay is not None else 0.0
        return self.latency(self.net_rng) + extra

    def _push(self, when: float, kind: int, node: SimNode, payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, kind, node, payload))

    def _apply(self, node: SimNode, out: Output) -> None:
        """Route a core's output: packets into the network, push/pulls as TCP legs, events to the log."""
        now = self.now
        if out.packets:
            faults = self.faults
            by_addr = self._by_addr
            rng = self.net_rng
            latency = self.latency
            for packet in out.packets:
                node.packets_sent += 1
                node.sent_msgs += len(packet.msgs)
                node.sent_bytes += packet.size_bytes
                dst = by_addr.get(packet.addr)
                if dst is None or faults.lost(node.name, dst.name, rng):
                    continue
                delay = latency(rng) + (self.extra_delay(node.name, dst.name) if self.extra_delay else 0.0)
                self._push(now + delay, _DELIVER, dst, (node.addr, packet.msgs))
        for req in out.pushpulls:
            dst = self._by_addr.get(req.addr)
            if dst is None or self.faults.blocked(node.name, dst.name):
                continue
            assert node.core is not None
            states = node.core.local_state()
            node.pushpull_bytes += len(states) * PUSHPULL_ENTRY_BYTES
            self._push(now + self._delay(node, dst), _PP_REQUEST, dst, (node, states, req.join))
        for ping in out.tcp_pings:
            dst = self._by_addr.get(ping.addr)
            if dst is None or self.faults.blocked(node.name, dst.name):
                continue
            self._push(now + self._delay(node, dst), _TCP_PING, dst, (node, ping))
        if out.events:
            for event in out.events:
                self.event_counts[event.kind] = self.event_counts.get(event.kind, 0) + 1
                if event.kind in self._record:
                    self.events.append((now, node.name, event))
                for hook in self.hooks:
                    hook(now, node.name, event)
        core = node.core
        if core is not None and node.running:
            deadline = core.next_deadline()
            if deadline < node.tick_at:
                node.tick_at = deadline
                self._push(deadline, _TICK, node, None)

    def _pushpull_leg(self, kind: int, node: SimNode, payload: Any) -> None:
        if not node.running:
            return
        if node.paused_until > self.now:
            node.backlog.append((kind, payload))
            return
        assert node.core is not None
        if kind == _TCP_PING:  # TCP is reliable: the ack is not subject to random loss
            origin, ping = payload
            if node.core.answers_tcp_ping(ping.target) and not self.faults.blocked(node.name, origin.name):
                self._push(
                    self.now + self._delay(node, origin), _DELIVER, origin, (node.addr, [Ack(ping.seq)])
                )
            return
        if kind == _PP_REQUEST:
            initiator, states, join = payload
            if self.faults.blocked(node.name, initiator.name):
                return
            reply, out = node.core.handle_pushpull(self.now, states, join)
            self._apply(node, out)
            node.pushpull_bytes += len(reply) * PUSHPULL_ENTRY_BYTES
            self._push(self.now + self._delay(node, initiator), _PP_REPLY, initiator, (node, reply))
        else:
            responder, reply_states = payload
            if self.faults.blocked(node.name, responder.name):
                return
            self._apply(node, node.core.merge_remote(self.now, reply_states))

    # ------------------------------------------------------------------------------------ views

    def view(self, observer: str) -> dict[str, str]:
        """``name -> state`` as ``observer`` sees it."""
        core = self.nodes[observer].core
        assert core is not None
        return {m.name: _STATE[m.state] for m in core.table}

    def running_names(self) -> list[str]:
        return [n.name for n in self.nodes.values() if n.running]

    def all_see(self, observers: Iterable[str], subject: str, state: str) -> bool:
        for name in observers:
            core = self.nodes[name].core
            assert core is not None
            member = core.table.get(subject)
            if member is None or _STATE[member.state] != state:
                return False
        return True

    def converged(self, names: Iterable[str] | None = None) -> bool:
        """Every running node sees exactly the running nodes as alive."""
        live = self.running_names() if names is None else list(names)
        expected = len(live)
        cores = [self.nodes[name].core for name in live]
        if any(core is None or core.table.counts[0] != expected for core in cores):
            return False
        for core in cores:
            assert core is not None
            table = core.table
            for other in live:
                member = table.get(other)
                if member is None or member.state != 0:
                    return False
        return True

    def events_of(self, kind: str, subject: str | None = None) -> list[tuple[float, str, MemberEvent]]:
        return [e for e in self.events if e[2].kind == kind and (subject is None or e[2].name == subject)]

    def traffic(self) -> dict[str, float]:
        nodes = list(self.nodes.values())
        return {
            "packets": float(sum(n.packets_sent for n in nodes)),
            "messages": float(sum(n.sent_msgs for n in nodes)),
            "udp_bytes": float(sum(n.sent_bytes for n in nodes)),
            "tcp_bytes": float(sum(n.pushpull_bytes for n in nodes)),
        }


_STATE = ("alive", "suspect", "dead", "left")


def states_of(entries: Iterable[StateEntry]) -> dict[str, int]:
    return {e.name: e.state for e in entries}
