"""next_step: what to do next in a voter add/remove; settled: when a change shown in a configuration is
known committed (the views around a barrier entry)."""

from __future__ import annotations

from p2porch.raft.voter_change import View, next_step, settled

A, B, C = "10.0.0.1:7947", "10.0.0.2:7947", "10.0.0.3:7947"


def test_a_change_already_in_the_configuration_is_shown_not_done() -> None:
    assert next_step("remove", C, (A, B), leader=A) == "shown"
    assert next_step("add", C, (A, B, C), leader=A) == "shown"


def test_removing_the_leader_is_refused_not_retried() -> None:
    assert next_step("remove", C, (A, B, C), leader=C) == "leader"


def test_other_changes_are_proposed() -> None:
    assert next_step("remove", C, (A, B, C), leader=A) == "try"
    assert next_step("remove", C, (A, B, C), leader=None) == "try"  # no leader known: retried until one is
    assert next_step("add", C, (A, B), leader=None) == "try"
    assert next_step("add", C, (A, B), leader=C) == "try"


def view(leader: str | None, term: int, *voters: str) -> View:
    return View(leader, term, frozenset(voters))


def test_shown_around_a_barrier_of_the_same_leader_and_term_is_committed() -> None:
    assert settled("add", C, view(A, 5, A, B, C), view(A, 5, A, B, C)) == "committed"
    assert settled("remove", C, view(B, 7, A, B), view(B, 7, A, B)) == "committed"


def test_shown_but_the_term_or_leader_moved_is_unknown() -> None:
    assert settled("add", C, view(A, 5, A, B, C), view(A, 6, A, B, C)) == "unknown"  # A led again
    assert settled("add", C, view(A, 5, A, B, C), view(B, 6, A, B, C)) == "unknown"
    assert settled("remove", C, view(A, 5, A, B), view(B, 5, A, B)) == "unknown"


def test_a_barrier_that_did_not_commit_leaves_it_unknown() -> None:
    assert settled("add", C, view(A, 5, A, B, C), None) == "unknown"
    assert settled("add", C, view(A, 5, A, B), None) == "unknown"


def test_no_leader_known_is_unknown() -> None:
    assert settled("add", C, view(None, 5, A, B, C), view(A, 5, A, B, C)) == "unknown"
    assert settled("add", C, view(A, 5, A, B, C), view(None, 5, A, B, C)) == "unknown"


def test_not_shown_around_the_barrier_is_absent() -> None:
    assert settled("add", C, view(A, 5, A, B), view(A, 5, A, B)) == "absent"
    assert settled("remove", C, view(A, 5, A, B, C), view(A, 5, A, B, C)) == "absent"


def test_a_change_that_came_or_went_during_the_barrier_is_unknown() -> None:
    assert settled("add", C, view(A, 5, A, B), view(A, 5, A, B, C)) == "unknown"  # appended meanwhile
    assert settled("add", C, view(A, 5, A, B, C), view(A, 5, A, B)) == "unknown"  # a stale entry truncated
