"""Helpers for long-running services: supervision with back-off and change-channel handling (shell).

Member services and leader loops run under :func:`supervise`: a failure is recorded in the health
``health`` map and retried with back-off, never taking the daemon (or the other services) down.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

__all__ = ["describe_failure", "drain", "forward", "supervise", "wait_any"]

log = logging.getLogger(__name__)


FIRST_DELAY_S = 0.5
MAX_DELAY_S = 30.0


async def supervise(
    health: dict[str, str],
    name: str,
    body: Callable[[], Awaitable[None]],
    *,
    max_delay_s: float = MAX_DELAY_S,
) -> None:
    """Run ``body`` until it returns, recording failures in ``health[name]`` and retrying with back-off
    (doubling from ``FIRST_DELAY_S`` to ``max_delay_s``; a body that ran ``max_delay_s`` or longer before
    it failed starts again from the first delay: a failure after hours of work is not a crash loop)."""
    delay_s = FIRST_DELAY_S
    while True:
        started = trio.current_time()
        try:
            health[name] = "running"
            await body()
            return
        except Exception as exc:  # a member service must not take the daemon down
            if trio.current_time() - started >= max_delay_s:
                delay_s = FIRST_DELAY_S
            why = describe_failure(exc)
            health[name] = f"failed: {why}"
            log.error("%s failed, retrying in %.1f s: %s", name, delay_s, why, exc_info=log.isEnabledFor(10))
        await trio.sleep(delay_s)
        delay_s = min(delay_s * 2, max_delay_s)


def describe_failure(exc: BaseException) -> str:
    """``Type: message`` of the exception, or of each one inside a (nested) exception group, joined by
    "; ": a service's nursery wraps its error in a group whose own text says only how many it holds."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe_failure(inner) for inner in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


def drain(channel: trio.MemoryReceiveChannel[Any]) -> None:
    """Discard whatever is already queued on ``channel``."""
    while True:
        try:
            channel.receive_nowait()
        except trio.WouldBlock:
            return


def drained(channel: trio.MemoryReceiveChannel[Any]) -> list[Any]:
    """Take whatever is already queued on ``channel``, in order."""
    items = []
    while True:
        try:
            items.append(channel.receive_nowait())
        except trio.WouldBlock:
            return items


async def forward(source: trio.MemoryReceiveChannel[Any], sink: trio.MemorySendChannel[Any]) -> None:
    """Copy every item of ``source`` to ``sink`` (an unbounded channel) until ``source`` closes."""
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
