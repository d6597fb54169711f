"""Keeps a daemon's malloc heap small (shell: glibc's ``mallopt`` and ``malloc_trim`` through ctypes).

``limit_malloc_arenas`` (at the daemon's start, before its threads) makes every thread share glibc's
main arena: by default each thread that allocates gets an arena of its own (up to 8 per core), whose
freed pages stay resident apart from the others'. Start-up (imports, the join, Raft catch-up, the
first plans) frees more heap than an idle daemon uses again, and glibc keeps freed pages below the
top of the heap resident: ``trim_heap_periodically`` collects Python's garbage cycles and trims once
shortly after start, then collects and trims rarely (one wakeup every few minutes); the first trim logs
the RSS it gave back, and freezes what survived its collection (``gc.freeze``: modules, classes, the daemon's
long-lived objects), so that no later full collection walks them again: the member's collection after
a join paused the trio thread 0.15-0.37 s at 20 nodes under load, for 0.2-0.5 MB (issue 19). The price:
a frozen object that later becomes cyclic garbage is never freed (objects alive at the first trim).
Every later trim runs a full collection first: CPython starts one by itself only once the objects
promoted to the oldest generation reach a quarter of the survivors of the last one (tens of thousands
here), so an idle daemon's cyclic garbage (pyroute2 parses every netlink message of the overlay's reads
into objects that refer to each other: ~2,800 of them per daemon in its first minutes, issue 19) waited
~30 minutes in that generation and left its high-water mark in RSS; after the freeze a full collection
walks only what is not frozen (milliseconds at idle).
``fix_mmap_threshold`` (at the start too) makes every block of at least :data:`MMAP_THRESHOLD_BYTES`
a mapping of its own, returned to the system when freed: by default glibc raises that threshold to the
size of each mmapped block freed (up to 32 MiB), after which the idle daemon's transient buffers of
64 KiB-512 KiB (trio's wakeup drain, pyroute2's asyncio reads, subprocess pipes) were carved from the
brk heap, and what was allocated while one was live left it in holes that no trim hands back: the idle
leader's heap grew ~0.25 MB/h (docs/performance.md, "The idle leader's heap").
A daemon usually starts well before it joins (or inits) a cluster, and the join, the Raft
catch-up and, on the leader, admitting the other nodes come after that first trim: the member runtime
calls ``trim_heap_after`` once its services are up, so that start-up is trimmed too (issue 19). On a
C library without ``mallopt``/``malloc_trim`` (musl) they do nothing.
One collection where two were due: a first trim that finds a member trim pending (the daemon joined,
initialised or restarted as a member within the last ``delay_s``) is left to it, and that member trim
freezes as the first would have: a daemon that joined before its first trim ran two full collections
~20 s apart or, started by ``p2porch join``, back to back (~20 ms of CPU each, some inside a join burst:
issue 19, the twenty-eighth round). :class:`TrimState` is what the two share (the trio thread only).
"""

from __future__ import annotations

import ctypes
import gc
import logging
import time
from collections.abc import Callable

import trio

log = logging.getLogger(__name__)

FIRST_TRIM_AFTER_S = 20.0
TRIM_PERIOD_S = 300.0
#: glibc's mallopt parameter for the most arenas threads may use (malloc.h)
M_ARENA_MAX = -8
#: glibc's mallopt parameter for the smallest block mmapped on its own; setting it stops its growth
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 64 * 1024


def _libc_function(name: str) -> Callable[..., int] | None:
    try:
        function: Callable[..., int] = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None
    return function


def _malloc_trim() -> Callable[[int], int] | None:
    trim = _libc_function("malloc_trim")
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]  # type: ignore[attr-defined]
    trim.restype = ctypes.c_int  # type: ignore[attr-defined]
    return trim


def _mallopt(param: int, value: int) -> bool:
    """``mallopt(param, value)``; True when glibc took it (False without one)."""
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]  # type: ignore[attr-defined]
    mallopt.restype = ctypes.c_int  # type: ignore[attr-defined]
    return bool(mallopt(param, value) == 1)


def limit_malloc_arenas(count: int = 1) -> bool:
    """``mallopt(M_ARENA_MAX, count)``: threads share at most ``count`` arenas; True when glibc took it.

    Call it before the threads start: an arena a thread already has is kept."""
    return _mallopt(M_ARENA_MAX, count)


def fix_mmap_threshold(size: int = MMAP_THRESHOLD_BYTES) -> bool:
    """``mallopt(M_MMAP_THRESHOLD, size)``: blocks of ``size`` bytes or more are mmapped, and stay so (the
    dynamic threshold is off); True when glibc took it."""
    return _mallopt(M_MMAP_THRESHOLD, size)


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


def trim_heap(collect: bool = False, freeze: bool = False) -> tuple[float, float] | None:
    """Trim once (after a full ``gc.collect()`` when ``collect``, then ``gc.freeze()`` when ``freeze``);
    (RSS before, RSS after) in MB, or None without ``malloc_trim``."""
    trim = _malloc_trim()
    if trim is None:
        return None
    before = rss_mb()
    if collect:
        gc.collect()  # garbage cycles left by start-up hold heap blocks the trim could give back
    if freeze:
        gc.freeze()  # what survived start-up lives as long as the daemon: no later collection walks it
    trim(0)
    return before, rss_mb()


class TrimState:
    """The process's trims in flight: member trims waiting for their delay, and whether a first freeze
    ran. Owns nothing else; never trims."""

    def __init__(self) -> None:
        self.member_trims_pending = 0
        self.frozen = False


STATE = TrimState()


async def trim_heap_after(delay_s: float, what: str, state: TrimState | None = None) -> None:
    """Collect and trim once, ``delay_s`` after ``what`` (logged with the RSS given back and the pause);
    it also freezes the survivors when no first trim has yet (it was left to this one)."""
    state = STATE if state is None else state
    state.member_trims_pending += 1
    try:
        await trio.sleep(delay_s)
    finally:
        state.member_trims_pending -= 1
    started = time.perf_counter()
    freeze = not state.frozen
    result = trim_heap(collect=True, freeze=freeze)
    if result is not None:
        state.frozen = state.frozen or freeze
        took = time.perf_counter() - started
        log.info("heap trimmed after %s: RSS %.1f -> %.1f MB (paused %.3f s)", what, *result, took)


async def trim_heap_periodically(
    first_after_s: float = FIRST_TRIM_AFTER_S, period_s: float = TRIM_PERIOD_S, state: TrimState | None = None
) -> None:
    """Trim ``first_after_s`` after start (unless a member trim is pending, which collects and freezes
    then, or one already did), then every ``period_s``, until cancelled."""
    state = STATE if state is None else state
    await trio.sleep(first_after_s)
    if state.member_trims_pending or state.frozen:
        log.debug("the first heap trim is left to the member's")
    else:
        result = trim_heap(collect=True, freeze=True)
        if result is None:
            log.debug("malloc_trim is not available: the heap is not trimmed")
            return
        state.frozen = True
        log.info("heap trimmed after start: RSS %.1f -> %.1f MB", *result)
    while True:
        await trio.sleep(period_s)
        trim_heap(collect=True)  # the cyclic garbage of the period first (pyroute2's messages: issue 19)
