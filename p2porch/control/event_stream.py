"""One reader's ``/events`` stream over this node's event feed (shell).

The ``events`` member service (:mod:`p2porch.control.event_feed`) describes each change once; a stream
subscribes to its feed: with ``since``/``until`` it first gets the kept events between them, then the
live ones, and ends at ``until``, as ``docker events`` does. It never describes a change and never polls.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from ..clock import Clock
from ..context import ClusterStore
from .event_feed import MAX_BACKLOG, EventFeed

__all__ = ["open_event_stream"]

_ENDED = object()  # what the stream received when the feed ended or cut it off


@asynccontextmanager
async def open_event_stream(
    feed: EventFeed,
    store: ClusterStore,
    clock: Clock,
    since: float | None = None,
    until: float | None = None,
) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
    """Cluster events from now on: node/service/task/secret/network changes as committed here, and
    leader changes as this node sees them. With ``since`` or ``until`` (epoch seconds), first the kept
    events between them, then live ones until ``until``: the stream ends there (at once when it is
    past). Without either, a change committed before the request is not shown."""
    replay = since is not None or until is not None
    start = store.snapshot().version  # the feed may not have described every change up to it yet
    with feed.subscribe(since, until) as subscription:

        async def stream() -> AsyncIterator[dict[str, Any]]:
            for past in subscription.past:
                yield past
            end = math.inf if until is None else until
            while clock.now() < end:
                # never yield inside the cancel scope (trio#638): receive first, yield after
                item: Any = None
                with trio.move_on_after(max(0.0, end - clock.now())):  # the clock may have passed end
                    try:
                        item = await subscription.live.receive()
                    except trio.EndOfChannel:
                        item = _ENDED
                if item is _ENDED:
                    if subscription.cut_off:
                        yield {
                            "type": "stream",
                            "action": "overflow",
                            "at": clock.now(),
                            "message": f"more than {MAX_BACKLOG} events behind; reconnect to resume",
                        }
                    return
                if item is None:  # until came
                    continue
                version, event = item
                if not replay and version is not None and version <= start:
                    continue
                if event["at"] <= end:
                    yield event

        yield stream()
