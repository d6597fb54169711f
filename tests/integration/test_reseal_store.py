"""Re-sealed secrets in a real Raft store on disk (in-process pysyncobj, real journal and snapshots).

A secret sealed under key epoch 0 is written; its ciphertext is found in the data dir's files. After
`rotate_keys` and the leader's re-seal, and a log compaction, no file of the data dir holds the epoch-0
ciphertext any more, the new-epoch ciphertext is there, and after a restart the value is delivered into
a task's file by a node that holds only the new epoch's key.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
import trio

from p2porch.leader.reseal import reseal_commands
from p2porch.member.task_files import TaskFiles
from p2porch.model import Task
from p2porch.model.filerefs import parse_file_ref
from p2porch.raft import commands as C
from p2porch.raft.store import StoreConfig, open_raft_store
from p2porch.testing.raftprocs import free_ports
from p2porch.vault import digest_of, seal_value

pytestmark = pytest.mark.integration

K0, K1 = os.urandom(32), os.urandom(32)
VALUE = b"reseal-" + os.urandom(8).hex().encode()


def files_with(root: Path, needle: bytes) -> list[str]:
    """Files under ``root`` holding ``needle`` as is (snapshots: msgpack) or as pysyncobj's journal
    records it (a pickled ``bytes`` is stored as its latin-1 text in UTF-8)."""
    forms = (needle, needle.decode("latin-1").encode("utf-8"))
    hits = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and any(form in path.read_bytes() for form in forms):
            hits.append(path.name)
    return hits


async def test_after_rotation_reseal_and_compaction_only_new_epoch_ciphertext_is_on_disk(
    tmp_path: Path,
) -> None:
    addr = f"127.0.0.1:{free_ports(1)[0]}"
    data = tmp_path / "raft"
    conf = StoreConfig(
        self_addr=addr, voters=(addr,), data_dir=data, password="pw", log_compaction_min_entries=8
    )
    old_blob = seal_value(K0, "secret", "sid", 1, VALUE).blob
    async with open_raft_store(conf) as store:
        await store.wait_leader()
        await store.write(C.InitCluster(at=time.time(), cluster_id="c" * 16).encode())
        await store.write(
            C.PutSecret(
                at=time.time(), kind="secret", name="db", object_id="sid", secret_version=1, sealed=old_blob,
                digest=digest_of(K0, VALUE), size=len(VALUE), key_epoch=0,
            ).encode()
        )  # fmt: skip
        assert files_with(data, old_blob), "the epoch-0 ciphertext should be in the journal first"
        await store.write(C.RotateKeys(at=time.time(), epoch=1, envelopes={}).encode())
        (command,), missing = reseal_commands(store.snapshot(), {0: K0, 1: K1}, time.time())
        assert missing == []
        assert await store.write(command.encode()) == 1
        new_blob = bytes(store.snapshot().secrets["secret:db"].versions[0]["sealed"])
        assert new_blob != old_blob
        dumps_before = {p.name: p.stat().st_mtime_ns for p in data.glob("raft.dump*")}
        for i in range(40):  # enough entries for pysyncobj to compact the log into a snapshot
            await store.write(C.Noop(at=time.time(), tag=i).encode())
        with trio.fail_after(20):
            while files_with(data, old_blob):
                await store.write(C.Noop(at=time.time()).encode())
                await trio.sleep(0.05)
        dumps_after = {p.name: p.stat().st_mtime_ns for p in data.glob("raft.dump*")}
        assert dumps_after and dumps_after != dumps_before, "a compaction wrote a snapshot"
        assert files_with(data, old_blob) == []
        assert files_with(data, new_blob), "the snapshot or journal holds the new ciphertext"
        version = store.snapshot().version
    # after a restart the state comes back from the snapshot + journal and delivers with epoch 1 only
    async with open_raft_store(conf) as store:
        with trio.fail_after(10):
            while store.snapshot().version < version:
                await trio.sleep(0.01)
        state = store.snapshot()
    assert state.secrets["secret:db"].versions[0]["key_epoch"] == 1
    root = os.path.join("/dev/shm", f"p2porch-reseal-{os.getpid()}")
    try:
        ref = parse_file_ref("src=db,version=1", kind="secret", fieldname="secret")
        mounts, error = TaskFiles(root, {1: K1}).prepare(state, Task("t1", "svc", 1), [("secret", ref)])
        assert error == ""
        with open(mounts[0].source, "rb") as fh:
            assert fh.read() == VALUE
    finally:
        shutil.rmtree(root, ignore_errors=True)
