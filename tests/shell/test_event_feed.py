"""The ``events`` member service describes each change once and keeps leader changes: a live stream
used to describe every change a second time for itself (its own store subscription), and the leader
changes it polled for were in no history, so ``events --since`` never showed an election."""

from typing import Any

import pytest
import trio
import trio.testing
from event_kit import A, B, create, events_member, names, new_store

from p2porch.control import event_feed
from p2porch.control.event_stream import open_event_stream
from p2porch.control.events import EventHistory
from p2porch.testing.memstore import MemoryRaft


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def test_each_change_is_described_once_whatever_the_streams(
    autojump_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    described: list[str] = []
    real = event_feed.describe_change

    def counting(change: Any, *args: Any) -> Any:
        described.append(change.key)
        return real(change, *args)

    monkeypatch.setattr(event_feed, "describe_change", counting)
    store = await new_store()
    async with events_member(store) as member:
        feed, clock = member.feed, member.clock
        async with (
            open_event_stream(feed, store, clock) as one,
            open_event_stream(feed, store, clock) as two,
            open_event_stream(feed, store, clock, since=0.0) as three,
        ):
            await store.write(create("web"))
            with trio.fail_after(5):
                seen = [await one.__anext__(), await two.__anext__(), await three.__anext__()]
        assert names(seen) == ["web"] * 3
        assert described == ["web"]  # once, for the history and the three streams


async def test_leader_changes_are_kept_for_since(autojump_clock: Any) -> None:
    raft = MemoryRaft([A, B], leader=A)
    store = await new_store(raft)
    async with events_member(store) as member:
        start = member.clock.now()
        await trio.sleep(1)
        raft.set_leader(None)
        await trio.sleep(1)
        raft.set_leader(B)
        await trio.sleep(1)
        async with open_event_stream(
            member.feed, store, member.clock, since=start, until=member.clock.now()
        ) as events:
            with trio.fail_after(5):
                kept = [e async for e in events]
    assert [(e["type"], e["action"], e["leader"]) for e in kept] == [
        ("leader", "lost", None),
        ("leader", "elected", B),
    ]
    assert kept[0]["at"] == pytest.approx(start + 1) and kept[1]["at"] == pytest.approx(start + 2)


async def test_the_history_outlives_a_member_run_of_the_same_cluster(autojump_clock: Any) -> None:
    """A key switch or a Raft role switch restarts the member services: the daemon's history stays (it
    was the board's, and such a restart emptied it)."""
    history = EventHistory()
    store = await new_store()
    async with events_member(store, history):
        await store.write(create("before"))
        await trio.testing.wait_all_tasks_blocked()
    async with events_member(store, history) as member:
        await store.write(create("after"))
        await trio.testing.wait_all_tasks_blocked()
        async with open_event_stream(
            member.feed, store, member.clock, since=0.0, until=member.clock.now()
        ) as events:
            assert names([e async for e in events]) == ["before", "after"]


async def test_a_stream_ends_when_its_member_run_stops(autojump_clock: Any) -> None:
    store = await new_store()
    async with events_member(store) as member:
        feed, clock = member.feed, member.clock
        stream = open_event_stream(feed, store, clock)
        events = await stream.__aenter__()
    with trio.fail_after(5):
        assert [e async for e in events] == []  # ended, without an overflow notice
    await stream.__aexit__(None, None, None)
