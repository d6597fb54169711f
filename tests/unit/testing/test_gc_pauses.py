"""The gc pause tally: per generation count, total and longest; no generation counts nothing; installed,
it observes the process's gc freeze hook (one timer of collections, not a second hook)."""

from __future__ import annotations

import gc
import logging

import pytest

from p2porch import gc_freeze
from p2porch.testing.gc_pauses import GcPauses, install


def test_collections_are_tallied_per_generation() -> None:
    pauses = GcPauses()
    assert pauses.record(2, 1.5)
    assert pauses.record(2, 0.25)
    assert pauses.record(0, 0.001)
    summary = pauses.summary()
    assert summary["gen2"] == {"count": 2, "total_s": 1.75, "longest_s": 1.5}
    assert summary["gen0"]["count"] == 1 and summary["gen1"]["count"] == 0


def test_a_collection_of_no_generation_counts_nothing() -> None:
    pauses = GcPauses()
    assert not pauses.record(7, 2.0)
    assert not pauses.record(-1, 2.0)
    assert pauses.summary()["gen2"]["count"] == 0


def test_installed_it_observes_the_freeze_hook_and_sees_a_real_full_collection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hooks = gc.callbacks[:]
    gc.callbacks.clear()  # any hook an earlier test left: only the freeze hook runs
    try:
        hook = gc_freeze.install(slow_s=3600.0)  # freezes nothing here
        pauses = GcPauses()
        observer = install(pauses, log_s=0.0)  # every full collection is logged
        assert gc.callbacks == [hook] and hook.observer is observer  # one hook times the collections
        with caplog.at_level(logging.INFO, logger="p2porch.testing.gc_pauses"):
            gc.collect()
            gc.collect(0)
        summary = pauses.summary()
        assert summary["gen2"]["count"] == 1 and summary["gen0"]["count"] >= 1
        assert summary["gen2"]["longest_s"] == summary["gen2"]["total_s"] >= 0.0
        assert any("generation-2 collection took" in r.getMessage() for r in caplog.records)
    finally:
        gc.callbacks[:] = hooks


def test_installed_without_a_freeze_hook_it_installs_the_one_hook() -> None:
    hooks = gc.callbacks[:]
    gc.callbacks.clear()
    try:
        pauses = GcPauses()
        install(pauses)
        assert len(gc.callbacks) == 1 and gc.callbacks[0] is gc_freeze.install()
        gc.collect()
        assert pauses.summary()["gen2"]["count"] == 1
    finally:
        gc.callbacks[:] = hooks
        gc.unfreeze()
