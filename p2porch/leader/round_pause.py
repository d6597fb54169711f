"""How long the leader loop waits after a round before it plans the next (pure).

A full round reads the whole state (~0.4 s at 100,000 tasks): after a round, the next waits as long as it
took (at most ``ROUND_PACE_MAX_S``), so while commits stream in (agents' reports) planning takes at most
about half of the loop's thread and the Raft thread sharing its process keeps the rest (issue 19).

One exception: a new leadership catching up. Its first round and the sweep rounds after it
(``IncrementalPlanner.last_takeover``) are a bounded run, one first round then about one round per
``SWEEP_TASKS_PER_ROUND`` settled tasks, and while they wrote nothing they only confirm that the old
leader's state stands. Pausing after them held back every change committed meanwhile: a service created
right after a failover at 1,000 x 100,000 was placed only after the first round *and* its pause, 2.9-4.3 s
after the kill (docs/performance.md, "The thirteenth round: new work after a failover"). So no pause
follows a takeover round that wrote nothing; a takeover round that wrote (a placement, a repair, a
service's bookkeeping) and every steady round keep theirs. This module never reads a clock.
"""

from __future__ import annotations

__all__ = ["ROUND_PACE_MAX_S", "round_pause"]

#: the longest pause after a round (seconds): a round that took longer pauses this long
ROUND_PACE_MAX_S = 1.0


def round_pause(took: float, *, wrote: bool, takeover: bool) -> float:
    """Seconds the next round waits after a round that took ``took`` seconds: as long as it took, at
    most ``ROUND_PACE_MAX_S``; none after a new leadership's first or sweep round (``takeover``) that
    ``wrote`` nothing."""
    if takeover and not wrote:
        return 0.0
    return min(max(took, 0.0), ROUND_PACE_MAX_S)
