"""Gives freed malloc memory back to the kernel (shell: glibc's ``malloc_trim`` through ctypes).

Start-up (imports, the join, Raft catch-up, the first plans) frees more heap than an idle daemon uses
again, and glibc keeps freed pages below the top of the heap resident. ``trim_heap_periodically``
trims once shortly after start and then rarely (one wakeup every few minutes); the first trim logs the
RSS it gave back. On a C library without ``malloc_trim`` (musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable

import trio

log = logging.getLogger(__name__)

FIRST_TRIM_AFTER_S = 20.0
TRIM_PERIOD_S = 300.0


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def rss_mb() -> float:
    """This process's resident set (VmRSS) in MB; 0 when /proc cannot tell."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def trim_heap() -> tuple[float, float] | None:
    """Trim once; (RSS before, RSS after) in MB, or None without ``malloc_trim``."""
    trim = _malloc_trim()
    if trim is None:
        return None
    before = rss_mb()
    trim(0)
    return before, rss_mb()


async def trim_heap_periodically(
    first_after_s: float = FIRST_TRIM_AFTER_S, period_s: float = TRIM_PERIOD_S
) -> None:
    """Trim ``first_after_s`` after start, then every ``period_s``, until cancelled."""
    await trio.sleep(first_after_s)
    result = trim_heap()
    if result is None:
        log.debug("malloc_trim is not available: the heap is not trimmed")
        return
    log.info("heap trimmed after start: RSS %.1f -> %.1f MB", *result)
    while True:
        await trio.sleep(period_s)
        trim_heap()
