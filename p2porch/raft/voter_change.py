"""What to do next in a voter add/remove, and when a change is known committed (pure core).

pysyncobj answers a refused membership change with REQUEST_DENIED for several different reasons: the
voter is already (or no longer) in the configuration, another change is still uncommitted, the new
leader has not committed its no-op yet, or the voter to remove is the leader itself (a leader never
removes itself). The last can never succeed: retrying it only burns the whole timeout and ends in a
misleading "no answer in time". ``next_step`` tells these apart before each attempt and after each
refusal.

A node's configuration includes changes appended to its log and not yet committed (pysyncobj applies a
change when it is appended), so a configuration that shows a change does not make it done. ``settled``
judges it from two views taken around a barrier entry this node saw commit: the same leader in the same
term before and after, the change shown both times, means it is in the committed log (an entry
committed after it commits it); a leader lost or a term moved leaves the outcome unknown. Nothing here
talks to Raft.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

__all__ = ["Step", "Verdict", "View", "next_step", "settled", "shows"]

Step = Literal["shown", "try", "leader"]
Verdict = Literal["committed", "absent", "unknown"]


@dataclass(frozen=True)
class View:
    """What one node saw at one moment: the leader it knew, its term and its configuration."""

    leader: str | None
    term: int
    voters: frozenset[str]


def shows(kind: Literal["add", "remove"], addr: str, voters: Collection[str]) -> bool:
    """Whether ``voters`` already is as the change asks (committed or not)."""
    return (kind == "add") == (addr in voters)


def next_step(kind: Literal["add", "remove"], addr: str, voters: Collection[str], leader: str | None) -> Step:
    """``shown``: the configuration already is as asked (done once :func:`settled` says committed);
    ``leader``: ``addr`` leads the group, so it cannot be removed until leadership has moved; ``try``:
    propose (again)."""
    if shows(kind, addr, voters):
        return "shown"
    if kind == "remove" and leader == addr:
        return "leader"
    return "try"


def settled(kind: Literal["add", "remove"], addr: str, before: View, after: View | None) -> Verdict:
    """Whether the change is in the committed log, from ``before`` (read before a barrier entry was
    proposed) and ``after`` (read once this node applied it; None: it did not commit in time).

    ``committed``: shown both times, the same leader and term throughout (the barrier went into that
    leader's log after everything this node had from it). ``absent``: shown neither time under the same
    leader and term: not in the committed log, and never will be (the barrier, committed after it was
    proposed, fixed the log up to itself). ``unknown``: the barrier did not commit, no leader was known,
    the leader or term moved, or the change came or went meanwhile: ask again later."""
    if after is None or before.leader is None or after.leader is None:
        return "unknown"
    if (after.leader, after.term) != (before.leader, before.term):
        return "unknown"
    shown = shows(kind, addr, before.voters), shows(kind, addr, after.voters)
    if shown == (True, True):
        return "committed"
    if shown == (False, False):
        return "absent"
    return "unknown"
