"""When to act on a burst of changes (pure; the caller passes ``now`` from its clock).

A member reacts to committed changes by reprogramming kernel state (overlay routes, FDB, the VXLAN
allow-list). During a burst (a formation commits several changes per joining node, each reaching every
member) acting on each change costs O(changes x members); acting once the burst paused, or at the latest
``max_delay_s`` after its first change, costs one pass per burst and delays no change by more than
``max_delay_s``. It never sleeps or reads a clock itself.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["VIEW_REBUILD_MAX_GAP_S", "VIEW_REBUILD_SHARE", "CostShare", "Debounce"]

#: a member view rebuilt from the whole state (the DNS zone and scopes, the policy plan) takes at most this
#: share of its thread's time (:class:`CostShare`), and waits at most this long after a rebuild
VIEW_REBUILD_SHARE = 0.25
VIEW_REBUILD_MAX_GAP_S = 5.0


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


@dataclass
class CostShare:
    """Spacing for a rebuild whose cost grows with the state (pure; the caller passes times from its clock).

    A member view rebuilt after every burst of commits (a DNS zone merge, a policy plan over every task
    address) costs O(tasks) each time: at 100,000 tasks a rebuild can take longer than the gap between
    bursts, and the view would then hold its thread (and the GIL the Raft thread needs) all the time. After
    a rebuild that took ``cost_s``, the next may start no earlier than ``cost_s * (1 / share - 1)`` after it
    ended (at most ``max_gap_s``): the rebuilds take at most ``share`` of the time while one costs up to
    ``max_gap_s * share / (1 - share)`` (1.67 s at 0.25 and 5 s), more beyond that (the gap stays
    ``max_gap_s``: a 10 s rebuild takes 2/3 of the time), a cheap rebuild is not delayed measurably, and
    a view is never staler than its rebuild plus the gap.
    """

    share: float
    max_gap_s: float
    not_before: float = float("-inf")

    def __post_init__(self) -> None:
        if not (0 < self.share <= 1 and self.max_gap_s >= 0):
            raise ValueError("need 0 < share <= 1 and max_gap_s >= 0")

    def done(self, started: float, ended: float) -> None:
        """A rebuild ran from ``started`` to ``ended``."""
        cost = max(0.0, ended - started)
        self.not_before = ended + min(self.max_gap_s, cost * (1 / self.share - 1))

    def wait_s(self, now: float) -> float:
        """How long to wait at ``now`` before the next rebuild (0: go)."""
        return max(0.0, self.not_before - now)
