"""Log compaction through forked dump children, on three real Raft processes (``raft/dumps.py``).

A dump child's file becomes the dump a restarted node recovers the same state from; killing a child mid-dump
(kill -9) or its whole node mid-dump leaves a node that restarts with every acknowledged write (the previous
dump + the journal). The children wait on a gate file (``--dump-gate``) so a test can act mid-dump.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from p2porch.raft import dumps
from p2porch.testing.raftprocs import LocalCluster, NodeProc

pytestmark = pytest.mark.integration


@pytest.fixture
def gate(tmp_path: Path) -> Path:
    return tmp_path / "gate"


@pytest.fixture
def cluster(tmp_path: Path, gate: Path) -> Iterator[LocalCluster]:
    c = LocalCluster(tmp_path / "p2dc", voters=3, extra_args=("--dump-gate", str(gate)))
    try:
        c.start_all()
        yield c
    finally:
        c.close()


def _status(node: NodeProc) -> dict[str, Any]:
    return node.call(op="status")["status"]  # type: ignore[no-any-return]


def _until(what: str, check: Any, timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _write(leader: NodeProc, ids: range) -> set[str]:
    for i in ids:
        assert leader.call(op="create", id=f"s{i}")["ok"]
    return {f"s{i}" for i in ids}


def _state_like(node: NodeProc, want: dict[str, Any]) -> None:
    def same() -> bool:
        try:
            return node.call(op="state")["state"] == want  # type: ignore[no-any-return]
        except (OSError, ConnectionError, ValueError):
            return False

    _until(f"{node.name} to hold the leader's state", same)


def _children_file(node: NodeProc, pid: int) -> Path:
    return Path(dumps.child_file(str(node.data_dir / "raft.dump.tmp"), pid))


def test_dump_children_write_the_dump_a_node_restarts_from(cluster: LocalCluster, gate: Path) -> None:
    leader = cluster.leader()
    assert leader.call(op="init")["ok"]
    acked = _write(leader, range(40))
    v_child, v_parent = [n for n in cluster.voters() if n is not leader]
    for node in cluster.voters():
        node.call(op="compact")
    pids = {n.name: _until(f"{n.name}'s child", lambda n=n: _status(n)["dump_pid"]) for n in cluster.voters()}
    assert len(set(pids.values())) == 3
    assert all(
        not _gone(pid) and _status(n)["dumps"] == 0 for n in cluster.voters() for pid in [pids[n.name]]
    )

    # the parents keep serving while their children are mid-dump: writes are acknowledged
    acked |= _write(leader, range(40, 60))

    # kill -9 one child mid-dump: its node goes on, reaps it and keeps its log
    os.kill(pids[v_child.name], signal.SIGKILL)
    _until("the killed child reaped", lambda: _gone(pids[v_child.name]))
    # kill -9 another voter mid-dump: its child dies with it (no orphan writes a dump later)
    cluster.kill(v_parent)
    _until("the orphaned child gone", lambda: _gone(pids[v_parent.name]))
    assert _children_file(v_parent, pids[v_parent.name]).exists() is False  # it had not started writing
    acked |= _write(leader, range(60, 70))

    gate.touch()  # the leader's child now encodes and writes
    _until("the leader's dump", lambda: _status(leader)["dumps"] == 1)
    assert _status(v_child)["dumps"] == 0 and not (v_child.data_dir / "raft.dump").exists()
    assert dumps.read_head(leader.data_dir / "raft.dump") is not None
    assert sorted(p.name for p in leader.data_dir.iterdir() if p.name.startswith("raft.dump")) == [
        "raft.dump"
    ]

    # the node killed mid-dump restarts from its journal with every acknowledged write
    cluster.start(v_parent)
    assert cluster.wait_services(v_parent, acked) >= acked
    # the node whose child was killed dumps again, this time to the end
    v_child.call(op="compact")
    _until("the second dump of the killed child's node", lambda: _status(v_child)["dumps"] == 1)
    acked |= _write(leader, range(70, 80))

    # every node restarted from its dump (+ the journal after it) holds exactly the leader's state
    for node in (v_child, leader):
        cluster.kill(node)
        cluster.start(node)
    new_leader = cluster.leader()
    want = new_leader.call(op="state")["state"]
    for node in cluster.voters():
        _state_like(node, want)
    assert cluster.wait_services(new_leader, acked) >= acked
