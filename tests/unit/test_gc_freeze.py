"""Full collections that are slow freeze their survivors; nothing else does."""

from __future__ import annotations

import gc

from p2porch.gc_freeze import SLOW_FULL_COLLECTION_S, freeze_after, install, uninstall


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
