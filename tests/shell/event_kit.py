"""A memory store with a cluster and the ``events`` member service on it, for the event stream tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from types import SimpleNamespace
from typing import Any

import trio

from p2porch.clock import TrioClock
from p2porch.control.event_feed import serve_event_history
from p2porch.control.events import EventHistory
from p2porch.model import ServiceSpec
from p2porch.raft import commands as C
from p2porch.testing.memstore import MemoryRaft

A, B = "10.0.0.1:7947", "10.0.0.2:7947"


def create(name: str) -> bytes:
    return C.CreateService(at=2.0, service_id=name, spec=ServiceSpec(name=name, image="busybox")).encode()


def names(events: list[dict[str, Any]]) -> list[str]:
    return [e["service"] for e in events if e["type"] == "service"]


async def new_store(raft: MemoryRaft | None = None) -> Any:
    """A's store of ``raft`` (a one-voter group by default), its cluster initialised."""
    raft = raft or MemoryRaft([A], leader=A)
    store = raft.store(A)
    await store.write(C.InitCluster(at=1.0, cluster_id="0123456789abcdef").encode())
    return store


@asynccontextmanager
async def events_member(store: Any, history: EventHistory | None = None) -> AsyncIterator[Any]:
    """The ``events`` member service running on ``store`` for the block: ``.feed``, ``.clock``."""
    clock = TrioClock()
    ctx = SimpleNamespace(store=store, clock=clock, board=SimpleNamespace(event_feed=None))
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(serve_event_history, ctx, history))
        yield SimpleNamespace(store=store, clock=clock, feed=ctx.board.event_feed)
        nursery.cancel_scope.cancel()
