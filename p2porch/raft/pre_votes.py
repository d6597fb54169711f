"""A voter's pre-vote rounds and leader stickiness (pure: no pysyncobj, no clock; callers pass ``now``).

pysyncobj has neither pre-vote nor leader stickiness: a follower whose election timer fires raises its
term at once and asks for votes, and any voter (the leader included) that sees the higher term steps
down, even when the leader is alive and every other voter hears it. On a loaded machine a follower
whose Raft thread was held up (a long apply, a busy process, a GIL-heavy neighbour) for more than an
election timeout does exactly that, and each such election costs the cluster a leader change.

With pre-votes (Raft thesis §9.6) a voter whose timer fires first asks the others whether they would
vote for it at ``term + 1`` without raising its own term; a voter grants that only when it has not heard
from a leader for ``hold_s`` (the minimum election timeout: leader stickiness, thesis §4.2.3), is not
the leader, and the asker's log is at least as up to date as its own. The real election (term raised,
``request_vote``) starts only after a majority granted. :class:`PreVotes` owns the last time this
voter heard a leader and the current round; it never sends anything and never touches Raft state.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

NEVER = float("-inf")


def log_up_to_date(candidate: tuple[int, int], own: tuple[int, int]) -> bool:
    """Whether a log ending at ``candidate`` (last term, last index) is at least as up to date as ``own``
    (Raft §5.4.1: the later last term wins; the same term, the longer log)."""
    return candidate >= own


@dataclass
class PreVotes:
    """One voter's view: when it last heard a leader, and the pre-vote round it runs (if any)."""

    heard_leader_at: float = NEVER
    round_term: int | None = None  # the term this voter asked pre-votes for
    granted: set[Hashable] = field(default_factory=set)
    won: bool = False  # a majority granted this round: the next tick starts the real election
    # a leader of a lower term than ours is sending appends (pysyncobj ignores them): our term is ahead
    # (a replica promoted with its vote floor, journal_start.py); only a real election at a higher term
    # makes that leader step down, and no voter that hears it would grant a pre-vote: campaign directly
    behind_leader_seen: bool = False

    def heard_leader(self, now: float) -> None:
        """An append from a leader of the current term (or a later one) arrived: any round is moot."""
        self.heard_leader_at = now
        self.behind_leader_seen = False
        self.end_round()

    def heard_older_leader(self) -> None:
        """An append from a leader of a term below ours arrived."""
        self.behind_leader_seen = True

    def skip_round(self) -> bool:
        """Whether the next campaign goes without a pre-vote (a lower-term leader was heard); resets it."""
        skip, self.behind_leader_seen = self.behind_leader_seen, False
        return skip

    def leader_lost(self) -> None:
        """The connection to the leader dropped: it is not live, whatever it said last."""
        self.heard_leader_at = NEVER

    def end_round(self) -> None:
        self.round_term, self.granted, self.won = None, set(), False

    def grant(
        self,
        *,
        term: int,
        current_term: int,
        candidate_log: tuple[int, int],
        own_log: tuple[int, int],
        leading: bool,
        hold_s: float,
        now: float,
    ) -> bool:
        """Whether to grant a pre-vote for ``term`` to a voter whose log ends at ``candidate_log``."""
        if leading or term <= current_term:
            return False
        if now - self.heard_leader_at < hold_s:
            return False  # a live leader was heard: do not help depose it
        return log_up_to_date(candidate_log, own_log)

    def start(self, term: int, voters: int) -> bool:
        """Begin a round for ``term`` among ``voters`` voters (self included); True when this voter
        alone is a majority (a one-voter cluster), so the election may start at once."""
        self.round_term, self.granted = term, set()
        self.won = voters < 2  # alone a majority
        return self.won

    def granted_by(self, node: Hashable, term: int, voters: int) -> bool:
        """Count a grant for ``term`` from ``node``; True the moment a majority (self included) has
        granted this round. A grant for another round, or after the round was won or ended, counts not."""
        if term != self.round_term or self.won:
            return False
        self.granted.add(node)
        self.won = len(self.granted) + 1 > voters / 2
        return self.won
