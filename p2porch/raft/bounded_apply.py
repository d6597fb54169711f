"""A tick applies committed entries for at most a time budget, so the heartbeats of the same tick go out
(shell over pysyncobj).

pysyncobj's tick applies *every* committed entry before it sends the leader's appends and heartbeats and
before it reads its sockets. At 100,000 tasks one entry (a leader round's 1,000 task writes, a batch of
agents' reports) takes tens of ms to apply, more when the process shares the CPU, and a new leader or a
follower that fell behind had dozens to apply in one tick: ticks seconds late, heartbeats missing for
more than an election timeout, an election (issue 19, the sixth round in docs/performance.md). This
mixin overrides pysyncobj's private ``__applyLogEntries``: with more than one entry to apply it applies
them one at a time until ``_apply_budget_s`` has passed (at least one per tick), and leaves the rest for
the next tick (the store's pacer ticks again at once while ``last_applied`` is behind the commit index).
One entry at a time: pysyncobj's apply reads its entries through ``__getEntries``, and this mixin caps
that one read at one entry; it never lowers the commit index, which other threads read meanwhile
(``status()``: the API, metrics, lag). Nothing changes what is applied or in which order; it owns no
state beyond the budget, the one-read cap and a counter.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["APPLY_BUDGET_S", "BoundedApply"]

#: wall time a tick spends applying entries before it goes on to send and read (at least one entry)
APPLY_BUDGET_S = 0.05


class BoundedApply:
    """Mixed in before ``SyncObj``; ``_apply_budget_s`` and ``_apply_clock`` may be set by the host."""

    _SyncObj__raftCommitIndex: int
    _SyncObj__raftLastApplied: int
    _apply_budget_s = APPLY_BUDGET_S
    _apply_clock: Callable[[], float] = staticmethod(time.monotonic)
    _apply_cap: int | None = None  # entries the next __getEntries returns at most (set for one apply)
    apply_cut_short = 0  # ticks that left committed entries for the next (benchmarks, tests)

    def _SyncObj__getEntries(  # noqa: N802 (pysyncobj's name)
        self,
        fromIDx: int | None,
        count: int | None = None,
        maxSizeBytes: int | None = None,  # noqa: N803
    ) -> Any:
        cap, self._apply_cap = self._apply_cap, None
        if cap is not None:
            count = cap if count is None else min(count, cap)
        return super()._SyncObj__getEntries(fromIDx, count, maxSizeBytes)  # type: ignore[misc]

    def _SyncObj__applyLogEntries(self) -> bool:  # noqa: N802 (pysyncobj's name)
        apply_all = super()._SyncObj__applyLogEntries  # type: ignore[misc]
        commit = self._SyncObj__raftCommitIndex
        if commit - self._SyncObj__raftLastApplied <= 1:
            return bool(apply_all())
        deadline = self._apply_clock() + self._apply_budget_s
        need_send = False
        try:
            while self._SyncObj__raftLastApplied < commit:
                before = self._SyncObj__raftLastApplied
                self._apply_cap = 1  # pysyncobj's apply reads its entries once: this read gets one
                need_send = bool(apply_all()) or need_send
                if self._SyncObj__raftLastApplied == before:
                    break  # not applied (pysyncobj logged why): as its own loop, go on next tick
                if self._apply_clock() >= deadline and self._SyncObj__raftLastApplied < commit:
                    self.apply_cut_short += 1
                    break
        finally:
            self._apply_cap = None
        return need_send
