"""When to act on a burst of changes (pure; the caller passes ``now`` from its clock).

A member reacts to committed changes by reprogramming kernel state (overlay routes, FDB, the VXLAN
allow-list). During a burst (a formation commits several changes per joining node, each reaching every
member) acting on each change costs O(changes x members); acting once the burst paused, or at the latest
``max_delay_s`` after its first change, costs one pass per burst and delays no change by more than
``max_delay_s``. It never sleeps or reads a clock itself.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Debounce"]


@dataclass
class Debounce:
    """Pending changes: due ``quiet_s`` after the last one, never later than ``max_delay_s`` after the
    first."""

    quiet_s: float
    max_delay_s: float
    first: float | None = None  # when the oldest change not acted on yet came
    last: float | None = None  # when the newest one came

    def __post_init__(self) -> None:
        if not 0 <= self.quiet_s <= self.max_delay_s:
            raise ValueError("need 0 <= quiet_s <= max_delay_s")

    def change(self, now: float) -> None:
        """A change came at ``now``."""
        if self.first is None:
            self.first = now
        self.last = now

    def due_at(self) -> float | None:
        """When the pending changes should be acted on (None: nothing pending)."""
        if self.first is None or self.last is None:
            return None
        return min(self.first + self.max_delay_s, self.last + self.quiet_s)

    def take(self, now: float) -> bool:
        """True (and nothing pending any more) when the pending changes are due at ``now``."""
        due = self.due_at()
        if due is None or now < due:
            return False
        self.first = self.last = None
        return True
