"""apply_batch (one task-map copy per batch for state reports) equals applying each command alone.

Seeded random batches mix state reports (applied, skipped, repeated for one task, from the wrong node,
malformed) with task writes, node updates and failing commands; the final state, every result and every
change must equal the one-command-at-a-time fold, and the input state must be left untouched.
"""

from __future__ import annotations

import random

import pytest

from p2porch.model import Node, ServiceSpec, Task, TaskHealth, TaskState
from p2porch.raft import commands as C
from p2porch.raft.fields import TaskPut
from p2porch.raft.fsm import apply, apply_batch, apply_command, encode_batch
from p2porch.raft.state import EMPTY_STATE, ClusterState


def _base() -> ClusterState:
    state = EMPTY_STATE
    cmds: list[C.Command] = [C.InitCluster(at=1.0, cluster_id="c", cluster_cidr="10.240.0.0/16")]
    cmds += [
        C.AddNode(at=1.0, node=Node(f"n{i}", f"node{i}", f"192.168.0.{i + 1}", 7947, 7946)) for i in range(3)
    ]
    cmds.append(C.CreateService(at=1.0, service_id="s1", spec=ServiceSpec(name="web", image="x", replicas=9)))
    tasks = tuple(TaskPut(Task(f"t{i}", "s1", i, node_id=f"n{i % 3}"), task_version=0) for i in range(9))
    cmds.append(C.PutTasks(at=1.0, items=tasks))
    for cmd in cmds:
        state, result, _ = apply_command(state, cmd)
        assert result["ok"], result
    return state


def _random_command(rng: random.Random, n: int) -> bytes:
    roll = rng.random()
    if roll < 0.6:
        node = f"n{rng.randrange(3)}"
        reports = tuple(
            C.TaskStatusReport(
                f"t{rng.randrange(10)}",  # t9 does not exist
                state=rng.choice([TaskState.RUNNING, TaskState.STARTING, TaskState.FAILED]),
                state_at=float(n),
                address=rng.choice(["", "10.240.0.5", "10.240.0.6"]),
                health=rng.choice([TaskHealth.NONE, TaskHealth.UNHEALTHY]),
            )
            for _ in range(rng.randint(1, 4))
        )
        return C.ReportTaskStates(at=float(n), node_id=node, reports=reports).encode()
    if roll < 0.75:
        task = Task(f"t{rng.randrange(9)}", "s1", 0, node_id=f"n{rng.randrange(3)}", message=f"m{n}")
        return C.PutTasks(at=float(n), items=(TaskPut(task, task_version=None),)).encode()
    if roll < 0.85:
        return C.UpdateNode(at=float(n), node_id=f"n{rng.randrange(4)}", labels={"k": str(n)}).encode()
    if roll < 0.92:
        return C.Noop(at=float(n), expected_version=rng.randrange(5, 40)).encode()
    return b"\x93garbage"


@pytest.mark.parametrize("seed", range(25))
def test_batched_reports_equal_one_at_a_time(seed: int) -> None:
    rng = random.Random(seed)
    state = base = _base()
    before = base.to_dict()
    for n in range(20):
        batch = [_random_command(rng, n) for _ in range(rng.randint(1, 12))]
        expected_state, expected_results, expected_changes = state, [], []
        for cmd in batch:
            expected_state, result, changes = apply(expected_state, cmd)
            expected_results.append(result)
            expected_changes += changes
        published = dict(state.tasks)
        new, results, changes = apply_batch(state, encode_batch(batch))
        assert dict(state.tasks) == published  # the batch's input state is not changed in place
        assert results == expected_results
        assert changes == expected_changes
        assert new.to_dict() == expected_state.to_dict() and dict(new.tasks) == dict(expected_state.tasks)
        state = new
    assert base.to_dict() == before  # the published state a batch started from never changed
