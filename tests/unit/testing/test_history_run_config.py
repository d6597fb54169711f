"""The history run's settings from P2PORCH_HISTORY_* variables (what the long runs by hand rely on)."""

from __future__ import annotations

import pytest

from p2porch.testing.chaos import RunConfig
from p2porch.testing.nemesis import Nemesis


def test_seeds_ranges_and_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("P2PORCH_HISTORY_SEEDS", "1-3,7")
    assert RunConfig.seeds_from_env() == [1, 2, 3, 7]
    monkeypatch.delenv("P2PORCH_HISTORY_SEEDS")
    assert RunConfig.seeds_from_env("4") == [4]


def test_from_env_overrides_duration_faults_and_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("P2PORCH_HISTORY_DURATION", "90")
    monkeypatch.setenv("P2PORCH_HISTORY_FAULTS", "partition,pause")
    monkeypatch.setenv("P2PORCH_HISTORY_CONVERGE_BOUND", "2.5")
    config = RunConfig.from_env(5)
    assert (config.seed, config.duration_s, config.kinds, config.converge_bound_s) == (
        5,
        90.0,
        ("partition", "pause"),
        2.5,
    )


def test_unknown_fault_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="fault kinds"):
        Nemesis(sandbox=None, nodes=[], seed=1, kinds=("meteor",))  # type: ignore[arg-type]
