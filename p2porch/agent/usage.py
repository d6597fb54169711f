"""This node's recent task usage: a bounded window of samples per task, and the report peers ask for (pure).

The stats member service feeds :class:`UsageBook` one :class:`~p2porch.agent.cgroups.TaskUsage` per task
and sampling period; ``report(now)`` gives what the ``usage`` join-port request answers: per task the
mean CPU (cores) and memory (bytes) over the window, how much of the window it covers and whether it
covers all of it (the autoscaler counts only those). Usage is raw (cores, bytes): percentages of limits
are computed where the spec is read. Nothing here reads a clock, a file or the engine.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from .cgroups import TaskUsage

__all__ = ["MAX_TASKS", "UsageBook"]

MAX_TASKS = 4096  # tasks one node tracks; beyond it new tasks are counted in ``dropped``, not kept


@dataclass
class _TaskWindow:
    service_id: str
    first_at: float
    samples: deque[tuple[float, float, int]]  # (at, cpu cores, memory bytes)


class UsageBook:
    """Samples of this node's tasks within ``window_s``; bounded in tasks and samples per task.

    Owns only the samples; never decides a replica count."""

    def __init__(self, window_s: float, sample_s: float) -> None:
        self.window_s = window_s
        self.sample_s = sample_s
        self._max_samples = max(2, int(window_s / sample_s) + 2)
        self._tasks: dict[str, _TaskWindow] = {}
        self.dropped = 0

    def seen(self, task_id: str, service_id: str, at: float) -> None:
        """A task's first counter reading (no usage yet): its window starts here."""
        if task_id in self._tasks:
            return
        if len(self._tasks) >= MAX_TASKS:
            self.dropped += 1
            return
        self._tasks[task_id] = _TaskWindow(service_id, at, deque(maxlen=self._max_samples))

    def record(self, task_id: str, at: float, usage: TaskUsage) -> None:
        window = self._tasks.get(task_id)
        if window is not None:
            window.samples.append((at, usage.cpu_cores, usage.memory_bytes))

    def restart(self, task_id: str) -> None:
        """The task's counters went away or back (a restarted container): its window starts over."""
        self._tasks.pop(task_id, None)

    def forget_except(self, task_ids: set[str]) -> None:
        for task_id in set(self._tasks) - task_ids:
            del self._tasks[task_id]

    def report(self, now: float) -> dict[str, Any]:
        """``{"window_s", "sample_s", "tasks": [{task_id, service_id, cpu_cores, memory_bytes, covered_s,
        full, samples}]}``; a task without a sample in the window yet reports no usage."""
        rows = []
        for task_id, window in sorted(self._tasks.items()):
            recent = [
                s for s in window.samples if now - s[0] < self.window_s
            ]  # each covers one period before it
            covered = min(now - window.first_at, self.window_s)
            row: dict[str, Any] = {
                "task_id": task_id,
                "service_id": window.service_id,
                "covered_s": round(max(covered, 0.0), 3),
                # a full window: watched at least window_s and sampled within the last two periods
                "full": covered >= self.window_s
                and bool(recent)
                and now - recent[-1][0] <= 2 * self.sample_s,
                "samples": len(recent),
                "cpu_cores": None,
                "memory_bytes": None,
            }
            if recent:
                row["cpu_cores"] = round(sum(s[1] for s in recent) / len(recent), 5)
                row["memory_bytes"] = int(sum(s[2] for s in recent) / len(recent))
            rows.append(row)
        return {"window_s": self.window_s, "sample_s": self.sample_s, "dropped": self.dropped, "tasks": rows}
