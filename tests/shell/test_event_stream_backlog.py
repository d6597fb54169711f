"""The /events stream cannot make a node hold unbounded events for a reader that does not read."""

from typing import Any

import pytest
import trio
import trio.testing
from event_kit import create, events_member, new_store

from p2porch.control import event_feed
from p2porch.control.event_stream import open_event_stream


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def test_a_reader_that_falls_too_far_behind_is_cut_off_and_told(
    autojump_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(event_feed, "MAX_BACKLOG", 5)
    store = await new_store()
    async with events_member(store) as member, open_event_stream(member.feed, store, member.clock) as events:
        for i in range(5):  # exactly the backlog: nothing is lost yet
            await store.write(create(f"s{i}"))
            await trio.testing.wait_all_tasks_blocked()  # the feed keeps up with the store
        first = await events.__anext__()
        assert first["type"] == "service" and "s0" in str(first)
        for i in range(5, 20):  # the reader stops reading: more than MAX_BACKLOG pile up
            await store.write(create(f"s{i}"))
            await trio.testing.wait_all_tasks_blocked()
        with trio.fail_after(60):  # without the cut-off the stream would go on forever
            seen = [event async for event in events]
        assert seen[-1]["action"] == "overflow" and "reconnect" in seen[-1]["message"]
        assert len(seen) - 1 == 5  # what was queued before the cut, then the overflow notice
        assert [e["service"] for e in seen[:-1]] == ["s1", "s2", "s3", "s4", "s5"]


async def test_when_the_store_cuts_the_feed_off_its_streams_are_told(
    autojump_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The feed fell behind the store (its changes were dropped): its streams missed events, so they end
    with the overflow notice, and the feed goes on with new changes."""
    monkeypatch.setattr(event_feed, "MAX_BACKLOG", 3)
    store = await new_store()
    async with events_member(store) as member, open_event_stream(member.feed, store, member.clock) as events:
        await store.write_together([create(f"s{i}") for i in range(6)])  # one delivery: the feed is cut
        with trio.fail_after(60):
            seen = [event async for event in events]
        assert [e["action"] for e in seen] == ["created"] * 3 + ["overflow"]  # the store's buffer, then
        await trio.testing.wait_all_tasks_blocked()
        async with open_event_stream(member.feed, store, member.clock) as again:
            await store.write(create("after"))
            assert (await again.__anext__())["service"] == "after"
