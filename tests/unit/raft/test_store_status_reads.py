"""A status read that fails (pysyncobj's ``getStatus`` raising RuntimeError: read off the Raft thread,
it iterates sets that thread changes) never makes up a configuration: the last status read stands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from p2porch.errors import RaftError
from p2porch.raft.store import StoreConfig, open_raft_store
from p2porch.testing.raftprocs import free_ports


def _changing(*args: Any, **kwargs: Any) -> dict[str, Any]:
    raise RuntimeError("Set changed size during iteration")


async def test_status_keeps_the_configuration_when_getstatus_keeps_raising(tmp_path: Path) -> None:
    own, other = (f"127.0.0.1:{p}" for p in free_ports(2))  # the other voter never starts
    conf = StoreConfig(self_addr=own, voters=(own, other), data_dir=tmp_path / "d", password="pw")
    async with open_raft_store(conf) as store:
        assert store.status().voters == tuple(sorted((own, other)))
        store._so.getStatus = _changing  # every read from now on races the Raft thread
        store._status_at = 0.0  # the cached status is stale: status() reads again
        status = store.status()
        assert status.voters == tuple(sorted((own, other))), status  # main: (own,) alone
        assert status.self_addr == own
        assert store.status_read_failures >= 1
        assert store._status_at == 0.0  # kept, not stamped fresh: the next status() reads again
        with store._status_lock:
            store._status = None  # no status read yet: not made up either
        with pytest.raises(RaftError):
            store._compute_status()
