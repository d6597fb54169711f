"""A Raft store whose port is taken fails with a clear error and keeps no descriptor (journal file,
poller, sockets): the membership manager's retries after a failed role switch must not leak."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import trio

from p2porch.errors import RaftError
from p2porch.raft.store import RaftStore
from p2porch.raft.store_config import StoreConfig


def open_fds() -> set[str]:
    return {os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd") if _alive(fd)}


def _alive(fd: str) -> bool:
    try:
        os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return False
    return True


async def test_a_taken_raft_port_is_a_clear_error_and_leaks_nothing(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    addr = f"127.0.0.1:{taken.getsockname()[1]}"
    config = StoreConfig(self_addr=addr, voters=(addr,), data_dir=tmp_path, password="p" * 32)
    token = trio.lowlevel.current_trio_token()
    try:
        before = open_fds()
        for _ in range(3):
            with pytest.raises(RaftError, match="cannot bind the Raft port"):
                await trio.to_thread.run_sync(RaftStore, config, token)
        after = open_fds()
    finally:
        taken.close()
    assert not any(str(tmp_path) in path for path in after), after  # its journal file
    assert len(after - before) == 0, after - before
