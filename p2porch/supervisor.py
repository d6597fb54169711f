"""Helpers for long-running services: supervision with back-off and change-channel handling (shell).

Member services and leader loops run under :func:`supervise`: a failure is recorded in the health
board and retried with back-off, never taking the daemon (or the other services) down.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from .membership.manager import ClusterManager

log = logging.getLogger(__name__)


@asynccontextmanager
async def state_changes(manager: ClusterManager) -> AsyncIterator[trio.MemoryReceiveChannel[Any]]:
    """A channel that receives one item per committed change batch (the items themselves are opaque)."""
    store = manager.require_store()
    async with store.subscribe() as changes:
        yield changes


async def supervise(manager: ClusterManager, name: str, body: Callable[[], Awaitable[None]]) -> None:
    """Run ``body`` forever, recording failures in ``manager.health`` and retrying with back-off."""
    delay_s = 0.5
    while True:
        try:
            manager.health[name] = "running"
            await body()
            return
        except Exception as exc:  # a member service must not take the daemon down
            manager.health[name] = f"failed: {type(exc).__name__}: {exc}"
            log.error("%s failed, retrying in %.1f s: %s", name, delay_s, exc, exc_info=log.isEnabledFor(10))
        await trio.sleep(delay_s)
        delay_s = min(delay_s * 2, 30.0)


def drain(channel: trio.MemoryReceiveChannel[Any]) -> None:
    """Discard whatever is already queued on ``channel``."""
    while True:
        try:
            channel.receive_nowait()
        except trio.WouldBlock:
            return


async def forward(source: trio.MemoryReceiveChannel[Any], sink: trio.MemorySendChannel[Any]) -> None:
    async for item in source:
        sink.send_nowait(item)


async def wait_any(*waits: Callable[[], Awaitable[Any]]) -> None:
    """Return as soon as one of the waits returns."""
    async with trio.open_nursery() as nursery:

        async def one(wait: Callable[[], Awaitable[Any]]) -> None:
            await wait()
            nursery.cancel_scope.cancel()

        for wait in waits:
            nursery.start_soon(one, wait)
