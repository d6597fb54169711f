"""The /events stream cannot make a node hold unbounded history for a reader that does not read."""

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


def create(i: int) -> bytes:
    spec = ServiceSpec(name=f"s{i}", image="busybox")
    return C.CreateService(at=2.0, service_id=f"s{i}", spec=spec).encode()


async def test_a_reader_that_falls_too_far_behind_is_cut_off_and_told(
    autojump_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(event_stream, "MAX_BACKLOG", 5)
    raft = MemoryRaft([A], leader=A)
    store = raft.store(A)
    await store.write(C.InitCluster(at=1.0, cluster_id="0123456789abcdef").encode())
    async with event_stream.open_event_stream(store, TrioClock()) as events:
        for i in range(5):  # exactly the backlog: nothing is lost yet
            await store.write(create(i))
        first = await events.__anext__()
        assert first["type"] == "service" and "s0" in str(first)
        for i in range(5, 20):  # the reader stops reading: more than MAX_BACKLOG pile up
            await store.write(create(i))
        with trio.fail_after(60):  # without the cut-off the stream would go on forever
            seen = [event async for event in events]
        assert seen[-1]["action"] == "overflow" and "reconnect" in seen[-1]["message"]
        assert 4 <= len(seen) - 1 <= 5  # what was queued before the cut, then the overflow notice
