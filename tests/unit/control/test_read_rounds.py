"""The read barrier's core (control/read_rounds.py): which reads and writes wait, which round answers each."""

from __future__ import annotations

import pytest

from p2porch.control.read_rounds import ReadPlan, ReadRounds, plan_read, plan_write, refusal


@pytest.mark.parametrize(
    ("member", "stale_ok", "is_leader", "voters", "plan"),
    [
        (False, False, False, 0, ReadPlan.LOCAL),  # in no cluster: nothing to wait for
        (True, True, False, 3, ReadPlan.LOCAL),  # stale=true: this node's own copy
        (True, False, True, 1, ReadPlan.LOCAL),  # the sole voter leads: it holds every commit
        (True, False, True, 3, ReadPlan.BARRIER),  # a leader of three must confirm it still leads
        (True, False, False, 3, ReadPlan.BARRIER),  # a follower
        (True, False, False, 1, ReadPlan.BARRIER),  # a replica of a one-voter cluster
        (True, False, False, 0, ReadPlan.BARRIER),  # no configuration known yet
    ],
)
def test_which_reads_wait(member: bool, stale_ok: bool, is_leader: bool, voters: int, plan: ReadPlan) -> None:
    assert plan_read(member=member, stale_ok=stale_ok, is_leader=is_leader, voters=voters) is plan


def test_the_sole_voters_read_waits_for_the_state_of_its_commit_index() -> None:
    """A replica of a one-voter cluster may apply commit N before the leader's apply reaches it: a read
    through the leader after one through the replica must not see an older state."""
    sole = dict(member=True, stale_ok=False, is_leader=True, voters=1)
    assert plan_read(**sole, leader_commit=12, delivered=9) is ReadPlan.CATCH_UP  # type: ignore[arg-type]
    assert plan_read(**sole, leader_commit=12, delivered=12) is ReadPlan.LOCAL  # type: ignore[arg-type]
    assert plan_read(**sole, leader_commit=None, delivered=9) is ReadPlan.LOCAL  # type: ignore[arg-type]
    assert plan_read(**sole | {"stale_ok": True}, leader_commit=12, delivered=9) is ReadPlan.LOCAL  # type: ignore[arg-type]
    assert plan_read(**sole | {"voters": 3}, leader_commit=12, delivered=9) is ReadPlan.BARRIER  # type: ignore[arg-type]


def test_a_read_never_joins_a_round_that_started_before_it() -> None:
    rounds = ReadRounds()
    first = rounds.needed()
    assert rounds.may_start(first)
    assert rounds.start() == first == 1
    late = rounds.needed()  # arrived while round 1 runs: it may have passed the commit point already
    assert late == 2 and not rounds.may_start(late)
    rounds.finish(1, None)
    assert rounds.outcome(first) == (True, "")
    assert rounds.outcome(late) is None  # round 1 does not answer it
    assert rounds.may_start(late)


def test_reads_arriving_during_a_round_share_the_next_one() -> None:
    rounds = ReadRounds()
    rounds.start()
    waiting = [rounds.needed() for _ in range(5)]  # five reads during round 1
    assert set(waiting) == {2}
    rounds.finish(1, None)
    starters = [n for n in waiting if rounds.may_start(n)]
    assert starters  # any one of them starts round 2 ...
    assert rounds.start() == 2
    assert not any(rounds.may_start(n) for n in waiting)  # ... and the others wait for it
    rounds.finish(2, None)
    assert all(rounds.outcome(n) == (True, "") for n in waiting)


def test_a_failed_round_refuses_its_readers_and_a_later_success_answers_earlier_ones() -> None:
    rounds = ReadRounds()
    rounds.start()
    during = rounds.needed()
    rounds.finish(1, "no answer from the leader")
    assert rounds.outcome(1) == (False, "no answer from the leader")
    assert rounds.outcome(during) is None  # its round has not run yet
    rounds.start()
    rounds.finish(2, None)
    assert rounds.outcome(during) == (True, "")
    assert rounds.outcome(1) == (True, "")  # round 2 started after every reader of round 1 arrived


def test_one_round_at_a_time() -> None:
    rounds = ReadRounds()
    rounds.start()
    with pytest.raises(RuntimeError):
        rounds.start()


def test_the_refusal_names_the_reason_the_leader_and_the_way_out() -> None:
    text = refusal("no answer from the leader", "10.0.0.1:7947", 5.0)
    assert "5.0 s" in text and "no answer from the leader" in text and "10.0.0.1:7947" in text
    assert "stale=true" in text and "stale copy" in text
    assert "knows no leader" in refusal("x", None, 1.0)


@pytest.mark.parametrize(
    ("member", "leader_commit", "delivered", "plan"),
    [
        (False, None, 0, ReadPlan.LOCAL),  # in no cluster: the handler answers as it does there
        (True, 12, 12, ReadPlan.LOCAL),  # the leader serves the state of its commit index
        (True, 12, 13, ReadPlan.LOCAL),  # (a later commit delivered since the index was read)
        (True, 12, 9, ReadPlan.CATCH_UP),  # its apply was cut short: 10..12 committed, not served yet
        (True, 12, 0, ReadPlan.CATCH_UP),  # nothing delivered yet (a journal replay)
        (True, None, 12, ReadPlan.BARRIER),  # a follower or a replica may lag an acknowledged write
        (True, None, 0, ReadPlan.BARRIER),
    ],
)
def test_which_writes_wait(member: bool, leader_commit: int | None, delivered: int, plan: ReadPlan) -> None:
    assert plan_write(member=member, leader_commit=leader_commit, delivered=delivered) is plan


def test_a_refused_write_says_it_was_not_proposed_and_offers_no_stale_copy() -> None:
    text = refusal("no answer from the leader", "10.0.0.1:7947", 5.0, write=True)
    assert "no answer from the leader" in text and "10.0.0.1:7947" in text
    assert "the write was not proposed" in text and "write through another node" in text
    assert "stale=true" not in text and "--stale" not in text
