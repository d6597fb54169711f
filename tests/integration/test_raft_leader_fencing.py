"""Leader fencing on real Raft processes: a deposed leader's round chunk, forwarded after a newer leader
claimed its epoch, is refused by every voter alike; the epoch survives a restart from the dump.

3 voters as separate processes on loopback (``LocalCluster``, data under the test's tmp dir). The old
leader's round is written by hand through the control port (the bytes its loop would send); the leader
is deposed by SIGKILL, the survivors elect a new one, which claims its term.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from p2porch.model import Node, ServiceSpec, Task, TaskState
from p2porch.raft import commands as C
from p2porch.testing.raftprocs import LocalCluster, NodeProc

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    c = LocalCluster(tmp_path / "p2fe", voters=3)
    try:
        c.start_all()
        yield c
    finally:
        c.close()


def propose(node: NodeProc, command: C.Command) -> dict[str, Any]:
    answer = node.call(op="propose", cmd=command.encode().hex(), timeout_s=10.0)
    assert answer["ok"], answer
    return answer["result"]  # type: ignore[no-any-return]


def committed(node: NodeProc, command: C.Command) -> dict[str, Any]:
    result = propose(node, command)
    assert result["ok"], result
    return result


def chunk(first_slot: int, count: int, epoch: int) -> C.PutTasks:
    """A chunk of new tasks (version 0, fresh ids) as a scheduling round writes them."""
    tasks = (
        Task(f"e{epoch}-{slot}", "s1", slot, "n1", state=TaskState.ASSIGNED)
        for slot in range(first_slot, first_slot + count)
    )
    return C.PutTasks(
        at=time.time(), items=tuple(C.TaskPut(t, task_version=0) for t in tasks), leader_epoch=epoch
    )


def term_of(node: NodeProc) -> int:
    return int(node.call(op="status")["status"]["term"])


def wait_state(node: NodeProc, version: int, timeout_s: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = node.call(op="state")["state"]
        if state["version"] >= version:
            return state  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise TimeoutError(f"{node.name} did not reach version {version}")


def test_a_deposed_leaders_chunk_is_refused_everywhere_after_a_new_epoch(cluster: LocalCluster) -> None:
    old = cluster.leader()
    committed(old, C.InitCluster(at=time.time(), cluster_id="p2fe"))
    committed(old, C.AddNode(at=time.time(), node=Node("n1", "n1", "127.0.0.1", 7947, 7946)))
    spec = ServiceSpec(name="web", image="busybox", replicas=8)
    committed(old, C.CreateService(at=time.time(), service_id="s1", spec=spec))
    old_epoch = term_of(old)
    committed(old, C.ClaimLeaderEpoch(at=time.time(), epoch=old_epoch))
    committed(old, chunk(1, 4, old_epoch))  # the old leader's first chunk

    cluster.kill(old)  # deposed: the survivors elect a leader of a later term
    new = cluster.leader()
    new_epoch = term_of(new)
    assert new_epoch > old_epoch
    committed(new, C.ClaimLeaderEpoch(at=time.time(), epoch=new_epoch))
    committed(new, chunk(5, 4, new_epoch))  # the new leader fills the remaining slots

    cluster.start(old)  # back as a follower; its late second chunk is forwarded to the new leader
    survivor = next(n for n in cluster.voters() if n.alive and n is not new and n is not old)
    for via in (old, survivor):
        refused = propose(via, chunk(5, 4, old_epoch))
        assert (refused["ok"], refused["error"], refused["field"]) == (False, "ConflictError", "leader_epoch")
    final = committed(new, C.Noop(at=time.time(), tag="barrier"))["version"]
    states = [wait_state(n, final) for n in cluster.voters()]
    assert all(s == states[0] for s in states)  # every voter decided the same
    assert states[0]["leader_epoch"] == new_epoch
    slots = sorted(t["slot"] for t in states[0]["tasks"])
    assert slots == list(range(1, 9))  # one task per slot: the stale chunk doubled none

    # the epoch is in the dump: a voter restarted from it still refuses the stale epoch
    survivor.call(op="compact")
    deadline = time.monotonic() + 15
    while survivor.call(op="status")["status"]["dumps"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert survivor.call(op="status")["status"]["dumps"] >= 1
    cluster.kill(survivor)
    cluster.start(survivor)
    assert wait_state(survivor, final)["leader_epoch"] == new_epoch
    refused = propose(survivor, chunk(9, 1, old_epoch))
    assert refused["field"] == "leader_epoch"
