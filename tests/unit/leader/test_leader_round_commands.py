"""A round's task writes commit in commands of ROUND_CHUNK_ITEMS: a round larger than one command may hold
(10,000 items) commits, and agents' reports committed between its commands do not void it."""

import random

from p2porch.errors import ConflictError
from p2porch.leader.scheduling import ROUND_CHUNK_ITEMS, plan_round, round_commands
from p2porch.model import Node, ServiceSpec, TaskState
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply, apply_command
from p2porch.raft.state import EMPTY_STATE, ClusterState
from p2porch.scheduler import Orchestrator


def _run(state: ClusterState, cmd: C.Command) -> ClusterState:
    new, result, _ = apply_command(state, cmd)
    assert result["ok"], result
    return new


def _cluster(replicas: int) -> ClusterState:
    state = _run(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c"))
    for i in range(20):
        state = _run(state, C.AddNode(at=1.0, node=Node(f"id{i}", f"n{i}", f"10.0.0.{i + 1}", 7947, 7946)))
    spec = ServiceSpec(name="web", image="busybox", replicas=replicas)
    return _run(state, C.CreateService(at=2.0, service_id="s1", spec=spec))


def test_a_round_above_the_command_limit_commits_in_chunks() -> None:
    state = _cluster(10_500)
    plan = plan_round(state, 3.0, Orchestrator(random.Random(1)))
    assert len(plan.items) == 10_500
    _, whole, _ = apply(state, C.PutTasks(at=3.0, items=tuple(plan.items)).encode())
    assert not whole["ok"]  # what the leader loop sent before: refused, so nothing was ever placed
    commands = round_commands(plan.items, 3.0, state.version)
    assert [len(c.items) for c in commands] == [ROUND_CHUNK_ITEMS] * 10 + [500]
    assert commands[0].expected_version == state.version
    assert all(c.expected_version is None for c in commands[1:])
    for i, cmd in enumerate(commands):
        state = _run(state, cmd)
        if i == 0:  # an agent reports one of the first chunk's tasks running in between
            task = next(t for t in state.tasks.values() if t.node_id)
            report = C.TaskStatusReport(task.task_id, state=TaskState.RUNNING, state_at=3.5)
            state = _run(state, C.ReportTaskStates(at=3.5, node_id=task.node_id or "", reports=(report,)))
    assert len(state.tasks) == 10_500 and all(t.node_id for t in state.tasks.values())
    assert plan_round(state, 4.0, Orchestrator(random.Random(1))).empty


def test_the_first_command_is_conditional_on_the_planned_state() -> None:
    state = _cluster(5)
    planned_on = state.version
    plan = plan_round(state, 3.0, Orchestrator(random.Random(1)))
    state = _run(state, C.AddNode(at=3.0, node=Node("late", "late", "10.0.1.1", 7947, 7946)))  # moved on
    (cmd,) = round_commands(plan.items, 3.0, planned_on)
    _, result, _ = apply_command(state, cmd)
    assert result["error"] == ConflictError.__name__
