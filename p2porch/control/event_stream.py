"""The ``/events`` stream: committed changes described as events, plus leader changes (shell).

Reads the store's change stream; the descriptions come from :mod:`p2porch.control.events` (pure). The
``events`` member service keeps this node's recent events (``EventHistory``, on the board) so that a
stream with ``since``/``until`` replays them before it goes on live, as ``docker events`` does.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from ..clock import Clock
from ..context import ClusterStore, MemberContext
from ..raft.state import ClusterState
from .events import EventHistory, describe_change, leader_event

__all__ = ["LEADER_POLL_S", "ChangeDescriber", "open_event_stream", "serve_event_history"]

LEADER_POLL_S = 0.5  # how often the event stream checks for a leader change
_CUT_OFF = object()  # what the stream received when the store cut it off
MAX_BACKLOG = 10_000  # committed changes a slow reader may fall behind before its stream is ended
REMOVED_NAMES_KEPT = 256  # names of removed services kept per stream, to name their stopping tasks
CATCH_UP_S = 2.0  # a replaying stream waits at most this long for the history to reach its start


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


async def serve_event_history(
    ctx: MemberContext, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Member service: describe every committed change into ``ctx.board.event_history`` while this
    member runs. Wakes only on a change; cut off by the store (more than ``MAX_BACKLOG`` behind), it
    subscribes again and goes on from the state then."""
    history = ctx.board.event_history = EventHistory()
    task_status.started()
    while True:
        async with ctx.store.subscribe(max_buffer=MAX_BACKLOG) as changes:
            describer = ChangeDescriber(ctx.store.snapshot())
            history.applied = ctx.store.snapshot().version
            async for change in changes:  # ends when the store cut it off: subscribe again
                state = ctx.store.snapshot()
                event = describer.describe(change, state, ctx.clock.now())
                if event is not None:
                    history.record(change.version, event)
                if changes.statistics().current_buffer_used == 0:  # a command's changes come at once
                    history.applied = state.version


@asynccontextmanager
async def open_event_stream(
    store: ClusterStore,
    clock: Clock,
    history: EventHistory | None = None,
    since: float | None = None,
    until: float | None = None,
) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
    """Cluster events from now on: node/service/task changes as committed here, and leader changes.
    With ``since`` or ``until`` (epoch seconds), first the kept events between them (``history``), then
    live ones until ``until``: the stream ends there (at once when it is past)."""
    async with store.subscribe(max_buffer=MAX_BACKLOG) as changes:

        async def stream() -> AsyncIterator[dict[str, Any]]:
            start = store.snapshot()
            describer = ChangeDescriber(start)
            leader = store.status().leader
            if history is not None and (since is not None or until is not None):
                with trio.move_on_after(CATCH_UP_S):  # the history service describes the same changes
                    while history.applied < start.version:
                        await trio.sleep(0.01)
                for past in history.between(since, until, start.version):
                    yield past
            end = math.inf if until is None else until
            while clock.now() < end:
                # never yield inside the cancel scope (trio#638): receive first, describe and yield after
                change: Any = None
                with trio.move_on_after(max(0.0, min(LEADER_POLL_S, end - clock.now()))):
                    try:
                        change = await changes.receive()
                    except trio.EndOfChannel:  # fell more than MAX_BACKLOG behind: the store cut us off
                        change = _CUT_OFF
                if change is _CUT_OFF:
                    yield {
                        "type": "stream",
                        "action": "overflow",
                        "at": clock.now(),
                        "message": f"more than {MAX_BACKLOG} changes behind; reconnect to resume",
                    }
                    return
                if change is not None:
                    event = describer.describe(change, store.snapshot(), clock.now())
                    if event is not None and event["at"] <= end:
                        yield event
                current = store.status().leader
                if current != leader:
                    leader = current
                    if clock.now() <= end:
                        yield leader_event(leader, clock.now())

        yield stream()
