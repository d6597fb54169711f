"""The agent's report path: every field a TaskReport carries reaches the committed task (pure, real FSM)."""

import random

from p2porch.agent.model import TaskReport
from p2porch.leader.scheduling import plan_round
from p2porch.member.agent import report_fields
from p2porch.member.views import agent_assignments
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE, ClusterState, NodeRecord
from p2porch.scheduler import Orchestrator, ServiceSpec


def run(state: ClusterState, command: bytes) -> ClusterState:
    new, result, _ = apply(state, command)
    assert result["ok"], result
    return new


def placed() -> ClusterState:
    state = run(EMPTY_STATE, C.init_cluster(1.0, cluster_id="c"))
    state = run(state, C.add_node(1.0, NodeRecord("id1", "n1", "10.0.0.1", 7947, 7946, memory_bytes=1 << 33)))
    state = run(state, C.lease_subnet(1.0, "id1"))
    spec = ServiceSpec.from_dict({"name": "web", "image": "img", "health": {"cmd": "true"}}).to_dict()
    state = run(state, C.create_service(2.0, "s1", "web", spec))
    plan = plan_round(state, 3.0, Orchestrator(random.Random(1)))
    return run(state, C.put_tasks(3.0, plan.items, expected_version=state.version))


def test_reports_reach_the_committed_task_with_every_field() -> None:
    state = placed()
    (task,) = state.tasks.values()
    (assignment,) = agent_assignments(state, "id1", "n1", "p2porch")
    assert assignment.task_id == task.task_id and assignment.dns_servers == ("10.240.0.1",)
    running = TaskReport(
        task.task_id, "running", 10.0, container_id="c1", address="10.240.0.2", health="healthy"
    )
    state = run(state, C.report_task_states(11.0, "id1", [report_fields(running)]))
    got = state.tasks[task.task_id]
    assert (got.state, got.state_at, got.container_id, got.address, got.health) == (
        "running",
        10.0,
        "c1",
        "10.240.0.2",
        "healthy",
    )
    assert got.started_at == 10.0
    failed = TaskReport(
        task.task_id, "failed", 12.0, error="task exited with code 3", container_id="c1", exit_code=3
    )
    state = run(state, C.report_task_states(13.0, "id1", [report_fields(failed)]))
    got = state.tasks[task.task_id]
    assert (got.state, got.exit_code, got.error) == ("failed", 3, "task exited with code 3")


def test_reports_from_another_node_change_nothing() -> None:
    state = placed()
    (task,) = state.tasks.values()
    report = TaskReport(task.task_id, "running", 10.0, container_id="c9")
    new, result, changes = apply(state, C.report_task_states(11.0, "id2", [report_fields(report)]))
    assert result["ok"] and changes == [] and new.tasks[task.task_id].state == "assigned"


def test_a_task_of_a_removed_service_is_assigned_for_shutdown_only() -> None:
    state = placed()
    (task,) = state.tasks.values()
    state = run(state, C.remove_service(4.0, "s1"))
    (assignment,) = agent_assignments(state, "id1", "n1", "p2porch")
    assert assignment.desired_state == "shutdown" and assignment.image == ""
    assert agent_assignments(state, "id2", "n2", "p2porch") == []


def test_the_simulator_reports_what_the_agent_reports() -> None:
    from p2porch.testing.cluster_sim import report_command_fields

    report = TaskReport(
        "t1", "failed", 12.0, error="boom", container_id="c1", address="a", health="", exit_code=3
    )
    assert report_command_fields(report) == report_fields(report)
