"""The leader's commit rule with its own copy counted only once durable (pure; Raft §5.3-5.4, §10.2.1).

A leader sends its entries to the followers before its own ``fdatasync`` returns (a worker thread syncs
the journal: ``journal.DurableJournal.syncs_in_background``), so it may count itself towards a commit
only up to the index that sync made durable, its *durable index*, exactly as a follower counts only once
it answered after its own sync. pysyncobj 0.3.17 counted the leader as one copy of every entry up to its
log's end; this replaces that count (``durable_commit.DurableLeaderCommit``). It never reads a clock,
a file or pysyncobj.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable


def quorum_index(self_durable: int, follower_matches: Iterable[int], voters: int) -> int:
    """The highest index held durably by a majority of ``voters``: the leader's durable index and each
    voting follower's match index (what it acknowledged after its own sync) are one copy each.

    ``voters`` counts the leader; a follower missing from ``follower_matches`` holds nothing.
    """
    copies = sorted([self_durable, *follower_matches], reverse=True)
    majority = voters // 2 + 1
    if len(copies) < majority:
        return 0
    return max(0, copies[majority - 1])


def leader_commit_index(
    commit: int,
    log_end: int,
    self_durable: int,
    follower_matches: Iterable[int],
    voters: int,
    term_at: Callable[[int], int | None],
    current_term: int,
) -> int:
    """The leader's new commit index: the highest index above ``commit`` and at most ``log_end`` that a
    majority holds durably (:func:`quorum_index`) and whose entry is of ``current_term`` (an entry of an
    earlier term is committed only by one of the current term after it, Raft §5.4.2); else ``commit``.

    ``term_at(index)`` is the term of the leader's entry there (None if it holds none: never committed).
    Terms only grow along a log, so when the majority's highest index is of an earlier term every index
    below it is too: pysyncobj's loop, which stops at the first index without a majority and skips those
    of earlier terms, returns the same index.
    """
    candidate = min(quorum_index(self_durable, follower_matches, voters), log_end)
    if candidate <= commit:
        return commit
    return candidate if term_at(candidate) == current_term else commit
