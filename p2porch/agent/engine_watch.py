"""Whether this node's Docker engine answers, and what its record should say about it (pure).

:class:`EngineWatch` owns the agent's latest word on its engine: every engine call's outcome is fed to
:meth:`EngineWatch.seen` with the time on a monotonic clock (its decisions: a wall clock step neither confirms
an outage early nor late) and the wall time (what the record shows). The engine counts as unreachable once its
calls have failed for ``confirm_s`` without one succeeding (a single dropped call is not an outage), from the
first of those failures. :meth:`EngineWatch.update` compares that with the node's committed record and answers
the fields to write, only when they differ: one write when the engine goes away, one when it is back, none per
retry. It never writes, never reads a clock, never decides placements (the scheduler reads the record).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model.records import MAX_ENGINE_ERROR

__all__ = ["CONFIRM_S", "EngineMark", "EngineWatch"]

CONFIRM_S = 1.0  # failing this long without an answer: unreachable


@dataclass(frozen=True, slots=True)
class EngineMark:
    """The record's engine fields: ``down_at`` 0 when the engine is reachable."""

    down_at: float = 0.0  # wall time, for display; the leader measures the outage on its own clock
    error: str = ""


class EngineWatch:
    """The agent's view of its engine (see the module docstring)."""

    def __init__(self, confirm_s: float = CONFIRM_S) -> None:
        self.confirm_s = confirm_s
        self.known = False  # no call has answered or failed yet: nothing to say
        self.failing_since: float | None = None  # monotonic
        self.failing_wall = 0.0  # the wall time of the same first failure
        self.error = ""

    def seen(self, ok: bool, error: str, now: float, wall: float | None = None) -> None:
        """One engine call's outcome at ``now`` (monotonic; ``wall``: the wall time then, default ``now``):
        answered (``ok``) or failed with ``error``."""
        self.known = True
        if ok:
            self.failing_since, self.error = None, ""
        elif self.failing_since is None:
            self.failing_since, self.error = now, error[:MAX_ENGINE_ERROR]
            self.failing_wall = now if wall is None else wall

    def mark(self, now: float) -> EngineMark | None:
        """What the record should say at ``now`` (None: nothing known yet)."""
        if not self.known:
            return None
        if self.failing_since is None or now - self.failing_since < self.confirm_s:
            return EngineMark()
        return EngineMark(self.failing_wall, self.error)

    def wake_at(self, now: float) -> float | None:
        """When after ``now`` :meth:`mark` changes without a new outcome (a failure becomes an outage)."""
        if self.failing_since is None or self.failing_since + self.confirm_s <= now:
            return None
        return self.failing_since + self.confirm_s

    def update(self, recorded: EngineMark, now: float) -> EngineMark | None:
        """The mark to write over ``recorded`` (the committed one), or None when it says the same:
        a recorded outage keeps its first time and error while the engine stays away."""
        mark = self.mark(now)
        if mark is None or bool(mark.down_at) == bool(recorded.down_at):
            return None
        return mark
