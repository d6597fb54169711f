"""This node's one source of cluster events: the ``events`` member service and its feed (shell).

``serve_event_history`` describes each committed change once (``ChangeDescriber``, over the pure
:mod:`p2porch.control.events`) and each change of the leader this node sees, keeps them in the daemon's
``EventHistory`` and hands each to the ``/events`` streams subscribed to the ``EventFeed`` it puts on
the board (:mod:`p2porch.control.event_stream` reads them).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import trio

from ..context import MemberContext
from ..raft.state import ClusterState
from .events import EventHistory, describe_change, leader_event

__all__ = ["MAX_BACKLOG", "ChangeDescriber", "EventFeed", "Subscription", "serve_event_history"]

MAX_BACKLOG = 10_000  # events a reader (changes this service) may fall behind before it is cut off
REMOVED_NAMES_KEPT = 256  # names of removed services kept, to name their stopping tasks

Live = tuple[int | None, dict[str, Any]]  # (the state version of its change, None for a leader change; event)


def remember_removed(names: dict[str, str], change: Any, previous: Any) -> None:
    """After a service delete, keep its name (``names``: service id -> name, oldest first, at most
    ``REMOVED_NAMES_KEPT``): its tasks stop after it is gone and their events still name it."""
    if change.kind != "service" or change.op != "delete" or previous is None:
        return
    names.pop(change.key, None)
    names[change.key] = previous.name
    while len(names) > REMOVED_NAMES_KEPT:
        del names[next(iter(names))]


class ChangeDescriber:
    """Describes one subscription's changes, in order, from the state it started at: owns each object's
    last record (what a change replaces) and removed services' names. Never reads the store itself."""

    def __init__(self, start: ClusterState) -> None:
        self.last: dict[tuple[str, str], Any] = {("node", k): r for k, r in start.nodes.items()}
        self.last.update({("service", k): r for k, r in start.services.items()})
        self.last.update({("task", k): r for k, r in start.tasks.items()})
        self.last.update({("network", k): r for k, r in start.networks.items()})
        self.removed: dict[str, str] = {}

    def describe(self, change: Any, state: ClusterState, at: float) -> dict[str, Any] | None:
        key = (change.kind, change.key)
        before = self.last.get(key)
        event = describe_change(change, before, state, at, self.removed)
        remember_removed(self.removed, change, before)
        self.last[key] = change.record
        return event


@dataclass(eq=False)
class Subscription:
    """One stream's share of the feed: the kept events of its window (``past``), then the live ones
    (``live``, ending when the feed stops or cuts it off: ``cut_off`` says which)."""

    past: list[dict[str, Any]]
    live: trio.MemoryReceiveChannel[Live]
    cut_off: bool = False


class EventFeed:
    """Publishes each event once: to the history and to every live subscription. Owns the subscriptions'
    send sides; one more than ``MAX_BACKLOG`` events behind is cut off, never waited for. Never
    describes a change or reads the store."""

    def __init__(self, history: EventHistory) -> None:
        self.history = history
        self._live: dict[Subscription, trio.MemorySendChannel[Live]] = {}

    def publish(self, version: int | None, event: dict[str, Any]) -> None:
        self.history.record(event)
        for subscription, send in list(self._live.items()):
            try:
                send.send_nowait((version, event))
            except trio.WouldBlock:
                self._cut(subscription)

    def cut_off_all(self) -> None:
        """The subscriptions missed events (this service fell behind the store): end them, told."""
        for subscription in list(self._live):
            self._cut(subscription)

    def close(self) -> None:
        """The member run ends: the live streams end (not cut off)."""
        for send in self._live.values():
            send.close()
        self._live.clear()

    def _cut(self, subscription: Subscription) -> None:
        subscription.cut_off = True
        self._live.pop(subscription).close()

    @contextmanager
    def subscribe(self, since: float | None = None, until: float | None = None) -> Iterator[Subscription]:
        """The kept events between ``since`` and ``until`` (none unless one is given), then every event
        published from now on: nothing is described twice, nothing falls between the two (one trio
        thread; no wait)."""
        send, receive = trio.open_memory_channel[Live](MAX_BACKLOG)
        replay = since is not None or until is not None
        subscription = Subscription(self.history.between(since, until) if replay else [], receive)
        self._live[subscription] = send
        try:
            yield subscription
        finally:
            if self._live.pop(subscription, None) is not None:
                send.close()
            receive.close()


async def serve_event_history(
    ctx: MemberContext,
    history: EventHistory | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Member service: describe every committed change and every leader change into the feed on
    ``ctx.board.event_feed`` while this member runs, kept in ``history`` (the daemon's, which outlives a
    member run; a new one without it). Wakes only on a change or the store's leader event."""
    feed = EventFeed(history if history is not None else EventHistory())
    ctx.board.event_feed = feed
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_watch_leader, ctx, feed)
            task_status.started()
            await _describe_changes(ctx, feed)
    finally:
        ctx.board.event_feed = None
        feed.close()


async def _describe_changes(ctx: MemberContext, feed: EventFeed) -> None:
    """Each committed change, described once; cut off by the store (more than ``MAX_BACKLOG`` behind),
    it subscribes again from the state then, and the streams, which missed changes, are cut off."""
    while True:
        async with ctx.store.subscribe(max_buffer=MAX_BACKLOG) as changes:
            describer = ChangeDescriber(ctx.store.snapshot())
            async for change in changes:
                state = ctx.store.snapshot()
                feed.history.of_cluster(state.cluster_id)
                event = describer.describe(change, state, ctx.clock.now())
                if event is not None:
                    feed.publish(change.version, event)
        feed.cut_off_all()


async def _watch_leader(ctx: MemberContext, feed: EventFeed) -> None:
    """Each change of the leader this node sees (another, or none), from the one it saw at the start."""
    leader = ctx.store.status().leader
    while True:
        changed = ctx.store.leader_event()  # taken before the status is read: no change is missed
        current = ctx.store.status().leader
        if current != leader:
            leader = current
            feed.publish(None, leader_event(leader, ctx.clock.now()))
        await changed.wait()
