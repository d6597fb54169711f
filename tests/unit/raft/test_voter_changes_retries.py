"""``VoterChanges``' retry paths against a scripted Raft (the shell's callables faked; the decisions are
``voter_change.py``'s, tested on their own): a lost answer, a leader change after forwarding, a
``REQUEST_DENIED`` retried, and a timeout with the change shown but no barrier committed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
import trio
import trio.testing
from pysyncobj import FAIL_REASON

from p2porch.errors import ProposalTimeout, RaftError
from p2porch.raft.membership_changes import VoterChanges
from p2porch.raft.status import RaftStatus

A, B, C, J = "10.0.0.1:7947", "10.0.0.2:7947", "10.0.0.3:7947", "10.0.0.9:7947"


@dataclass
class ScriptedRaft:
    """The store as ``VoterChanges`` sees it: a status, proposals answered from a script, barriers."""

    voters: set[str] = field(default_factory=lambda: {A, B, C})
    leader: str | None = A
    term: int = 3
    answers: list[Callable[[ScriptedRaft], Any]] = field(default_factory=list)  # one per proposal
    barrier_commits: bool = True
    proposals: list[tuple[str, str]] = field(default_factory=list)
    barriers: int = 0

    def status(self) -> RaftStatus:
        return RaftStatus(
            self_addr=A,
            role="leader" if self.leader == A else "follower",
            is_leader=self.leader == A,
            leader=self.leader,
            term=self.term,
            commit_index=10,
            last_applied=10,
            voters=tuple(sorted(self.voters)),
            connected_voters=(),
            replicas_connected=0,
            has_quorum=True,
            ready=True,
            state_version=1,
            raft_thread_alive=True,
        )

    async def call_raft(self, start: Callable[[Callable[[Any, int], None]], None], timeout_s: float) -> int:
        answers: list[int] = []
        start(lambda res, err: answers.append(err))
        answer = self.answers.pop(0)(self)
        if answer is None:  # lost: no answer within the timeout
            await trio.sleep(timeout_s)
            raise ProposalTimeout("no answer from the Raft leader in time")
        return int(answer)

    async def barrier(self, timeout_s: float) -> object:
        self.barriers += 1
        if not self.barrier_commits:
            await trio.sleep(timeout_s)
            raise ProposalTimeout("no answer from the Raft leader in time")
        return None

    def method(self, kind: str) -> Callable[..., None]:
        def propose(addr: str, callback: Callable[[Any, int], None]) -> None:
            self.proposals.append((kind, addr))

        return propose

    def changes(self) -> VoterChanges:
        add, remove = self.method("add"), self.method("remove")
        return VoterChanges(self.status, self.call_raft, self.barrier, add, remove)


def appended_then(answer: int | None) -> Callable[[ScriptedRaft], int | None]:
    """The leader appends the add of J (the configuration shows it at once), then ``answer``."""

    def run(raft: ScriptedRaft) -> int | None:
        raft.voters.add(J)
        return answer

    return run


def answer(value: int | None) -> Callable[[ScriptedRaft], int | None]:
    return lambda raft: value


async def test_a_lost_answer_is_done_once_a_barrier_commits_under_the_same_leader(
    autojump_clock: trio.testing.MockClock,
) -> None:
    raft = ScriptedRaft(answers=[appended_then(None)])
    changes = raft.changes()
    await changes.change("add", J, timeout_s=5.0)
    assert raft.proposals == [("add", J)]  # not proposed a second time: the configuration showed it
    assert raft.barriers == 1
    assert changes.unsettled is None


async def test_a_leader_change_after_forwarding_leaves_it_unsettled_then_proposes_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def moved(raft: ScriptedRaft) -> int:  # the forward's leader went; the new one never got the change
        raft.leader, raft.term = B, 4
        return FAIL_REASON.LEADER_CHANGED

    raft = ScriptedRaft(answers=[moved, answer(FAIL_REASON.SUCCESS)])
    changes = raft.changes()
    await changes.change("add", J, timeout_s=5.0)
    assert raft.proposals == [("add", J), ("add", J)]
    assert changes.unsettled is None


async def test_a_leader_change_whose_change_shows_is_confirmed_by_a_barrier_not_reproposed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def appended_and_moved(raft: ScriptedRaft) -> int:
        raft.voters.add(J)
        raft.leader, raft.term = B, 4
        return FAIL_REASON.LEADER_CHANGED

    raft = ScriptedRaft(answers=[appended_and_moved])
    changes = raft.changes()
    await changes.change("add", J, timeout_s=5.0)
    assert raft.proposals == [("add", J)]
    assert raft.barriers == 1


async def test_request_denied_is_retried_until_the_leader_takes_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    denied = answer(FAIL_REASON.REQUEST_DENIED)  # another change in flight, or the new leader's no-op
    raft = ScriptedRaft(answers=[denied, denied, answer(FAIL_REASON.SUCCESS)])
    changes = raft.changes()
    await changes.change("add", J, timeout_s=5.0)
    assert raft.proposals == [("add", J)] * 3
    assert raft.barriers == 0
    assert changes.unsettled is None


async def test_request_denied_until_the_timeout_leaves_nothing_unsettled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    raft = ScriptedRaft(answers=[answer(FAIL_REASON.REQUEST_DENIED)] * 100)
    changes = raft.changes()
    with pytest.raises(ProposalTimeout, match="REQUEST_DENIED"):
        await changes.change("add", J, timeout_s=1.0)
    assert changes.unsettled is None  # known not in the log: another change may start
    raft.answers = [answer(FAIL_REASON.SUCCESS)]
    await changes.change("remove", C, timeout_s=1.0)
    assert raft.proposals[-1] == ("remove", C)


async def test_a_change_shown_without_a_committed_barrier_times_out_and_blocks_another(
    autojump_clock: trio.testing.MockClock,
) -> None:
    raft = ScriptedRaft(answers=[appended_then(None)], barrier_commits=False)
    changes = raft.changes()
    with pytest.raises(ProposalTimeout, match="shown in the configuration, commit unknown"):
        await changes.change("add", J, timeout_s=3.0)
    assert raft.proposals == [("add", J)]  # shown: never proposed again
    assert raft.barriers >= 1
    assert changes.unsettled == ("add", J)
    with pytest.raises(RaftError, match="may still be uncommitted"):
        await changes.change("remove", C, timeout_s=1.0)
    assert raft.proposals == [("add", J)]  # the remove was never proposed
    raft.barrier_commits = True  # the quorum is back: the retried add is confirmed, then the remove runs
    await changes.change("add", J, timeout_s=3.0)
    assert changes.unsettled is None
    raft.answers = [answer(FAIL_REASON.SUCCESS)]
    await changes.change("remove", C, timeout_s=1.0)
    assert raft.proposals == [("add", J), ("remove", C)]


async def test_the_same_change_asked_twice_at_once_is_proposed_once_and_both_callers_see_it_done(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def removed(raft: ScriptedRaft) -> int:
        raft.voters.discard(C)
        return FAIL_REASON.SUCCESS

    raft = ScriptedRaft(answers=[removed])
    slow_call = raft.call_raft

    async def call_raft(start: Callable[[Callable[[Any, int], None]], None], timeout_s: float) -> int:
        await trio.sleep(2.0)  # the commit takes a while: the second caller arrives meanwhile
        return await slow_call(start, timeout_s)

    changes = VoterChanges(raft.status, call_raft, raft.barrier, raft.method("add"), raft.method("remove"))
    done: list[str] = []

    async def remove(who: str, delay: float) -> None:
        await trio.sleep(delay)
        await changes.change("remove", C, timeout_s=10.0)
        done.append(who)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(remove, "node rm", 0.0)
        nursery.start_soon(remove, "autopilot", 0.5)
    assert sorted(done) == ["autopilot", "node rm"]  # main refused the second: "is in progress"
    assert raft.proposals == [("remove", C)]
    assert raft.barriers == 1  # the second caller confirmed the shown change with one barrier
    assert changes.unsettled is None


async def test_a_different_change_while_one_runs_waits_for_it_then_goes_next(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``node rm`` of a voter while the autopilot adds a joiner on the same node: main refused the
    remove ("is in progress"), a spurious error a user typing it would see; it waits its turn now."""

    def added(raft: ScriptedRaft) -> int:
        raft.voters.add(J)
        return FAIL_REASON.SUCCESS

    def removed(raft: ScriptedRaft) -> int:
        raft.voters.discard(C)
        return FAIL_REASON.SUCCESS

    raft = ScriptedRaft(answers=[added, removed])
    slow_call = raft.call_raft
    in_flight: list[int] = []

    async def call_raft(start: Callable[[Callable[[Any, int], None]], None], timeout_s: float) -> int:
        in_flight.append(len(raft.proposals))
        await trio.sleep(2.0)  # the add commits after a while: the remove arrives meanwhile
        return await slow_call(start, timeout_s)

    changes = VoterChanges(raft.status, call_raft, raft.barrier, raft.method("add"), raft.method("remove"))
    done: list[str] = []

    async def change(kind: Literal["add", "remove"], addr: str, delay: float) -> None:
        await trio.sleep(delay)
        await changes.change(kind, addr, timeout_s=10.0)
        done.append(f"{kind} {addr}")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(change, "add", J, 0.0)
        nursery.start_soon(change, "remove", C, 0.5)
    assert done == [f"add {J}", f"remove {C}"]
    assert raft.proposals == [("add", J), ("remove", C)]
    assert in_flight == [0, 1]  # the remove was proposed only once the add had been answered
    assert raft.voters == {A, B, J} and changes.unsettled is None


async def test_a_different_change_still_running_at_the_callers_timeout_is_refused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    raft = ScriptedRaft(answers=[answer(None)])
    changes = raft.changes()
    errors: list[str] = []

    async def other() -> None:
        await trio.sleep(0.5)
        with pytest.raises(RaftError, match="still in progress after 1 s") as exc:
            await changes.change("remove", C, timeout_s=1.0)
        errors.append(str(exc.value))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other)
        with pytest.raises(ProposalTimeout):
            await changes.change("add", J, timeout_s=2.0)
    assert len(errors) == 1
    assert raft.proposals == [("add", J)]


async def test_waiting_for_the_same_change_gives_up_at_the_callers_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    raft = ScriptedRaft(answers=[answer(None)])
    changes = raft.changes()

    async def second() -> None:
        await trio.sleep(0.5)
        with pytest.raises(ProposalTimeout, match="another caller"):
            await changes.change("add", J, timeout_s=1.0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(second)
        with pytest.raises(ProposalTimeout):
            await changes.change("add", J, timeout_s=5.0)
    assert raft.proposals == [("add", J)]


def joined(raft: ScriptedRaft) -> int:
    raft.voters.add(J)
    return FAIL_REASON.SUCCESS


def answered_after(raft: ScriptedRaft, delay_s: float) -> VoterChanges:
    """``raft``'s changes, each proposal's answer (from its script) ``delay_s`` later."""

    async def call_raft(start: Callable[[Callable[[Any, int], None]], None], timeout_s: float) -> int:
        await trio.sleep(delay_s)
        return await raft.call_raft(start, timeout_s)

    return VoterChanges(raft.status, call_raft, raft.barrier, raft.method("add"), raft.method("remove"))


async def test_a_third_caller_of_the_same_change_waits_while_the_second_has_its_turn(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Main raised ProposalTimeout ("did not end within 10 s") at t=2, when the first caller's round
    ended and the second took the turn: the third caller waits until its own deadline now."""

    raft = ScriptedRaft(answers=[answer(None), joined])
    changes = answered_after(raft, 1.0)  # each round takes a while: the other callers wait meanwhile
    done: list[str] = []

    async def add(who: str, delay: float, timeout_s: float) -> None:
        await trio.sleep(delay)
        try:
            await changes.change("add", J, timeout_s=timeout_s)
        except ProposalTimeout:
            done.append(f"{who}: timeout")
            return
        done.append(f"{who}: done")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(add, "first", 0.0, 2.0)  # its answer is lost: it times out at about t=2
        nursery.start_soon(add, "second", 0.2, 30.0)
        nursery.start_soon(add, "third", 0.4, 30.0)
    assert sorted(done) == ["first: timeout", "second: done", "third: done"]
    assert raft.proposals == [("add", J), ("add", J)]  # the last caller confirmed the shown change
    assert changes.unsettled is None


async def test_a_turn_that_comes_with_no_time_left_proposes_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    raft = ScriptedRaft(answers=[joined])
    changes = answered_after(raft, 1.0)  # the add is answered at t=1

    async def remove() -> None:
        with pytest.raises(RaftError, match="not proposed"):
            await changes.change("remove", C, timeout_s=1.04)  # its turn at t=1: 0.04 s left

    async with trio.open_nursery() as nursery:
        nursery.start_soon(changes.change, "add", J, 5.0)
        await trio.sleep(0)
        nursery.start_soon(remove)
    assert raft.proposals == [("add", J)]
