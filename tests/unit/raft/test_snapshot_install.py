"""A snapshot received from the leader is durable before the journal is cleared and the ack leaves.

A real pysyncobj follower (our ``RaftBridge``, file journal, no tick thread) gets the leader's
``serialized`` append_entries; every file-system call and the ack are recorded in order.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgpack
import pysyncobj.serializer as pso_serializer
import pytest
from pysyncobj import SyncObjConf
from pysyncobj.node import TCPNode

from p2porch.raft.bridge import RaftBridge, install_durable_journal
from p2porch.testing.raftprocs import free_ports


class _Owner:
    config = SimpleNamespace(  # what RaftBridge reads
        replica_beat_s=1.0, heartbeat_answer_period_s=0.5, election_timeout_min_s=0.5
    )

    def _apply_on_raft_thread(self, batch: bytes) -> list[Any]:
        return []


def _name(fd: int) -> str:
    return os.path.basename(os.readlink(f"/proc/self/fd/{fd}")) or "/"


def _read_dump(file_name: str) -> tuple[Any, Any, Any]:
    body = msgpack.unpackb(Path(file_name).read_bytes())
    return tuple(body["last"]), tuple(body["prev"]), []


def test_received_snapshot_is_synced_renamed_and_dir_synced_before_journal_and_ack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_durable_journal()
    me, leader = (f"127.0.0.1:{p}" for p in free_ports(2))
    conf = SyncObjConf(
        password="p2rf-unit",
        autoTick=False,
        journalFile=str(tmp_path / "raft.journal"),
        fullDumpFile=str(tmp_path / "raft.dump"),
        serializer=lambda name, data: None,
        deserializer=_read_dump,
        useFork=False,
    )
    so = RaftBridge(_Owner(), me, [leader], conf)  # type: ignore[arg-type]
    ops: list[tuple[str, str]] = []
    so._SyncObj__transport.send = lambda node, message: ops.append(("send", message["type"])) or True
    real = {name: getattr(os, name) for name in ("fsync", "fdatasync", "ftruncate", "replace", "rename")}

    def fd_op(name: str) -> Any:
        return lambda fd, *a: (ops.append((name, _name(fd))), real[name](fd, *a))[1]

    def path_op(name: str) -> Any:
        return lambda src, dst: (
            ops.append((name, f"{os.path.basename(src)}>{os.path.basename(dst)}")),
            real[name](src, dst),
        )[1]

    for name in ("fsync", "fdatasync", "ftruncate"):
        monkeypatch.setattr(os, name, fd_op(name))
    for name in ("replace", "rename"):
        monkeypatch.setattr(os, name, path_op(name))
    replace_dump = pso_serializer.atomicReplace  # pysyncobj's rename of a finished dump (bound at import)

    def recorded_replace(src: str, dst: str) -> Any:
        result = replace_dump(src, dst)
        ops.append(("renamed", f"{os.path.basename(src)}>{os.path.basename(dst)}"))
        return result

    monkeypatch.setattr(pso_serializer, "atomicReplace", recorded_replace)
    dump = msgpack.packb({"last": [b"\x00last", 40, 3], "prev": [b"\x00prev", 39, 3]})
    message = {"type": "append_entries", "term": 3, "commit_index": 40, "serialized": (dump, True, True)}
    try:
        so._SyncObj__onMessageReceived(TCPNode(leader), message)
        raft_log = so._SyncObj__raftLog
        assert [raft_log[i][1] for i in range(len(raft_log))] == [39, 40]
    finally:
        monkeypatch.undo()
        so.destroy()
    assert (tmp_path / "raft.dump").read_bytes() == dump
    moved = next(
        i
        for i, op in enumerate(ops)
        if op[0] in ("replace", "rename", "renamed") and op[1].endswith(">raft.dump")
    )
    synced_file = [i for i, op in enumerate(ops) if op == ("fsync", "raft.dump.1.tmp")]
    synced_dir = [i for i, op in enumerate(ops) if op == ("fsync", tmp_path.name)]
    journal_cut = next(i for i, op in enumerate(ops) if op == ("ftruncate", "raft.journal"))
    ack = ops.index(("send", "next_node_idx"))
    assert synced_file and synced_file[0] < moved, ops
    assert any(moved < i < journal_cut for i in synced_dir), ops
    assert journal_cut < ack, ops
