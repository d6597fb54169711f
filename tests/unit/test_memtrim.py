"""The heap keeper: one malloc arena, a collect-and-trim after start, then a trim every period."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref

import pytest
import trio
import trio.testing

from p2porch import memtrim


@pytest.fixture(autouse=True)
def fresh_trim_state(monkeypatch) -> None:
    """Each test's trims start as a new daemon's (no first freeze yet, no member trim pending)."""
    monkeypatch.setattr(memtrim, "STATE", memtrim.TrimState())


# A child that keeps 4 threads alive at once, each having allocated with malloc, then prints the
# number of arenas glibc's malloc_stats reports (on stderr).
_ARENAS = r"""
import ctypes, sys, threading
from p2porch import memtrim
if sys.argv[1] == "limit":
    assert memtrim.limit_malloc_arenas() is True
barrier = threading.Barrier(5)
def work():
    blocks = [bytearray(4000) for _ in range(50)]
    barrier.wait()
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads:
    t.start()
barrier.wait()
ctypes.CDLL(None).malloc_stats()
barrier.wait()
for t in threads:
    t.join()
"""


def arenas(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", _ARENAS, mode], capture_output=True, text=True, check=True)
    return sum(1 for line in done.stderr.splitlines() if line.startswith("Arena "))


def test_limiting_arenas_makes_threads_share_the_main_arena() -> None:
    assert arenas("default") > 1  # glibc gives allocating threads their own arenas: the check can fail
    assert arenas("limit") == 1


# A child that frees a 1 MiB block (mmapped: above glibc's first threshold of 128 KiB), then keeps a
# 200 KiB one, and prints how many blocks are mmapped (mallinfo2's hblks) before and while it lives.
_THRESHOLD = r"""
import ctypes, sys
from p2porch import memtrim
if sys.argv[1] == "fixed":
    assert memtrim.fix_mmap_threshold() is True
class Info(ctypes.Structure):
    names = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
    _fields_ = [(n, ctypes.c_size_t) for n in names.split()]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.free(libc.malloc(1024 * 1024))
before = libc.mallinfo2().hblks
block = libc.malloc(200 * 1024)
print(before, libc.mallinfo2().hblks)
libc.free(block)
"""


def mmapped_blocks(mode: str) -> tuple[int, int]:
    done = subprocess.run(
        [sys.executable, "-c", _THRESHOLD, mode], capture_output=True, text=True, check=True
    )
    before, during = done.stdout.split()
    return int(before), int(during)


def test_a_fixed_mmap_threshold_keeps_big_blocks_out_of_the_heap() -> None:
    before, during = mmapped_blocks("default")
    assert during == before  # glibc raised its threshold to 1 MiB: the 200 KiB block is in the heap
    before, during = mmapped_blocks("fixed")
    assert during == before + 1  # fixed at 64 KiB: mmapped on its own, returned when freed


def test_trim_heap_returns_rss_before_and_after() -> None:
    result = memtrim.trim_heap()
    assert result is not None  # glibc here
    before, after = result
    assert before > 0 and after > 0


class _Node:
    other: _Node | None = None


def test_trim_heap_with_collect_frees_garbage_cycles_first() -> None:
    gc.disable()
    try:
        a, b = _Node(), _Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        del a, b
        assert gone() is not None  # a cycle: only the collector frees it
        assert memtrim.trim_heap(collect=True) is not None
        assert gone() is None
    finally:
        gc.enable()


def test_trim_heap_with_freeze_moves_the_survivors_out_of_later_collections() -> None:
    assert gc.get_freeze_count() == 0
    try:
        kept = [_Node() for _ in range(100)]
        assert memtrim.trim_heap(collect=True, freeze=True) is not None
        frozen = gc.get_freeze_count()
        assert frozen >= len(kept)
        assert not any(gc.is_tracked(n) and n in gc.get_objects(generation=2) for n in kept[:3])
    finally:
        gc.unfreeze()


def record_trims(monkeypatch, rss: tuple[float, float] = (2.0, 1.0)) -> list[tuple[float, bool, bool]]:
    """``trim_heap`` replaced: each call's (trio time, collect, freeze) goes to the list returned."""
    calls: list[tuple[float, bool, bool]] = []

    def fake_trim(collect: bool = False, freeze: bool = False) -> tuple[float, float]:
        calls.append((trio.current_time(), collect, freeze))
        return rss

    monkeypatch.setattr(memtrim, "trim_heap", fake_trim)
    return calls


def run_mocked(main) -> None:
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_collects_and_trims_after_the_first_delay_then_trims_every_period(monkeypatch) -> None:
    calls = record_trims(monkeypatch)

    async def main() -> None:
        with trio.move_on_after(1000):
            await memtrim.trim_heap_periodically(first_after_s=20, period_s=300)

    run_mocked(main)
    # the first trim collects and freezes the survivors; the later ones collect (no freeze) and trim
    assert calls == [(20, True, True), (320, True, False), (620, True, False), (920, True, False)]


def test_cyclic_garbage_made_after_start_is_freed_by_the_next_period() -> None:
    """The real trim: a cycle made after the first trim is gone one period later, whatever CPython's own
    full-collection rule would wait for (automatic collections are off here)."""
    gone: list[weakref.ref[_Node]] = []

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(memtrim.trim_heap_periodically, 20, 300)
            await trio.sleep(30)  # after the first trim (and its freeze)
            a, b = _Node(), _Node()
            a.other, b.other = b, a
            gone.append(weakref.ref(a))
            del a, b
            await trio.sleep(200)
            assert gone[0]() is not None  # a cycle: nothing frees it before the next trim
            await trio.sleep(100)  # the trim at 320 s
            nursery.cancel_scope.cancel()

    gc.disable()
    try:
        run_mocked(main)
    finally:
        gc.enable()
        gc.unfreeze()
    assert gone[0]() is None


def test_without_malloc_trim_it_stops_after_the_first_try(monkeypatch) -> None:
    calls: list[float] = []
    monkeypatch.setattr(
        memtrim, "trim_heap", lambda collect=False, freeze=False: calls.append(trio.current_time())
    )

    async def main() -> None:
        await memtrim.trim_heap_periodically(first_after_s=5, period_s=10)

    run_mocked(main)
    assert calls == [5]


def test_trim_after_collects_and_trims_once_after_its_delay(monkeypatch, caplog) -> None:
    calls = record_trims(monkeypatch, (60.4, 58.9))
    state = memtrim.TrimState()
    state.frozen = True  # the first trim ran

    async def main() -> None:
        with trio.move_on_after(1000):
            await memtrim.trim_heap_after(20, "the member started", state)

    caplog.set_level("INFO", logger="p2porch.memtrim")
    run_mocked(main)
    assert calls == [(20, True, False)]
    assert "heap trimmed after the member started: RSS 60.4 -> 58.9 MB" in caplog.text


def both_trims(monkeypatch, member_at: float) -> list[tuple[float, bool, bool]]:
    """The daemon's trimmer from 0 and a member's trim ``delay_s`` = 20 after ``member_at`` (a join), on one
    state: every trim's (time, collect, freeze)."""
    calls = record_trims(monkeypatch)
    state = memtrim.TrimState()

    async def member() -> None:
        await trio.sleep(member_at)
        await memtrim.trim_heap_after(20, "the member started", state)

    async def main() -> None:
        with trio.move_on_after(400):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(memtrim.trim_heap_periodically, 20, 300, state)
                nursery.start_soon(member)

    run_mocked(main)
    return calls


def test_a_join_before_the_first_trim_leaves_one_collection_that_freezes(monkeypatch) -> None:
    """Joined 3 s after start: the first trim (20 s) finds the member's pending and leaves it the
    collection and the freeze (23 s); before, both collected, the first froze (20 s and 23 s)."""
    assert both_trims(monkeypatch, member_at=3) == [(23, True, True), (320, True, False)]


def test_a_member_trim_that_froze_first_leaves_the_first_trim_out(monkeypatch) -> None:
    """A daemon restarted as a member (its services before its trimmer): one collection, one freeze."""
    assert both_trims(monkeypatch, member_at=0) == [(20, True, True), (320, True, False)]


def test_a_join_after_the_first_trim_collects_without_a_second_freeze(monkeypatch) -> None:
    assert both_trims(monkeypatch, member_at=30) == [(20, True, True), (50, True, False), (320, True, False)]
