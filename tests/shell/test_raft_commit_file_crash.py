"""kill -9 of real store processes (``python -m p2porch.raft.node`` on loopback) while a client writes,
then a torn, a missing and a stale commit-index file: term/vote and every acknowledged write survive,
and the cluster learns its commit index again (raft/journal.py; docs/raft.md, "The leader's syncs and
the commit index on disk")."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

from p2porch.raft.journal import pack_commit_index, unpack_commit_index
from p2porch.testing.raftprocs import ControlClient, LocalCluster, NodeProc


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    c = LocalCluster(tmp_path / "p2fs", voters=3)
    try:
        c.start_all()
        c.leader().call(op="init")
        yield c
    finally:
        c.close()


class Writer(threading.Thread):
    """Creates unique services through random live nodes; keeps the ids it saw acknowledged."""

    def __init__(self, cluster: LocalCluster) -> None:
        super().__init__(daemon=True)
        self.cluster, self.rng = cluster, random.Random(5)
        self.acked: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        seq = 0
        while not self.stop.is_set():
            live = [n for n in self.cluster.nodes if n.alive]
            if not live:
                time.sleep(0.02)
                continue
            sid, seq = f"c{seq}", seq + 1
            try:
                client = ControlClient(self.rng.choice(live).control_port, timeout_s=3.0)
                try:
                    answer = client.call(op="create", id=sid, timeout_s=2.0)
                finally:
                    client.close()
            except (OSError, ConnectionError, ValueError):
                time.sleep(0.02)
                continue
            if answer.get("ok"):
                self.acked.append(sid)

    def wait(self, count: int) -> None:
        deadline = time.monotonic() + 30
        while len(self.acked) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.acked) >= count, f"only {len(self.acked)} writes acknowledged"


def _files(node: NodeProc) -> tuple[Path, Path]:
    return node.data_dir / "raft.journal.meta", node.data_dir / "raft.journal.commit"


def _meta(node: NodeProc) -> dict[str, Any]:
    meta = msgpack.unpackb(_files(node)[0].read_bytes(), raw=False)
    assert isinstance(meta, dict)
    return meta


def test_kill9_mid_write_then_torn_commit_files_lose_no_term_vote_or_ack(cluster: LocalCluster) -> None:
    voters = cluster.voters()
    writer = Writer(cluster)
    writer.start()
    try:
        writer.wait(40)
        time.sleep(1.5)  # pysyncobj stores the commit index once a second: at least once after writes
        terms = {n.name: n.call(op="status")["status"]["term"] for n in voters}
        for node in voters:  # while the writer writes: mid-append, mid-commit
            cluster.kill(node)
        acked = set(writer.acked)
        on_disk = {n.name: _meta(n) for n in voters}
        for node in voters:
            assert on_disk[node.name]["term"] >= terms[node.name]  # a term is on disk before it is used
            assert "commit_index" not in on_disk[node.name]
            commit = unpack_commit_index(_files(node)[1].read_bytes())
            assert commit is not None and commit > 1  # kill -9 keeps the page cache: written in place
        torn, missing, stale = voters
        _files(torn)[1].write_bytes(pack_commit_index(10**9)[:7])  # a torn write (a power loss)
        _files(missing)[1].unlink()
        _files(stale)[1].write_bytes(pack_commit_index(2))  # an old value
        for node in voters:
            cluster.start(node, wait=False)
        for node in voters:
            cluster.wait_ready(node)
        for node in voters:
            assert _meta(node)["term"] >= on_disk[node.name]["term"]  # term/vote were not touched
        writer.wait(len(writer.acked) + 10)  # the restarted cluster commits again
    finally:
        writer.stop.set()
        writer.join(15)
    acked |= set(writer.acked)
    for node in voters:
        missing_ids = acked - cluster.wait_services(node, acked, timeout_s=30.0)
        assert not missing_ids, f"{node.name} lost {len(missing_ids)} acknowledged writes"
        assert unpack_commit_index(_files(node)[1].read_bytes()) is not None  # learnt and stored again
