"""``events --since/--until``: the node keeps its recent events (the ``events`` member service) and a
stream replays those in the window before it goes on live; with ``until`` it ends there (the stream had
neither: it began at the request and never ended)."""

from types import SimpleNamespace
from typing import Any

import pytest
import trio
import trio.testing

from p2porch.clock import TrioClock
from p2porch.control import event_stream
from p2porch.model import ServiceSpec
from p2porch.raft import commands as C
from p2porch.testing.memstore import MemoryRaft

A = "10.0.0.1:7947"


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


def create(name: str) -> bytes:
    return C.CreateService(at=2.0, service_id=name, spec=ServiceSpec(name=name, image="busybox")).encode()


async def member() -> tuple[Any, TrioClock, Any]:
    """A one-voter memory store with a cluster, a clock and the member context the history service uses."""
    store = MemoryRaft([A], leader=A).store(A)
    await store.write(C.InitCluster(at=1.0, cluster_id="0123456789abcdef").encode())
    clock = TrioClock()
    return store, clock, SimpleNamespace(store=store, clock=clock, board=SimpleNamespace(event_history=None))


def names(events: list[dict[str, Any]]) -> list[str]:
    return [e["service"] for e in events if e["type"] == "service"]


async def test_since_replays_the_kept_events_then_goes_on_live_and_until_ends_it(autojump_clock: Any) -> None:
    store, clock, ctx = await member()
    async with trio.open_nursery() as nursery:
        await nursery.start(event_stream.serve_event_history, ctx)
        history = ctx.board.event_history
        times = {}
        for name in ("s0", "s1", "s2"):
            await trio.sleep(60)
            times[name] = clock.now()
            await store.write(create(name))
        await trio.sleep(1)

        # since s1 was created, unbounded: s1 and s2 from the history, then s3 as it happens
        since = times["s1"] - 0.5
        async with event_stream.open_event_stream(store, clock, history, since=since) as events:
            replayed = [await events.__anext__(), await events.__anext__()]
            assert names(replayed) == ["s1", "s2"] and all(e["at"] >= since for e in replayed)
            await store.write(create("s3"))
            with trio.fail_after(5):
                assert names([await events.__anext__()]) == ["s3"]

        # until in the past: the window's kept events, then the stream ends
        window = event_stream.open_event_stream(store, clock, history, since=times["s0"] - 1, until=since)
        async with window as events:
            with trio.fail_after(5):
                assert names([e async for e in events]) == ["s0"]

        # until ahead: live events until then, then the end (nothing after it)
        until = clock.now() + 30
        async with event_stream.open_event_stream(store, clock, history, until=until) as events:
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
        nursery.cancel_scope.cancel()


async def test_without_since_or_until_nothing_is_replayed(autojump_clock: Any) -> None:
    store, clock, ctx = await member()
    async with trio.open_nursery() as nursery:
        await nursery.start(event_stream.serve_event_history, ctx)
        await store.write(create("old"))
        await trio.sleep(1)
        async with event_stream.open_event_stream(store, clock, ctx.board.event_history) as events:
            await store.write(create("new"))
            with trio.fail_after(5):
                assert names([await events.__anext__()]) == ["new"]
        nursery.cancel_scope.cancel()
