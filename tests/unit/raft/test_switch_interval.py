"""The GIL switch interval is a process-wide interpreter setting: opening a store (whose Raft thread
starts ticking) leaves it as it was; ``p2porch daemon``'s entry point sets the daemon's
(``RAFT_SWITCH_INTERVAL_S``, cli/daemon.py), as the benchmarks' store processes do (raft/node.py)."""

from __future__ import annotations

import argparse
import gc
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from p2porch.gc_freeze import YOUNG_ENV, YOUNG_THRESHOLD
from p2porch.raft.bridge import RAFT_SWITCH_INTERVAL_S
from p2porch.raft.store import StoreConfig, open_raft_store
from p2porch.testing.raftprocs import free_ports

DEFAULT_S = 0.005  # CPython's


@pytest.fixture
def default_interval() -> Iterator[None]:
    """The process at CPython's default for the test, restored to whatever it was after."""
    was, hooks = sys.getswitchinterval(), gc.callbacks[:]
    sys.setswitchinterval(DEFAULT_S)
    try:
        yield
    finally:
        sys.setswitchinterval(was)
        gc.callbacks[:] = hooks  # the entry points' gc freeze hook (gc_freeze.py) stays theirs


async def test_opening_a_store_leaves_the_switch_interval_alone(
    tmp_path: Path, default_interval: None
) -> None:
    addr = f"127.0.0.1:{free_ports(1)[0]}"
    conf = StoreConfig(self_addr=addr, voters=(addr,), data_dir=tmp_path / "d", password="pw")
    async with open_raft_store(conf) as store:
        await store.wait_leader()  # its Raft thread has ticked
        assert sys.getswitchinterval() == pytest.approx(DEFAULT_S)
    assert sys.getswitchinterval() == pytest.approx(DEFAULT_S)


def test_the_daemon_command_sets_the_daemons_switch_interval(
    monkeypatch: Any, default_interval: None
) -> None:
    import p2porch.cli.daemon as cli_daemon
    import p2porch.daemon
    import p2porch.logs

    seen: list[float] = []
    hooks: list[list[str]] = []
    thresholds: list[list[int | None]] = []

    class _Daemon:
        def __init__(self, config: Any, pid_file: Any = None) -> None:
            pass

        async def run(self) -> None:
            seen.append(sys.getswitchinterval())
            hooks.append([type(h).__name__ for h in gc.callbacks])
            thresholds.append([getattr(h, "young", None) for h in gc.callbacks])

    config = types.SimpleNamespace(log=types.SimpleNamespace(format="text", level="info"))
    monkeypatch.setattr(p2porch.daemon, "Daemon", _Daemon)
    monkeypatch.setattr(cli_daemon, "load_daemon_config", lambda args: config)
    monkeypatch.setattr(p2porch.logs, "setup_logging", lambda *a: None)
    monkeypatch.delenv("P2PORCH_TRACEMALLOC", raising=False)
    monkeypatch.delenv("P2PORCH_PROFILE", raising=False)
    monkeypatch.delenv(YOUNG_ENV, raising=False)
    before, before_thresholds = gc.callbacks[:], gc.get_threshold()
    assert cli_daemon.cmd_daemon(argparse.Namespace(pid_file=None)) == 0
    assert seen == [pytest.approx(RAFT_SWITCH_INTERVAL_S)]
    # and its freeze after a slow full collection (gc_freeze.py) while the daemon runs, removed after it
    assert hooks == [[type(h).__name__ for h in before] + ["_Hook"]]
    assert gc.callbacks == before
    # whose young threshold after such a freeze is the daemon's (gc_freeze.py); none raised before one
    assert thresholds == [[getattr(h, "young", None) for h in before] + [YOUNG_THRESHOLD]]
    assert gc.get_threshold() == before_thresholds
    assert RAFT_SWITCH_INTERVAL_S < DEFAULT_S  # the check can fail: the daemon's differs from the default


def test_the_store_processes_entry_point_installs_the_daemons_young_threshold(
    monkeypatch: Any, default_interval: None
) -> None:
    from p2porch.raft.node import use_daemon_switch_interval

    hooks = gc.callbacks[:]
    try:
        for env, young in ((None, YOUNG_THRESHOLD), ("700", 700)):  # 700: a benchmark's baseline
            gc.callbacks[:] = [h for h in hooks if type(h).__name__ != "_Hook"]
            if env is None:
                monkeypatch.delenv(YOUNG_ENV, raising=False)
            else:
                monkeypatch.setenv(YOUNG_ENV, env)
            use_daemon_switch_interval()
            assert [h.young for h in gc.callbacks if type(h).__name__ == "_Hook"] == [young]
    finally:
        gc.callbacks[:] = hooks
