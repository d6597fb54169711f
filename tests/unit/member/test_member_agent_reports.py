"""The agent's report path: every field a TaskReport carries reaches the committed task (pure, real FSM)."""

import random

from p2porch.agent.model import TaskReport
from p2porch.leader.scheduling import plan_round
from p2porch.member.views import agent_assignments, status_report
from p2porch.model import Node, ServiceSpec
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE, ClusterState
from p2porch.scheduler import Orchestrator


def report(at: float, node_id: str, *reports: TaskReport) -> bytes:
    """What an agent on ``node_id`` writes for ``reports``."""
    batch = tuple(status_report(r) for r in reports)
    return C.ReportTaskStates(at=at, node_id=node_id, reports=batch).encode()


def run(state: ClusterState, command: bytes) -> ClusterState:
    new, result, _ = apply(state, command)
    assert result["ok"], result
    return new


def placed() -> ClusterState:
    state = run(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c").encode())
    node = Node("id1", "n1", "10.0.0.1", 7947, 7946, memory_bytes=1 << 33)
    state = run(state, C.AddNode(at=1.0, node=node).encode())
    state = run(state, C.LeaseSubnet(at=1.0, node_id="id1").encode())
    spec = ServiceSpec.from_dict({"name": "web", "image": "img", "health": {"cmd": "true"}})
    state = run(state, C.CreateService(at=2.0, service_id="s1", spec=spec).encode())
    plan = plan_round(state, 3.0, Orchestrator(random.Random(1)))
    return run(state, C.PutTasks(at=3.0, items=tuple(plan.items), expected_version=state.version).encode())


def test_reports_reach_the_committed_task_with_every_field() -> None:
    state = placed()
    (task,) = state.tasks.values()
    (assignment,) = agent_assignments(state, "id1", "n1", "p2porch")
    assert assignment.task_id == task.task_id and assignment.dns_servers == ("10.240.0.1",)
    running = TaskReport(
        task.task_id, "running", 10.0, container_id="c1", address="10.240.0.2", health="healthy"
    )
    state = run(state, report(11.0, "id1", running))
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
    state = run(state, report(13.0, "id1", failed))
    got = state.tasks[task.task_id]
    assert (got.state, got.exit_code, got.error) == ("failed", 3, "task exited with code 3")


def test_reports_from_another_node_change_nothing() -> None:
    state = placed()
    (task,) = state.tasks.values()
    foreign = TaskReport(task.task_id, "running", 10.0, container_id="c9")
    new, result, changes = apply(state, report(11.0, "id2", foreign))
    assert result["ok"] and changes == [] and new.tasks[task.task_id].state == "assigned"


def test_a_task_of_a_removed_service_is_assigned_for_shutdown_only() -> None:
    state = placed()
    (task,) = state.tasks.values()
    state = run(state, C.RemoveService(at=4.0, service_id="s1").encode())
    (assignment,) = agent_assignments(state, "id1", "n1", "p2porch")
    assert assignment.desired_state == "shutdown" and assignment.image == ""
    assert agent_assignments(state, "id2", "n2", "p2porch") == []


def test_a_re_report_of_the_same_state_keeps_its_time() -> None:
    """The fourth user walk: after ``node rm`` (every member's store restarts on the key switch, its
    agent reports every task again) ``stack ps`` said ``running 12s ago`` of tasks running for minutes;
    SINCE is since the state changed, as Docker's. A health change keeps the time; a new state moves it."""
    state = placed()
    (task,) = state.tasks.values()
    running = TaskReport(task.task_id, "running", 10.0, container_id="c1", health="starting")
    state = run(state, report(11.0, "id1", running))

    def again(at: float, **changes: object) -> bytes:
        fields = {"container_id": "c1", "health": "starting", **changes}
        committed = state.tasks[task.task_id]
        again = TaskReport(task.task_id, str(fields.pop("state", "running")), at, **fields)  # type: ignore[arg-type]
        return C.ReportTaskStates(at=at, node_id="id1", reports=(status_report(again, committed),)).encode()

    new, result, changes = apply(state, again(50.0))
    assert (
        result["ok"] and changes == [] and new.tasks[task.task_id].state_at == 10.0
    )  # nothing new: no write
    state = run(state, again(60.0, health="healthy"))
    assert (state.tasks[task.task_id].health, state.tasks[task.task_id].state_at) == ("healthy", 10.0)
    state = run(state, again(70.0, state="failed", health="", exit_code=1))
    assert (state.tasks[task.task_id].state, state.tasks[task.task_id].state_at) == ("failed", 70.0)
    assert (
        status_report(TaskReport(task.task_id, "running", 80.0)).state_at == 80.0
    )  # no record: its own time
