"""Full collections that are slow freeze their survivors; nothing else does. The young generation's
threshold the entry points set."""

from __future__ import annotations

import gc

import pytest

from p2porch.errors import ConfigError
from p2porch.gc_freeze import (
    ENV,
    LARGE_HEAP_OBJECTS,
    SLOW_FULL_COLLECTION_S,
    YOUNG_ENV,
    YOUNG_THRESHOLD,
    _Hook,
    figures,
    freeze_after,
    install,
    uninstall,
    wanted,
    young_raised,
    young_threshold,
)


def test_only_a_slow_full_collection_freezes() -> None:
    assert freeze_after(2, SLOW_FULL_COLLECTION_S)
    assert freeze_after(2, 1.9)
    assert not freeze_after(2, SLOW_FULL_COLLECTION_S / 2)  # a small heap is left alone
    assert not freeze_after(1, 5.0)  # young generations never
    assert not freeze_after(0, 5.0)
    assert not freeze_after(-1, 5.0)


def test_installed_a_full_collection_moves_its_survivors_to_the_permanent_generation() -> None:
    gc.unfreeze()  # whatever an earlier test left frozen
    hooks = gc.callbacks[:]
    gc.callbacks.clear()  # and any hook it left: only ours runs
    hook = install(slow_s=0.0)  # every full collection counts as slow
    try:
        gc.collect()
        hook.freezes = 0
        kept = [{"n": i} for i in range(20_000)]  # tracked containers that survive
        gc.collect()
        assert hook.freezes == 1
        assert gc.get_freeze_count() >= len(kept)
        assert not any(o is kept[0] for o in gc.get_objects(generation=2))  # out of the walked generations
        gc.collect(1)  # a young collection freezes nothing
        assert hook.freezes == 1
    finally:
        gc.callbacks[:] = hooks
        gc.unfreeze()


def test_a_fast_full_collection_freezes_nothing() -> None:
    hooks = gc.callbacks[:]
    gc.callbacks.clear()  # any hook an earlier test left: only ours runs
    frozen = gc.get_freeze_count()
    hook = install(slow_s=3600.0)
    try:
        gc.collect()
        assert hook.freezes == 0
        assert gc.get_freeze_count() <= frozen
    finally:
        gc.callbacks[:] = hooks


def test_installing_twice_keeps_one_hook() -> None:
    hooks = gc.callbacks[:]
    gc.callbacks.clear()
    try:
        first = install(slow_s=3600.0)
        assert install() is first
        assert gc.callbacks == [first]
    finally:
        gc.callbacks[:] = hooks


def test_uninstalled_the_hook_is_gone_and_what_it_froze_thawed() -> None:
    hooks = gc.callbacks[:]
    gc.callbacks.clear()
    try:
        hook = install(slow_s=0.0)
        gc.collect()
        assert hook.freezes == 1 and gc.get_freeze_count() > 0
        uninstall(hook)
        assert gc.callbacks == [] and gc.get_freeze_count() == 0
    finally:
        gc.callbacks[:] = hooks
        gc.unfreeze()


def test_the_observer_is_told_each_collections_generation_and_duration() -> None:
    hooks = gc.callbacks[:]
    gc.callbacks.clear()
    seen: list[tuple[int, float, int]] = []
    gc.disable()  # no automatic collection between the two asked for
    try:
        hook = install(slow_s=3600.0)
        hook.observer = lambda generation, took, info: seen.append((generation, took, info["collected"]))
        gc.collect()
        gc.collect(1)
        assert [g for g, _, _ in seen] == [2, 1]
        assert all(took >= 0.0 and collected >= 0 for _, took, collected in seen)
        hook.observer = None
        gc.collect()
        assert len(seen) == 2  # no observer: nobody told
    finally:
        gc.enable()
        gc.callbacks[:] = hooks


def test_an_end_without_its_start_is_neither_timed_nor_frozen() -> None:
    seen: list[int] = []
    hook = _Hook(slow_s=0.0)  # every full collection counts as slow; called by hand, not installed
    hook.observer = lambda generation, took, info: seen.append(generation)
    hook("stop", {"generation": 2, "collected": 0})  # its start was before the hook was there
    assert seen == [] and hook.freezes == 0
    hook("start", {"generation": 0})
    hook("stop", {"generation": 0, "collected": 0})
    hook("stop", {"generation": 0, "collected": 0})  # a second end of the same start
    assert seen == [0]


def test_a_daemon_told_p2porch_gc_freeze_0_leaves_the_hook_out() -> None:
    assert wanted({})
    assert wanted({ENV: "1"})
    assert not wanted({ENV: "0"})
    assert not wanted({ENV: " 0 "})


def test_figures_report_the_hooks_freezes_and_the_frozen_objects() -> None:
    hooks = gc.callbacks[:]
    gc.callbacks.clear()
    try:
        assert figures()["freezes"] is None  # no hook: none counted
        hook = install(slow_s=0.0)
        kept = [{"n": i} for i in range(1_000)]
        gc.collect()
        seen = figures()
        assert seen["freezes"] == hook.freezes == 1
        assert seen["frozen"] == gc.get_freeze_count() >= len(kept)
        assert len(seen["count"]) == len(seen["collections"]) == 3 and seen["collections"][2] >= 1
    finally:
        gc.callbacks[:] = hooks
        gc.unfreeze()


def test_the_young_threshold_is_the_daemons_unless_the_environment_names_another() -> None:
    assert young_threshold({}) == YOUNG_THRESHOLD > 700  # more than CPython's default
    assert young_threshold({YOUNG_ENV: " 700 "}) == 700  # a benchmark's baseline
    assert young_threshold({YOUNG_ENV: ""}) == YOUNG_THRESHOLD
    for bad in ("0", "-5", "many", "1.5"):
        with pytest.raises(ConfigError) as caught:
            young_threshold({YOUNG_ENV: bad})
        assert caught.value.field == YOUNG_ENV and YOUNG_ENV in caught.value.message


def test_a_slow_full_collection_raises_the_young_threshold_and_uninstall_puts_it_back() -> None:
    gc.unfreeze()
    hooks, was = gc.callbacks[:], gc.get_threshold()
    gc.callbacks.clear()
    try:
        gc.set_threshold(700, 11, 12)
        hook = install(slow_s=3600.0, young=YOUNG_THRESHOLD)  # no collection is slow: nothing raised
        kept: list[object] = [[i] for i in range(1_000)]
        gc.collect()
        assert gc.get_threshold() == (700, 11, 12) and hook.freezes == 0
        gc.freeze()
        if gc.get_freeze_count() < LARGE_HEAP_OBJECTS:  # this test process's heap is small: make it large
            kept.extend([i] for i in range(LARGE_HEAP_OBJECTS))  # lists: always tracked
        gc.unfreeze()
        assert gc.get_threshold() == (700, 11, 12)  # its collections were not slow
        hook.slow_s = 0.0  # every full collection is slow now
        gc.collect(1)  # a middle one: never
        assert gc.get_threshold() == (700, 11, 12)
        gc.collect()
        assert hook.freezes == 1 and gc.get_threshold() == (YOUNG_THRESHOLD, 11, 12)
        gc.set_threshold(YOUNG_THRESHOLD * 2, 11, 12)  # a higher one is never lowered
        gc.collect()
        assert gc.get_threshold() == (YOUNG_THRESHOLD * 2, 11, 12)
        uninstall(hook)
        assert gc.get_threshold() == (700, 11, 12) and gc.get_freeze_count() == 0 and kept
    finally:
        gc.callbacks[:] = hooks
        gc.unfreeze()
        gc.set_threshold(*was)


def test_only_a_large_heaps_freeze_raises_the_young_threshold_never_lowering_it() -> None:
    assert young_raised(YOUNG_THRESHOLD, 700, LARGE_HEAP_OBJECTS)
    assert not young_raised(YOUNG_THRESHOLD, 700, LARGE_HEAP_OBJECTS - 1)  # an idle daemon's slow one
    assert not young_raised(YOUNG_THRESHOLD, YOUNG_THRESHOLD, LARGE_HEAP_OBJECTS)  # already
    assert not young_raised(700, YOUNG_THRESHOLD, LARGE_HEAP_OBJECTS)  # never lowered


def test_without_young_a_slow_full_collection_leaves_the_thresholds_alone() -> None:
    hooks, was = gc.callbacks[:], gc.get_threshold()
    gc.callbacks.clear()
    try:
        gc.set_threshold(700, 10, 10)
        hook = install(slow_s=0.0)
        gc.collect()
        assert hook.freezes == 1 and gc.get_threshold() == (700, 10, 10)
    finally:
        gc.callbacks[:] = hooks
        gc.unfreeze()
        gc.set_threshold(*was)
