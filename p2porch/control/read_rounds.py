"""Which reads need a read barrier and which barrier round each one waits for (pure).

A read of cluster state served by a node that is not the only voter must first know it holds every write
acknowledged before the read began (Raft thesis 6.4): the shell (``read_barrier.py``) runs *rounds*, each
one entry committed through the leader and applied on this node. A read may be answered by a round that
started after it arrived, never by one already running (that one may have passed the commit point
before a write the reader saw acknowledged), so every read needs round ``started + 1``: the one that
starts now when none runs, else the next, which all reads that arrived meanwhile share (one round trip
per batch of reads). Rounds run one at a time and in order, so a later round that succeeded answers an
earlier one's readers too. Owns the round counters only: it never reads a clock, a store or the network.

A write through a node that does not lead waits for a round too (``plan_write``): its handler reads the
record on this node's copy before it builds the Raft command ("no such service", a version precondition),
so that copy must hold every write acknowledged before the request, as for a read. The leader waits only
until the state it serves holds its commit index of the request's arrival.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["ReadPlan", "ReadRounds", "plan_read", "plan_write", "refusal"]


class ReadPlan(StrEnum):
    LOCAL = "local"  # answer from this node's applied state as it is
    BARRIER = "barrier"  # wait for a round first
    CATCH_UP = "catch_up"  # (the leader's writes, a sole voter's reads) wait until the state served holds
    # its commit index


def plan_read(
    *,
    member: bool,
    stale_ok: bool,
    is_leader: bool,
    voters: int,
    leader_commit: int | None = None,
    delivered: int = 0,
) -> ReadPlan:
    """A read's plan from this node's standing: a node in no cluster has nothing to wait for, a caller
    that asked for this node's own copy (``stale``) gets it, and the leader that is the only voter holds
    every committed write (no other node can lead or commit), but may not serve it yet: as a write through
    the leader (``plan_write``, ``leader_commit`` and ``delivered`` as there) it waits locally until its
    state holds ``leader_commit`` (a replica may already have applied a commit the leader's apply left for
    its next tick). Every other read waits for a round."""
    if not member or stale_ok:
        return ReadPlan.LOCAL
    if is_leader and voters <= 1:
        behind = leader_commit is not None and delivered < leader_commit
        return ReadPlan.CATCH_UP if behind else ReadPlan.LOCAL
    return ReadPlan.BARRIER


def plan_write(*, member: bool, leader_commit: int | None, delivered: int) -> ReadPlan:
    """A write's plan. ``leader_commit`` is this node's commit index when it leads at this moment (read
    live, not from a cached status; None: it does not lead), ``delivered`` the apply index whose state
    the trio side serves. A non-leader waits for a round. The leader's commit index covers every write
    acknowledged through any node (appends carry it out only after it rose), but its apply may lag it:
    ``BoundedApply`` leaves entries for the next tick when a tick's apply runs over budget, while a
    follower already learned commit N. So the leader looks its record up at once only when the trio
    side serves the state of that commit index, and otherwise waits locally (``CATCH_UP``) until it
    does: no new entry. A leader elected a moment ago names its election no-op's index until that commits
    (``RaftBridge.leader_commit_now``), so it waits for its predecessor's commits too. What stays open is
    short: a leader cut off from its voters until it steps down (docs/raft.md "Writes")."""
    if not member:
        return ReadPlan.LOCAL
    if leader_commit is None:
        return ReadPlan.BARRIER
    return ReadPlan.LOCAL if delivered >= leader_commit else ReadPlan.CATCH_UP


def refusal(reason: str, leader: str | None, waited_s: float, *, write: bool = False) -> str:
    """The message of a read (or write) refused after its deadline: what failed, and what the caller
    can do."""
    seen = f"the leader this node last heard of is {leader}" if leader else "this node knows no leader"
    head = f"this node could not confirm within {waited_s:.1f} s that it holds every committed write"
    if write:
        return (
            f"{head} ({reason}; {seen}): the write was not proposed, since it would have been checked "
            "against a possibly stale copy; retry, or write through another node"
        )
    return (
        f"{head} ({reason}; {seen}): not answering from a possibly stale copy; retry, read through another "
        "node, or ask for this node's own copy (CLI: p2porch --stale ...; API: ?stale=true)"
    )


@dataclass
class ReadRounds:
    """The barrier rounds of one node: started, running, and the last that succeeded or failed."""

    started: int = 0
    running: bool = False
    ok_through: int = 0  # every reader needing a round up to this one may be answered
    failed_round: int = 0  # the latest round that failed ...
    failure: str = ""  # ... and why

    def needed(self) -> int:
        """The round a read arriving now must see succeed."""
        return self.started + 1

    def may_start(self, needed: int) -> bool:
        """Whether a reader needing round ``needed`` starts it now (none runs and it is the next)."""
        return not self.running and self.started < needed

    def start(self) -> int:
        if self.running:
            raise RuntimeError("a barrier round is already running")
        self.started += 1
        self.running = True
        return self.started

    def finish(self, round_no: int, error: str | None) -> None:
        """Round ``round_no`` ended: succeeded (``error`` None) or failed with ``error``."""
        self.running = False
        if error is None:
            self.ok_through = max(self.ok_through, round_no)
        else:
            self.failed_round, self.failure = round_no, error

    def outcome(self, needed: int) -> tuple[bool, str] | None:
        """For a reader needing round ``needed``: None while it must wait, ``(True, "")`` once a round at
        or after it succeeded, ``(False, why)`` when its round failed (and none after it succeeded)."""
        if self.ok_through >= needed:
            return True, ""
        if self.failed_round >= needed:
            return False, self.failure
        return None
