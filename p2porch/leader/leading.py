"""Park a leader-only loop while this node does not lead Raft (shell).

The scheduler, the autopilot and the re-sealer work only on the leader. They used to wake on every
node every 0.5-2 s to find out that they had nothing to do (issue 19: an idle follower's trio thread
spent a fifth of its time on it). :func:`until_leading` sleeps through a follower's idle time instead:
it returns when the store reports a role change (``ClusterStore.role_event``), still consuming the
committed changes the loop subscribed to (a subscriber that falls behind is cut off), with a long
fallback in case a role change went unseen. A burst of commits (joins, task reports) wakes it at most
once per ``FOLLOWER_COALESCE_S``: after a wake it waits on the role change alone for that long, and the
commits meanwhile pile up in its channel and are drained at once (three such loops on every follower
woke per commit before, each wake a nursery of two tasks: ~80 us of CPU, issue 19 joins). It never
decides anything.
"""

from __future__ import annotations

from typing import Any

import trio

from ..context import ClusterStore
from ..supervisor import drain, wait_any

__all__ = ["FOLLOWER_COALESCE_S", "FOLLOWER_FALLBACK_S", "until_leading"]

FOLLOWER_FALLBACK_S = 30.0
FOLLOWER_COALESCE_S = 0.5  # after a commit woke it, only a role change wakes it for this long


async def until_leading(store: ClusterStore, changes: trio.MemoryReceiveChannel[Any]) -> bool:
    """Return once this node leads: False at once if it already does, True after waiting for it."""
    waited = False
    while True:
        event = store.role_event()  # taken before the status is read: a change after it sets it
        if store.status().is_leader:
            return waited
        waited = True
        with trio.move_on_after(FOLLOWER_FALLBACK_S) as fallback:
            await wait_any(event.wait, changes.receive)
        if not (fallback.cancelled_caught or event.is_set()):  # a commit woke it: let its burst queue up
            with trio.move_on_after(FOLLOWER_COALESCE_S):
                await event.wait()
        drain(changes)
