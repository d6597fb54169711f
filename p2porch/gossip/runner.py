"""Gossip runner (shell): drives the pure SWIM core with trio time, the transport and the daemon's callback.

Owns the timer loop, the join retries, push/pull tasks and the :class:`GossipHandle` the daemon uses. It
never decides membership itself (the core does) and never dies on bad remote input or a failing callback.

Usage from the daemon::

    handle = await nursery.start(serve_gossip, config, keyring, NodeMeta(...), ["10.0.0.1:7946"], on_event)
    handle.members()  # {name: MemberView(name, addr, state, incarnation, meta)}
    await handle.leave()
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import trio

from ..buckets import BucketCounts
from ..errors import ConfigError
from .config import GossipConfig, format_addr, parse_addr
from .keyring import Keyring
from .messages import Ack, MemberEvent, Message, NodeMeta, StateEntry, fit_meta
from .swim import MemberView, Output, Swim
from .transport import Transport

log = logging.getLogger(__name__)

EventCallback = Callable[[MemberEvent], None]


class GossipHandle:
    """The daemon's view of a running gossip node: members, metrics, meta updates, leave."""

    def __init__(self, core: Swim, runner: _Runner) -> None:
        self._core = core
        self._runner = runner
        self.metrics: dict[str, int] = runner.metrics
        self._held: dict[str, Any] = {}  # own meta keys held back for the next update (``set_own_meta``)

    @property
    def core_counters(self) -> dict[str, int]:
        """The SWIM core's counters: suspicions, refutations, probe acks, conflicts..."""
        return self._core.counters

    @property
    def probe_rtt(self) -> BucketCounts:
        """Round trips of the direct probes answered (``core_counters["probe_acks"]`` of them), bucketed."""
        return self._core.probe_rtt

    @property
    def name(self) -> str:
        return self._core.name

    @property
    def addr(self) -> str:
        """``host:port`` this node gossips on (the bound port when config.port was 0)."""
        return self._core.addr

    @property
    def incarnation(self) -> int:
        return self._core.incarnation

    def members(self) -> dict[str, MemberView]:
        """``name -> MemberView(name, addr, state, incarnation, meta)``; state is alive/suspect/dead/left."""
        return self._core.members()

    def dead_names(self) -> set[str]:
        """Names of the members in state dead (no member list built while none is)."""
        return self._core.dead_names()

    def gone_names(self) -> set[str]:
        """Names of the members in state dead or left."""
        return self._core.gone_names()

    def health_score(self) -> int:
        """Lifeguard local health (0 = healthy, up to awareness_max_multiplier - 1)."""
        return self._core.awareness.score

    def update_meta(self, meta: NodeMeta | Mapping[str, Any]) -> None:
        """Replace this node's metadata; peers see an ``updated`` event."""
        self._runner.apply(self._core.update_meta(trio.current_time(), self._runner.fitted(meta)))

    def set_own_meta(self, key: str, value: Any, *, hold_s: float = 0.0) -> None:
        """Set one key of this node's metadata (the rest kept) and tell the peers. ``hold_s`` > 0: a value
        no one waits for (the engine's version), held back until the next update carries it, ``hold_s``
        at most: one alive message spreads over the cluster instead of two (issue 19)."""
        if hold_s > 0:
            if not self._held:
                self._runner.start_soon(self._send_held_after, hold_s)
            self._held[key] = value
            return
        me = self.members().get(self.name)
        meta = dict(me.meta) if me is not None else {}
        meta.update(self._held)  # carried now
        self._held.clear()
        meta[key] = value
        self.update_meta(meta)

    async def _send_held_after(self, hold_s: float) -> None:
        await trio.sleep(hold_s)
        if self._held:  # no update carried them: they go alone
            key, value = self._held.popitem()
            self.set_own_meta(key, value)

    async def join(self, seeds: list[str]) -> int:
        """Push/pull with each seed now; returns how many answered."""
        return await self._runner.join_once(seeds)

    async def leave(self) -> None:
        """Broadcast that we leave, give it ``leave_propagate_s`` to spread, then stop serving."""
        await self._runner.leave()

    async def announce(self, key: str, value: Any) -> None:
        """Set one key of this node's metadata and give it ``leave_propagate_s`` at most to spread (a
        stopping daemon's last word: ``member/gossip.announce_restart``); keeps serving."""
        self.set_own_meta(key, value)
        await self._runner.spread()

    def stop(self) -> None:
        """Stop serving at once (like a crash, without a leave message)."""
        self._runner.cancel_scope.cancel()


class _Runner:
    def __init__(self, config: GossipConfig, keyring: Keyring, on_event: EventCallback) -> None:
        self.config = config
        self.on_event = on_event
        self.metrics: dict[str, int] = {
            "event_callback_errors": 0,
            "timer_wakeups": 0,
            "timer_wakeups_empty": 0,
            "meta_keys_skipped": 0,  # optional meta keys left out for want of room (fit_meta)
        }
        self._skipped_logged: set[str] = set()
        self.transport = Transport(keyring, self.metrics, config.tcp_timeout_s, name=config.node_name)
        self.core: Swim | None = None
        self.nursery: trio.Nursery | None = None
        self.cancel_scope = trio.CancelScope()
        # the timer task's sleep while it waits: its deadline is kept at the core's next timer, earlier or
        # later (a timer the core dropped, an answered probe's timeout, no longer wakes the node)
        self._sleep: trio.CancelScope | None = None
        self._send_queue: list[tuple[str, list[Message]]] = []
        self._send_ready = trio.Event()

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``fn(*args)`` beside the node's other tasks (stopped with them; none once they stopped)."""
        assert self.nursery is not None
        try:
            self.nursery.start_soon(fn, *args)
        except RuntimeError:  # the nursery closed: this node's gossip stopped, nothing more goes out
            log.debug("gossip stopped: %s not started", getattr(fn, "__name__", fn))

    def fitted(self, meta: NodeMeta | Mapping[str, Any]) -> dict[str, Any]:
        """``meta`` as sent: an optional key with no room left is dropped, counted and logged once."""
        wire_meta, skipped = fit_meta(meta.wire_fields() if isinstance(meta, NodeMeta) else meta)
        for key in skipped:
            self.metrics["meta_keys_skipped"] += 1
            if key not in self._skipped_logged:
                self._skipped_logged.add(key)
                log.warning("gossip: meta key %r left out: the node's labels leave it no room", key)
        return wire_meta

    def apply(self, out: Output) -> None:
        """Route core output: queue packets, start push/pulls, deliver events, re-arm the timer."""
        assert self.nursery is not None
        if out.packets:
            send_now = self.transport.send_packet_nowait
            later = [(p.addr, p.msgs) for p in out.packets if not send_now(p.addr, p.msgs)]
            if later:  # a host name to resolve or a full buffer: the sender task awaits them
                self._send_queue.extend(later)
                self._send_ready.set()
        for req in out.pushpulls:
            self.nursery.start_soon(self._pushpull, req.addr, req.join)
        for ping in out.tcp_pings:
            self.nursery.start_soon(self._tcp_ping, ping.addr, ping.seq, ping.target)
        for event in out.events:
            try:
                self.on_event(event)
            except Exception:
                self.metrics["event_callback_errors"] += 1
                log.exception("gossip event callback failed for %s", event)
        self._rearm()

    def _rearm(self) -> None:
        """Move the sleeping timer task's deadline to the core's next timer (no task switch: trio wakes it
        then, or at once if that time has passed)."""
        sleep, core = self._sleep, self.core
        if sleep is not None and core is not None and sleep.deadline != (deadline := core.next_deadline()):
            sleep.deadline = deadline

    async def sender(self) -> None:
        while True:
            await self._send_ready.wait()
            self._send_ready = trio.Event()
            queue, self._send_queue = self._send_queue, []
            for addr, msgs in queue:
                await self.transport.send_packet(addr, msgs)

    async def timers(self) -> None:
        """Run the core's timers: sleep until the next one (``apply`` moves the deadline), run what is due.
        Every wakeup has a timer due; ``timer_wakeups`` counts them (``timer_wakeups_empty``: none due)."""
        assert self.core is not None
        core = self.core
        while True:
            deadline = core.next_deadline()
            if deadline > trio.current_time():
                with trio.CancelScope(deadline=deadline) as sleep:
                    self._sleep = sleep
                    try:
                        await trio.sleep_forever()
                    finally:
                        self._sleep = None
                self.metrics["timer_wakeups"] += 1
                if core.next_deadline() > trio.current_time():
                    self.metrics["timer_wakeups_empty"] += 1
                continue
            self.apply(core.tick(trio.current_time()))  # (not asleep: apply() leaves the deadline alone)

    async def on_packet(self, src: str, msgs: list[Message]) -> None:
        assert self.core is not None
        self.apply(self.core.handle_packet(trio.current_time(), src, msgs))

    def on_pushpull(self, join: bool, states: list[StateEntry]) -> list[StateEntry]:
        assert self.core is not None
        reply, out = self.core.handle_pushpull(trio.current_time(), states, join)
        self.apply(out)
        return reply

    async def _tcp_ping(self, addr: str, seq: int, target: str) -> None:
        assert self.core is not None
        # the probe's deadline is the rest of the probe interval
        timeout_s = self.core.awareness.scale(self.config.probe_interval_s - self.config.probe_timeout_s)
        if await self.transport.tcp_ping(addr, seq, target, timeout_s):
            self.apply(self.core.handle_packet(trio.current_time(), addr, [Ack(seq)]))

    async def _pushpull(self, addr: str, join: bool) -> bool:
        assert self.core is not None
        remote = await self.transport.pushpull(addr, join, self.core.local_state())
        if remote is None:
            return False
        self.apply(self.core.merge_remote(trio.current_time(), remote))
        return True

    async def join_once(self, seeds: list[str]) -> int:
        assert self.core is not None
        answered = 0
        targets = [addr for addr in seeds if addr != self.core.addr]
        for addr in targets:
            if await self._pushpull(addr, True):
                answered += 1
        return answered

    async def join_until_success(self, seeds: list[str]) -> None:
        while seeds and not await self.join_once(seeds):
            log.info("gossip join through %s failed; retrying", ", ".join(seeds))
            await trio.sleep(self.config.join_retry_interval_s)

    async def leave(self) -> None:
        assert self.core is not None
        self.apply(self.core.leave(trio.current_time()))
        await self.spread()
        self.cancel_scope.cancel()

    async def spread(self) -> None:
        """Wait until this node's own latest broadcast (its leave, its alive) went to ``gossip_nodes``
        peers or left the queue, ``leave_propagate_s`` at most."""
        assert self.core is not None
        with trio.move_on_after(self.config.leave_propagate_s):
            while not self.core.spread():
                await trio.sleep(self.config.gossip_interval_s / 4)
        await trio.sleep(0.01)  # let the sender flush the last packets


async def serve_gossip(
    config: GossipConfig,
    keyring: Keyring,
    local_meta: NodeMeta | Mapping[str, Any],
    seeds: list[str],
    on_event: EventCallback,
    *,
    rng: random.Random | None = None,
    task_status: trio.TaskStatus[GossipHandle] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Bind ``config.bind_host:config.port`` (UDP + TCP; ``advertise_host:advertise_port`` is what peers
    learn), start SWIM, join ``seeds`` (``host:port``,
    retried until one answers) and serve until cancelled, ``handle.stop()`` or ``await handle.leave()``.

    ``task_status.started`` delivers the :class:`GossipHandle` once the sockets are bound, so bind errors
    surface in ``nursery.start``. ``on_event`` is called synchronously with every :class:`MemberEvent`.
    """
    config.validate()
    if not config.node_name:
        raise ConfigError("gossip.node_name must be set", field="gossip.node_name")
    runner = _Runner(config, keyring, on_event)
    bound = await runner.transport.bind(config.bind_host or config.advertise_host, config.port)
    addr = format_addr(config.advertise_host, config.advertise_port or parse_addr(bound)[1])
    runner.transport.addr = addr  # what the envelope advertises: the NAT's forward, not the local socket
    wire_meta = runner.fitted(local_meta)
    core = Swim(config, config.node_name, addr, wire_meta, rng or random.Random(), trio.current_time())
    runner.core = core
    handle = GossipHandle(core, runner)
    try:
        with runner.cancel_scope:
            async with trio.open_nursery() as nursery:
                runner.nursery = nursery
                nursery.start_soon(runner.sender)
                nursery.start_soon(runner.transport.serve_udp, runner.on_packet)
                nursery.start_soon(runner.transport.serve_tcp, runner.on_pushpull, core.answers_tcp_ping)
                nursery.start_soon(runner.timers)
                task_status.started(handle)
                if seeds:
                    nursery.start_soon(runner.join_until_success, list(seeds))
    finally:
        runner.transport.close()
