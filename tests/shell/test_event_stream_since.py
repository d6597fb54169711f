"""``events --since/--until``: the node keeps its recent events (the ``events`` member service) and a
stream replays those in the window before it goes on live; with ``until`` it ends there (the stream had
neither: it began at the request and never ended)."""

from typing import Any

import pytest
import trio
import trio.testing
from event_kit import create, events_member, names, new_store

from p2porch.control.event_stream import open_event_stream


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def test_since_replays_the_kept_events_then_goes_on_live_and_until_ends_it(autojump_clock: Any) -> None:
    store = await new_store()
    async with events_member(store) as member:
        feed, clock = member.feed, member.clock
        times = {}
        for name in ("s0", "s1", "s2"):
            await trio.sleep(60)
            times[name] = clock.now()
            await store.write(create(name))
        await trio.sleep(1)

        # since s1 was created, unbounded: s1 and s2 from the history, then s3 as it happens
        since = times["s1"] - 0.5
        async with open_event_stream(feed, store, clock, since=since) as events:
            replayed = [await events.__anext__(), await events.__anext__()]
            assert names(replayed) == ["s1", "s2"] and all(e["at"] >= since for e in replayed)
            await store.write(create("s3"))
            with trio.fail_after(5):
                assert names([await events.__anext__()]) == ["s3"]

        # until in the past: the window's kept events, then the stream ends
        window = open_event_stream(feed, store, clock, since=times["s0"] - 1, until=since)
        async with window as events:
            with trio.fail_after(5):
                assert names([e async for e in events]) == ["s0"]

        # until ahead: live events until then, then the end (nothing after it)
        until = clock.now() + 30
        async with open_event_stream(feed, store, clock, until=until) as events:
            seen: list[dict[str, Any]] = []

            async def read() -> None:
                seen.extend([e async for e in events])

            async with trio.open_nursery() as readers:
                readers.start_soon(read)
                await trio.sleep(10)
                await store.write(create("s4"))
                await trio.sleep(40)  # past until: the reader's loop has ended
                await store.write(create("s5"))
        # until without since also replays the kept events up to it (docker events --until)
        assert names(seen) == ["s0", "s1", "s2", "s3", "s4"]
        assert clock.now() > until


async def test_without_since_or_until_nothing_is_replayed(autojump_clock: Any) -> None:
    store = await new_store()
    async with events_member(store) as member:
        await store.write(create("kept"))
        await trio.sleep(1)
        await store.write(create("old"))  # committed before the request, not described yet: not shown
        async with open_event_stream(member.feed, store, member.clock) as events:
            await store.write(create("new"))
            with trio.fail_after(5):
                assert names([await events.__anext__()]) == ["new"]


async def test_a_replay_takes_what_the_feed_has_not_described_yet_without_waiting(
    autojump_clock: Any,
) -> None:
    """The replay used to poll every 10 ms (up to 2 s) until the history had described every change up
    to the stream's start; now the stream subscribes to the feed in one step: what is described later
    comes live, and no time passes (the clock jumps only if someone sleeps)."""
    store = await new_store()
    async with events_member(store) as member:
        await store.write(create("early"))
        await trio.testing.wait_all_tasks_blocked()
        started = trio.current_time()
        await store.write(create("late"))  # not described yet when the stream starts
        async with open_event_stream(member.feed, store, member.clock, since=0.0) as events:
            got = [await events.__anext__(), await events.__anext__()]
        assert names(got) == ["early", "late"]
        assert trio.current_time() == started


class Ticking:
    """A clock that moves on a second at every reading (the wall clock between two readings)."""

    def __init__(self, at: float) -> None:
        self.at = at

    def now(self) -> float:
        self.at += 1.0
        return self.at


async def test_until_passing_between_two_readings_ends_the_stream(autojump_clock: Any) -> None:
    store = await new_store()
    clock: Any = Ticking(100.0)
    async with (
        events_member(store) as member,
        open_event_stream(member.feed, store, clock, until=101.5) as events,
    ):
        with trio.fail_after(5):
            assert [e async for e in events] == []  # no "seconds must be non-negative"
