"""Member service: writes this node's engine reachability into its Raft record (shell).

:class:`EngineReporter` owns the node's :class:`~p2porch.agent.engine_watch.EngineWatch` (fed by the agent's
engine calls through :meth:`EngineReporter.seen`, on the context's monotonic clock with the wall time for the
record) and one writer loop: whenever the watch's verdict differs from the committed record it writes
``engine_down_at``/``engine_error`` with one ``UpdateNode``, at most once per ``MIN_GAP_S`` (a flapping engine
is not Raft churn). It never decides placements.
"""

from __future__ import annotations

import logging

import trio

from ..agent.engine_watch import EngineMark, EngineWatch
from ..context import MemberContext
from ..raft import commands as C

log = logging.getLogger(__name__)

__all__ = ["EngineReporter"]

MIN_GAP_S = 1.0  # between two writes of the record's engine fields
RETRY_S = 2.0  # after a failed write


class EngineReporter:
    """See the module docstring."""

    def __init__(self, ctx: MemberContext, watch: EngineWatch | None = None) -> None:
        self.ctx = ctx
        self.watch = watch or EngineWatch()
        self._changed = trio.Event()

    def seen(self, ok: bool, error: str = "") -> None:
        """One engine call answered (``ok``) or failed with ``error``."""
        now = self.ctx.clock.monotonic()
        was = self.watch.mark(now)
        self.watch.seen(ok, error, now, self.ctx.clock.now())
        if self.watch.mark(now) != was or self.watch.wake_at(now) is not None:
            self._changed.set()

    async def run(self) -> None:
        """Write the watch's verdict whenever the record says otherwise; never returns."""
        while True:
            now = self.ctx.clock.monotonic()
            node = self.ctx.store.snapshot().nodes.get(self.ctx.local.node_id)
            mark = None
            if node is not None:
                mark = self.watch.update(EngineMark(node.engine_down_at, node.engine_error), now)
            if mark is not None and node is not None:
                command = C.UpdateNode(
                    at=self.ctx.clock.now(),
                    node_id=node.node_id,
                    engine_down_at=mark.down_at,
                    engine_error=mark.error,
                )
                try:
                    await self.ctx.write(command.encode())
                    log.warning(
                        "engine %s",
                        f"unreachable: {mark.error}" if mark.down_at else "reachable again",
                    )
                except Exception as exc:  # no quorum, a timeout: the next pass tries again
                    log.warning("cannot record the engine's state: %s", exc)
                    await trio.sleep(RETRY_S)
                    continue
                await trio.sleep(MIN_GAP_S)
                continue
            wake = self.watch.wake_at(now)
            with trio.move_on_after(wake - now + 0.05 if wake is not None else 5.0):
                await self._changed.wait()
            self._changed = trio.Event()
