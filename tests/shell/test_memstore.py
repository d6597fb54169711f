"""The in-memory Raft store (p2porch.testing.memstore): real FSM, scripted leadership (MockClock)."""

from typing import Any

import pytest
import trio
import trio.testing

from p2porch.errors import ConflictError, NotLeaderError, ProposalTimeout
from p2porch.raft import commands as C
from p2porch.testing.memstore import MemoryRaft

A, B, C3 = "10.0.0.1:7947", "10.0.0.2:7947", "10.0.0.3:7947"


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


def group(leader: str | None = A) -> MemoryRaft:
    return MemoryRaft([A, B, C3], leader=leader)


async def initialised(raft: MemoryRaft) -> None:
    await raft.store(A).write(C.InitCluster(at=1.0, cluster_id="0123456789abcdef").encode())


async def test_writes_apply_through_the_fsm_and_every_handle_sees_them(autojump_clock: Any) -> None:
    raft = group()
    a, b = raft.store(A), raft.store(B)
    await initialised(raft)
    assert await b.write(C.Noop(at=2.0, tag="x").encode()) == "x"  # a follower's write goes to the leader
    assert a.snapshot() is b.snapshot() and a.snapshot().cluster_id == "0123456789abcdef"
    with pytest.raises(ConflictError):  # the FSM's refusal comes back as its error
        await a.write(C.InitCluster(at=3.0, cluster_id="fedcba9876543210").encode())
    result = await a.propose(b"\xc1 not msgpack")
    assert result["ok"] is False and result["error"] == "WireError"
    assert a.snapshot().cluster_id == "0123456789abcdef" and len(raft.log) == 4


async def test_status_follows_scripted_leadership(autojump_clock: Any) -> None:
    raft = group()
    a, b = raft.store(A), raft.store(B)
    assert a.status().is_leader and a.status().role == "leader" and not b.status().is_leader
    term = a.status().term
    raft.set_leader(B)  # leadership moves
    assert b.status().is_leader and a.status().leader == B and a.status().term == term + 1
    raft.set_leader(None)  # no leader
    assert not a.status().has_quorum and a.status().leader is None
    assert raft.store(None).status().role == "replica"
    with pytest.raises(Exception, match="not a voter"):
        raft.set_leader("10.9.9.9:7947")


async def test_proposals_wait_for_a_leader_and_time_out_without_applying(autojump_clock: Any) -> None:
    raft = group(leader=None)
    store = raft.store(A)
    start = trio.current_time()
    with pytest.raises(ProposalTimeout):
        await store.propose(C.InitCluster(at=1.0, cluster_id="0123456789abcdef").encode(), timeout_s=2.0)
    assert trio.current_time() - start == pytest.approx(2.0)
    raft.set_leader(A)  # the abandoned proposal never applies later
    assert raft.log == [] and not store.snapshot().initialized

    async def leader_later() -> None:
        await trio.sleep(1.0)
        raft.set_leader(B)

    async with trio.open_nursery() as nursery:
        raft.set_leader(None)
        nursery.start_soon(leader_later)
        await initialised(raft)  # waits until B leads, then commits
    assert trio.current_time() - start == pytest.approx(3.0)
    assert store.snapshot().initialized


async def wait_held(raft: MemoryRaft, count: int) -> None:
    while raft.held < count:
        await trio.sleep(0.01)


async def test_held_proposals_commit_in_order_or_are_lost(autojump_clock: Any) -> None:
    raft = group()
    store = raft.store(A)
    await initialised(raft)
    raft.hold()  # a leader that cannot commit
    results: list[Any] = []
    errors: list[Exception] = []

    async def propose(tag: str) -> None:
        try:
            results.append(await store.write(C.Noop(at=2.0, tag=tag).encode()))
        except ProposalTimeout as exc:
            errors.append(exc)

    async with trio.open_nursery() as nursery:
        for count, tag in enumerate(("a", "b"), 1):
            nursery.start_soon(propose, tag)
            await wait_held(raft, count)
        await trio.sleep(0.5)
        assert raft.held == 2 and results == []
        raft.release()
    assert sorted(results) == ["a", "b"] and errors == []
    committed = [C.decode_command(cmd) for cmd in raft.log[-2:]]
    assert [getattr(c, "tag", None) for c in committed] == ["a", "b"]  # committed in order

    version = store.snapshot().version
    raft.hold()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(propose, "lost")
        await wait_held(raft, 1)
        assert raft.lose_uncommitted() == 1
    assert len(errors) == 1 and sorted(results) == ["a", "b"]
    raft.release()
    assert store.snapshot().version == version and raft.held == 0


async def test_subscribers_get_changes_in_commit_order_after_their_snapshot(autojump_clock: Any) -> None:
    raft = group()
    store = raft.store(B)
    await initialised(raft)
    async with store.subscribe() as changes:
        base = store.snapshot().version
        await store.write(C.SetJoinToken(at=2.0, join_token="P2PT-1-0123456789abcdef-" + "s" * 43).encode())
        await store.write(C.Noop(at=3.0).encode())  # changes nothing: no change record
        await store.write(C.SetJoinToken(at=4.0, join_token="P2PT-1-0123456789abcdef-" + "t" * 43).encode())
        got = [changes.receive_nowait(), changes.receive_nowait()]
        with pytest.raises(trio.WouldBlock):
            changes.receive_nowait()
    assert [c.version for c in got] == [base + 1, base + 2] and {c.kind for c in got} == {"cluster"}


async def test_membership_changes_and_leadership_transfer(autojump_clock: Any) -> None:
    raft = group()
    a = raft.store(A)
    with pytest.raises(NotLeaderError):
        await a.remove_voter(A)
    assert await a.transfer_leadership(C3) == C3
    await a.remove_voter(A)
    assert raft.voters == [B, C3]
    await a.add_voter("10.0.0.4:7947")
    assert raft.voters == [B, C3, "10.0.0.4:7947"]
    raft.set_leader(None)
    with pytest.raises(ProposalTimeout):
        await a.add_voter("10.0.0.5:7947")
    with pytest.raises(ProposalTimeout):
        await a.wait_leader(timeout_s=1.0)
