"""next_step: when a voter add/remove is done, must be retried, or can never succeed as asked."""

from __future__ import annotations

from p2porch.raft.voter_change import next_step

A, B, C = "10.0.0.1:7947", "10.0.0.2:7947", "10.0.0.3:7947"


def test_a_change_already_in_the_configuration_is_done() -> None:
    assert next_step("remove", C, (A, B), leader=A) == "done"
    assert next_step("add", C, (A, B, C), leader=A) == "done"


def test_removing_the_leader_is_refused_not_retried() -> None:
    assert next_step("remove", C, (A, B, C), leader=C) == "leader"


def test_other_changes_are_proposed() -> None:
    assert next_step("remove", C, (A, B, C), leader=A) == "try"
    assert next_step("remove", C, (A, B, C), leader=None) == "try"  # no leader known: retried until one is
    assert next_step("add", C, (A, B), leader=None) == "try"
    assert next_step("add", C, (A, B), leader=C) == "try"
