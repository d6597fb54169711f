"""The leader's commit rule (raft/leader_commit.py): a majority of durable copies, the leader's own copy
counted only up to its durable index, and only an entry of the current term commits directly."""

from __future__ import annotations

import itertools
import random

import pytest

from p2porch.raft.leader_commit import leader_commit_index, quorum_index


def _terms(*runs: tuple[int, int]) -> dict[int, int]:
    """index -> term of a log built from (count, term) runs, starting at index 1."""
    log, idx = {}, 1
    for count, term in runs:
        for _ in range(count):
            log[idx] = term
            idx += 1
    return log


def _commit(commit: int, durable: int, matches: list[int], log: dict[int, int], term: int) -> int:
    return leader_commit_index(
        commit=commit,
        log_end=max(log),
        self_durable=durable,
        follower_matches=matches,
        voters=len(matches) + 1,
        term_at=log.get,
        current_term=term,
    )


def test_the_quorum_index_is_the_majoritys_lowest_copy() -> None:
    assert quorum_index(10, [7, 3], voters=3) == 7
    assert quorum_index(2, [7, 3], voters=3) == 3  # the leader's copy is its durable index, not its log
    assert quorum_index(0, [9, 9], voters=3) == 9  # two followers are a majority without the leader
    assert quorum_index(5, [], voters=1) == 5  # a single voter: its own durable copy
    assert quorum_index(8, [8, 1, 1, 1], voters=5) == 1
    assert quorum_index(8, [8, 8, 1, 1], voters=5) == 8
    assert quorum_index(8, [5], voters=3) == 5
    assert quorum_index(8, [], voters=3) == 0  # a follower missing from the matches holds nothing


def test_a_leader_whose_sync_is_pending_needs_both_followers_of_three() -> None:
    log = _terms((10, 2))
    assert _commit(4, durable=4, matches=[10, 0], log=log, term=2) == 4  # one follower: nothing more
    assert _commit(4, durable=10, matches=[10, 0], log=log, term=2) == 10  # its sync returned: committed
    assert _commit(4, durable=4, matches=[10, 8], log=log, term=2) == 8  # both followers: committed
    assert _commit(4, durable=6, matches=[10, 0], log=log, term=2) == 6  # counted up to what it synced


def test_only_an_entry_of_the_current_term_commits_directly() -> None:
    log = _terms((5, 1), (3, 2))  # 1..5 of term 1, 6..8 of term 2
    assert _commit(2, durable=8, matches=[5, 0], log=log, term=2) == 2  # 5 is a majority's, of term 1
    assert _commit(2, durable=8, matches=[6, 0], log=log, term=2) == 6  # 6 of term 2 commits 1..6
    assert _commit(7, durable=8, matches=[5, 5], log=log, term=2) == 7  # never goes back


def test_a_commit_never_passes_the_leaders_log() -> None:
    log = _terms((4, 3))
    assert _commit(1, durable=4, matches=[9, 9], log=log, term=3) == 4


def _reference(commit: int, durable: int, matches: list[int], log: dict[int, int], term: int) -> int:
    """pysyncobj 0.3.17's inline loop with the leader's ``count = 1`` made ``1 if idx <= durable``."""
    next_commit, idx = commit, commit
    voters = len(matches) + 1
    while idx < max(log):
        idx += 1
        count = (1 if idx <= durable else 0) + sum(1 for m in matches if m >= idx)
        if count <= voters / 2:
            break
        if log.get(idx) != term:
            continue
        next_commit = idx
    return next_commit


@pytest.mark.parametrize("seed", range(5))
def test_the_rule_agrees_with_pysyncobjs_loop_counting_only_durable_copies(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(400):
        runs = [(rng.randint(1, 4), term) for term in sorted(rng.sample(range(1, 9), rng.randint(1, 4)))]
        log = _terms(*runs)
        end = max(log)
        term = max(log.values()) + rng.choice((0, 0, 1))  # sometimes a new term with no entry yet
        durable = rng.randint(0, end)
        followers = rng.choice((0, 2, 4))
        matches = [rng.randint(0, end) for _ in range(followers)]
        commit = rng.randint(0, end)
        assert _commit(commit, durable, matches, log, term) == _reference(commit, durable, matches, log, term)


def test_no_commit_without_a_majority_of_durable_copies() -> None:
    """Exhaustively on 3 and 5 voters: whatever is committed is durable on more than half of them."""
    log = _terms((6, 1))
    for followers in (2, 4):
        for durable, *matches in itertools.product(range(7), repeat=followers + 1):
            new = _commit(0, durable, list(matches), log, term=1)
            if new:
                holders = (durable >= new) + sum(m >= new for m in matches)
                assert holders > (followers + 1) / 2
