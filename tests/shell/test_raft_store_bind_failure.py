"""A Raft store whose port is taken fails with a clear error and keeps no descriptor (journal file,
poller, sockets): the membership manager's retries after a failed role switch must not leak. And a store
opens without pysyncobj's own key derivation."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import trio

from p2porch.errors import RaftError
from p2porch.raft.store import RaftStore, open_raft_store
from p2porch.raft.store_config import StoreConfig
from p2porch.raft.transport_guard import FramesOnly
from p2porch.testing.raftprocs import free_ports


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


async def test_a_store_derives_no_fernet_key_for_pysyncobj(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening a store runs one PBKDF2 (frames.cluster_key, cached per password), not pysyncobj's too:
    its encryptor is FramesOnly (a joiner opens a store on its critical path)."""
    import pysyncobj.encryptor

    derived: list[bytes] = []
    real = pysyncobj.encryptor.PBKDF2HMAC

    def counting(*args: object, **kwargs: object) -> object:
        derived.append(b"")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pysyncobj.encryptor, "PBKDF2HMAC", counting)
    addr = f"127.0.0.1:{free_ports(1)[0]}"
    config = StoreConfig(self_addr=addr, voters=(addr,), data_dir=tmp_path, password="q" * 32)
    async with open_raft_store(config) as store:
        await store.wait_leader()
        assert isinstance(store._so.encryptor, FramesOnly)
    assert derived == []
