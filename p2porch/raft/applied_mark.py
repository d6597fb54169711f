"""The apply index whose state the trio side serves (shell between the Raft thread and trio).

pysyncobj's ``raftLastApplied`` says what the Raft thread applied; the trio side serves a state only
once its ``_deliver`` callback ran. The Raft thread posts the index it applied after the states of that
tick (``run_sync_soon`` keeps their order), so when ``delivered`` reaches N, ``store.snapshot()`` holds
every entry up to N. The write barrier waits on it (``read_rounds.plan_write``: a leader whose apply was
cut short by ``BoundedApply``). Owns the two counters and one event; never applies or reads entries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

__all__ = ["AppliedMark"]


class AppliedMark:
    """``post`` on the Raft thread, ``delivered`` and ``wait_for`` on the trio thread."""

    def __init__(self) -> None:
        self.delivered = 0  # trio side: the snapshot holds every entry up to this index
        self._posted = -1  # Raft thread: the last index handed to trio
        self._moved = trio.Event()

    def post(self, applied: int, hand_over: Callable[..., Any]) -> None:
        """Raft thread, after a tick's apply: hand ``applied`` to trio when it changed."""
        if applied != self._posted:
            self._posted = applied
            hand_over(self._note, applied)

    def _note(self, applied: int) -> None:
        self.delivered = applied  # (a loaded dump may move it either way: the state went with it)
        event, self._moved = self._moved, trio.Event()
        event.set()

    async def wait_for(self, index: int, timeout_s: float) -> bool:
        """Whether the delivered index reached ``index`` within ``timeout_s``."""
        with trio.move_on_after(max(timeout_s, 0.0)):
            while self.delivered < index:
                await self._moved.wait()
        return self.delivered >= index
