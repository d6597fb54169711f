"""Full collections that are slow freeze their survivors; nothing else does."""

from __future__ import annotations

import gc

from p2porch.gc_freeze import SLOW_FULL_COLLECTION_S, freeze_after, install


def test_only_a_slow_full_collection_freezes() -> None:
    assert freeze_after(2, SLOW_FULL_COLLECTION_S)
    assert freeze_after(2, 1.9)
    assert not freeze_after(2, SLOW_FULL_COLLECTION_S / 2)  # a small heap is left alone
    assert not freeze_after(1, 5.0)  # young generations never
    assert not freeze_after(0, 5.0)
    assert not freeze_after(-1, 5.0)


def test_installed_a_full_collection_moves_its_survivors_to_the_permanent_generation() -> None:
    kept = [{"n": i} for i in range(20_000)]  # tracked containers that survive
    hook = install(slow_s=0.0)  # every full collection counts as slow
    try:
        before = gc.get_freeze_count()
        gc.collect()
        assert hook.freezes == 1
        assert gc.get_freeze_count() >= before + len(kept)
        gc.collect(1)  # a young collection freezes nothing
        assert hook.freezes == 1
    finally:
        gc.callbacks.remove(hook)
        gc.unfreeze()
    assert kept


def test_a_fast_full_collection_freezes_nothing() -> None:
    hook = install(slow_s=3600.0)
    try:
        gc.collect()
        assert hook.freezes == 0
    finally:
        gc.callbacks.remove(hook)
