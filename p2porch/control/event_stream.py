"""The ``/events`` stream: committed changes described as events, plus leader changes (shell).

Reads the store's change stream; the descriptions come from :mod:`p2porch.control.events` (pure).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from ..clock import Clock
from ..context import ClusterStore
from .events import describe_change, leader_event

__all__ = ["LEADER_POLL_S", "open_event_stream"]

LEADER_POLL_S = 0.5  # how often the event stream checks for a leader change
_CUT_OFF = object()  # what the stream received when the store cut it off
MAX_BACKLOG = 10_000  # committed changes a slow reader may fall behind before its stream is ended
REMOVED_NAMES_KEPT = 256  # names of removed services kept per stream, to name their stopping tasks


def remember_removed(names: dict[str, str], change: Any, previous: Any) -> None:
    """After a service delete, keep its name (``names``: service id -> name, oldest first, at most
    ``REMOVED_NAMES_KEPT``): its tasks stop after it is gone and their events still name it."""
    if change.kind != "service" or change.op != "delete" or previous is None:
        return
    names.pop(change.key, None)
    names[change.key] = previous.name
    while len(names) > REMOVED_NAMES_KEPT:
        del names[next(iter(names))]


@asynccontextmanager
async def open_event_stream(
    store: ClusterStore, clock: Clock
) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
    """Cluster events from now on: node/service/task changes as committed here, and leader changes."""
    async with store.subscribe(max_buffer=MAX_BACKLOG) as changes:

        async def stream() -> AsyncIterator[dict[str, Any]]:
            start = store.snapshot()
            last: dict[tuple[str, str], Any] = {("node", k): r for k, r in start.nodes.items()}
            last.update({("service", k): r for k, r in start.services.items()})
            last.update({("task", k): r for k, r in start.tasks.items()})
            last.update({("network", k): r for k, r in start.networks.items()})
            leader = store.status().leader
            removed: dict[str, str] = {}
            while True:
                # never yield inside the cancel scope (trio#638): receive first, describe and yield after
                change: Any = None
                with trio.move_on_after(LEADER_POLL_S):
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
                    key = (change.kind, change.key)
                    before = last.get(key)
                    event = describe_change(change, before, store.snapshot(), clock.now(), removed)
                    remember_removed(removed, change, before)
                    last[key] = change.record
                    if event is not None:
                        yield event
                current = store.status().leader
                if current != leader:
                    leader = current
                    yield leader_event(leader, clock.now())

        yield stream()
