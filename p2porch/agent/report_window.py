"""When an agent delivers its queued task reports (pure: no clock, no I/O; the worker passes ``now``).

The agent queues reports newest-per-task and delivers them in one ``ReportTaskStates`` command per
batch (``worker.NodeAgent``). At 1,000 nodes most batches held one or two reports (1.3-1.4 per
command, docs/performance.md, "The eleventh round"): a node hears of its tasks one round at a time and
reports each twice, STARTING when its start begins and RUNNING (or FAILED) when the engine answers,
each alone. :class:`ReportWindow` decides how long a batch stays open after its first report:

- ``settle_s`` (the agent's ``flush_interval_s``, 0.1 s) while the batch holds any *settled* report
  (RUNNING, a terminal state: what the cluster acts on), as before;
- up to ``hold_s`` (1 s) while every report in it is *transitional* (STARTING: a container is being
  started): the start's outcome usually arrives within it and replaces the report (newest per task wins),
  so one command carries the task's outcome, and reports of other tasks started meanwhile join it;
- due at once when it holds ``max_batch`` reports.

So a STARTING report waits at most ``hold_s``, any other at most ``settle_s`` (plus the delivery of the
batch in flight before it). Owns nothing but these three numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model import TaskState

#: states a report may be held in, waiting for the report that follows them
TRANSITIONAL_STATES = frozenset({TaskState.STARTING})
SETTLE_S = 0.1
HOLD_S = 1.0
MAX_BATCH = 64


def settled(state: TaskState) -> bool:
    """Whether a report of ``state`` closes its batch after ``settle_s`` (not a transitional state)."""
    return state not in TRANSITIONAL_STATES


@dataclass(frozen=True)
class ReportWindow:
    """How long a batch of reports stays open (see the module docstring)."""

    settle_s: float = SETTLE_S
    hold_s: float = HOLD_S
    max_batch: int = MAX_BATCH

    def __post_init__(self) -> None:
        if self.settle_s < 0 or self.hold_s < 0 or self.max_batch < 1:
            raise ValueError("a report window needs settle_s >= 0, hold_s >= 0 and max_batch >= 1")

    def due_at(self, opened_at: float, queued: int, any_settled: bool) -> float:
        """When the batch opened at ``opened_at`` with ``queued`` reports is delivered; ``any_settled``:
        it holds a settled report. Never later than ``opened_at + max(settle_s, hold_s)``."""
        if queued >= self.max_batch:
            return opened_at
        if any_settled:
            return opened_at + self.settle_s
        return opened_at + max(self.settle_s, self.hold_s)
