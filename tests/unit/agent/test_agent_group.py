"""A task group on the agent (issue 21): its containers' engine specs and how they shape the task's state."""

from __future__ import annotations

from dataclasses import replace

from p2porch.agent.cgroups import Sample, UsageMeter, add_samples
from p2porch.agent.dockerspec import create_request, member_create_request
from p2porch.agent.model import (
    KIND_INIT,
    KIND_SIDECAR,
    LABEL_MEMBER,
    LABEL_MEMBER_KIND,
    MemberSpec,
    MountSpec,
    ObservedContainer,
    PortSpec,
    TaskAssignment,
    TaskReport,
)
from p2porch.agent.plan import RemoveContainer, StartTask, plan_node
from p2porch.model import DesiredState, HealthSpec, TaskHealth, TaskState

NODE = "n1"
NOW = 1000.0
LOG = MemberSpec("log", KIND_SIDECAR, "busybox", command=("tail", "-F", "/x"), env={"A": "1"})
MIGRATE = MemberSpec("migrate", KIND_INIT, "busybox", command=("true",))


def assignment(**kw: object) -> TaskAssignment:
    base: dict[str, object] = dict(
        task_id="t1",
        service_name="web",
        service_id="s1",
        slot=1,
        node_name=NODE,
        image="nginx",
        network="p2porch",
        dns_servers=("10.0.0.1",),
        mounts=(MountSpec("volume", "data", "/data"),),
        ports=(PortSpec(80, 8080),),
        env={"A": "0", "B": "2"},
        members=(MIGRATE, LOG),
    )
    base.update(kw)
    return TaskAssignment(**base)  # type: ignore[arg-type]


def container(cid: str, status: str = "running", member: str = "", **kw: object) -> ObservedContainer:
    labels = (
        {LABEL_MEMBER: member, LABEL_MEMBER_KIND: "sidecar" if member == "log" else "init"} if member else {}
    )
    base: dict[str, object] = dict(
        container_id=cid, name=f"web.1.t1{member}", task_id="t1", node_name=NODE, status=status, labels=labels
    )
    base.update(kw)
    return ObservedContainer(**base)  # type: ignore[arg-type]


def running(**kw: object) -> TaskReport:
    return TaskReport("t1", TaskState.RUNNING, NOW - 1, container_id="main", **kw)  # type: ignore[arg-type]


def test_a_sidecar_joins_the_main_network_namespace_and_shares_its_mounts() -> None:
    a = assignment()
    name, body = member_create_request(a, LOG, "abc123")
    assert body["HostConfig"]["NetworkMode"] == "container:abc123"
    # the namespace's owner's: no network of its own, no DNS, no published ports
    assert "NetworkingConfig" not in body and "ExposedPorts" not in body
    assert not {"Dns", "DnsSearch", "PortBindings"} & set(body["HostConfig"])
    assert body["HostConfig"]["Mounts"] == create_request(a)[1]["HostConfig"]["Mounts"]
    assert name == "web.1.t1.log"
    assert body["Labels"][LABEL_MEMBER] == "log" and body["Labels"]["p2porch.task-id"] == "t1"
    assert "A=1" in body["Env"] and "B=2" in body["Env"]  # its own env wins
    assert body["HostConfig"]["RestartPolicy"] == {"Name": "no"}
    assert LABEL_MEMBER not in create_request(a)[1]["Labels"]


def test_an_init_container_is_on_the_task_network_with_its_dns_but_publishes_nothing() -> None:
    _, body = member_create_request(assignment(), MIGRATE, "")
    assert body["HostConfig"]["NetworkMode"] == "p2porch" and body["HostConfig"]["Dns"] == ["10.0.0.1"]
    assert body["NetworkingConfig"] == {"EndpointsConfig": {"p2porch": {}}}
    assert "ExposedPorts" not in body and "PortBindings" not in body["HostConfig"]
    assert body["Labels"][LABEL_MEMBER_KIND] == KIND_INIT


def test_a_sidecar_health_check_goes_to_the_engine() -> None:
    member = MemberSpec("log", KIND_SIDECAR, "busybox", healthcheck=HealthSpec(("CMD-SHELL", "true")))
    assert member_create_request(assignment(), member, "x")[1]["Healthcheck"]["Test"] == ["CMD-SHELL", "true"]


def test_a_running_group_is_reported_running_and_its_init_containers_are_left_for_their_logs() -> None:
    observed = [
        container("main"),
        container("side", member="log"),
        container("init", "exited", "migrate", exit_code=0),
    ]
    plan = plan_node(NODE, [assignment()], observed, {}, NOW)
    assert plan.actions == ()
    assert [(r.state, r.container_id) for r in plan.reports] == [(TaskState.RUNNING, "main")]


def test_a_sidecar_that_exits_fails_the_whole_task() -> None:
    observed = [container("main"), container("side", "exited", "log", exit_code=137)]
    plan = plan_node(NODE, [assignment()], observed, {"t1": running()}, NOW)
    assert [(r.state, r.error) for r in plan.reports] == [
        (TaskState.FAILED, "sidecar log exited with code 137")
    ]
    assert plan.actions == ()  # the next pass, with the task terminal, stops what still runs
    failed = plan.reports[0]
    plan = plan_node(NODE, [assignment()], observed, {"t1": failed}, NOW)
    assert [(a.container_id, a.reason) for a in plan.actions if isinstance(a, RemoveContainer)] == [
        ("main", "task already terminal")
    ]


def test_a_vanished_sidecar_fails_the_task_and_the_main_is_then_stopped() -> None:
    plan = plan_node(NODE, [assignment()], [container("main")], {"t1": running()}, NOW)
    assert [(r.state, r.error) for r in plan.reports] == [(TaskState.FAILED, "sidecar log no longer exists")]
    plan = plan_node(NODE, [assignment()], [container("main")], {"t1": plan.reports[0]}, NOW)
    assert [a.container_id for a in plan.actions if isinstance(a, RemoveContainer)] == ["main"]


def test_when_the_main_container_fails_its_sidecars_are_stopped() -> None:
    observed = [container("main", "exited", exit_code=1), container("side", member="log")]
    plan = plan_node(NODE, [assignment()], observed, {"t1": running()}, NOW)
    assert [r.state for r in plan.reports] == [TaskState.FAILED]
    plan = plan_node(NODE, [assignment()], observed, {"t1": plan.reports[0]}, NOW)
    assert [(a.container_id, a.reason) for a in plan.actions if isinstance(a, RemoveContainer)] == [
        ("side", "task already terminal")
    ]


def test_a_completed_job_task_stops_its_sidecars() -> None:
    observed = [container("main", "exited", exit_code=0), container("side", member="log")]
    plan = plan_node(NODE, [assignment()], observed, {"t1": running()}, NOW)
    assert [r.state for r in plan.reports] == [TaskState.COMPLETE]
    plan = plan_node(NODE, [assignment()], observed, {"t1": plan.reports[0]}, NOW)
    assert [a.container_id for a in plan.actions if isinstance(a, RemoveContainer)] == ["side"]


def test_the_group_health_is_the_worst_of_its_long_running_containers() -> None:
    def health(main: TaskHealth, side: TaskHealth) -> str:
        observed = [container("main", health=main), container("side", member="log", health=side)]
        return plan_node(NODE, [assignment()], observed, {}, NOW).reports[0].health

    assert health(TaskHealth.HEALTHY, TaskHealth.UNHEALTHY) == TaskHealth.UNHEALTHY
    assert health(TaskHealth.HEALTHY, TaskHealth.STARTING) == TaskHealth.STARTING
    assert health(TaskHealth.NONE, TaskHealth.HEALTHY) == TaskHealth.HEALTHY
    assert health(TaskHealth.UNHEALTHY, TaskHealth.NONE) == TaskHealth.UNHEALTHY
    assert health(TaskHealth.NONE, TaskHealth.NONE) == TaskHealth.NONE


def test_a_shut_down_group_removes_every_container_and_reports_shutdown_once() -> None:
    observed = [container("main"), container("side", member="log"), container("init", "exited", "migrate")]
    stop = assignment(desired_state=DesiredState.SHUTDOWN, drain_index=17)
    plan = plan_node(NODE, [stop], observed, {"t1": running()}, NOW, drain_s=2.0)
    removals = {a.container_id: a for a in plan.actions if isinstance(a, RemoveContainer)}
    assert set(removals) == {"main", "side", "init"}
    assert [c for c, a in removals.items() if a.report_shutdown] == ["main"]
    assert removals["side"].drain_s == removals["main"].drain_s == 2.0  # the sidecar serves while it drains
    assert removals["side"].drain_index == removals["main"].drain_index == 17  # until every node dropped it
    assert removals["init"].drain_s == 0.0 and removals["init"].drain_index == 0


def test_a_group_that_ended_by_itself_keeps_its_exited_containers_for_their_logs() -> None:
    """A completed job task, or a group failed by its crashed sidecar, keeps what exited (the crash's last
    lines: `service logs --container`) once shut down; what still runs is stopped and removed."""
    stop = assignment(desired_state=DesiredState.SHUTDOWN, state=TaskState.COMPLETE)
    observed = [
        container("main", "exited", exit_code=0),
        container("side", member="log"),
        container("init", "exited", "migrate", exit_code=0),
    ]
    plan = plan_node(NODE, [stop], observed, {}, NOW)
    assert [a.container_id for a in plan.actions if isinstance(a, RemoveContainer)] == ["side"]
    # the sidecar crashed, the agent stopped (and removed) the main: the crashed sidecar stays
    stop = assignment(desired_state=DesiredState.SHUTDOWN, state=TaskState.FAILED)
    plan = plan_node(NODE, [stop], [container("side", "exited", "log", exit_code=137)], {}, NOW)
    assert plan.actions == ()
    # stopped by the agent (reported shutdown): nothing of the group stays
    stop = assignment(desired_state=DesiredState.SHUTDOWN, state=TaskState.SHUTDOWN)
    plan = plan_node(NODE, [stop], [container("init", "exited", "migrate", exit_code=0)], {}, NOW)
    assert [a.container_id for a in plan.actions if isinstance(a, RemoveContainer)] == ["init"]


def test_a_group_whose_main_container_is_created_but_not_started_is_started_again() -> None:
    observed = [container("main", "created"), container("init", "exited", "migrate", exit_code=0)]
    plan = plan_node(NODE, [assignment()], observed, {}, NOW)
    assert plan.actions == (StartTask(assignment(), "main"),)


def test_containers_of_a_task_no_longer_assigned_are_all_removed() -> None:
    observed = [container("main"), container("side", member="log"), container("init", "exited", "migrate")]
    plan = plan_node(NODE, [], observed, {}, NOW)
    assert {a.container_id for a in plan.actions if isinstance(a, RemoveContainer)} == {
        "main",
        "side",
        "init",
    }


def test_a_group_uses_the_sum_of_its_containers_cpu_and_memory() -> None:
    meter = UsageMeter()
    first = add_samples(Sample(10.0, 1_000_000, 100), Sample(10.1, 3_000_000, 50))
    assert first == Sample(10.1, 4_000_000, 150)
    meter.update("t1", first, cpu_limit=None, memory_limit=None)
    later = add_samples(Sample(12.1, 2_000_000, 100), Sample(12.1, 5_000_000, 70))
    usage = meter.update("t1", later, cpu_limit=None, memory_limit=None)
    assert usage is not None and round(usage.cpu_cores, 3) == 1.5 and usage.memory_bytes == 170


def test_a_sidecar_restarted_outside_p2porch_fails_the_whole_task_and_the_group_goes() -> None:
    """``docker restart`` of a sidecar on the node: its process was replaced (the main container's own
    restart is judged the same way, plan.restarted_error), so the task fails as one and is replaced."""
    recorded = replace(assignment(), state=TaskState.RUNNING, started_at=NOW - 100)
    honest = [
        container("main", started_at=NOW - 101),
        container("side", member="log", started_at=NOW - 100.5),
    ]
    plan = plan_node(NODE, [recorded], honest, {"t1": running()}, NOW)
    assert plan.actions == () and plan.reports == ()  # started before the record: the task's own
    again = [container("main", started_at=NOW - 101), container("side", member="log", started_at=NOW - 5)]
    plan = plan_node(NODE, [recorded], again, {"t1": running()}, NOW)
    ((state, error),) = [(r.state, r.error) for r in plan.reports]
    assert state == TaskState.FAILED and error.startswith("sidecar log was started again outside p2porch at")
    plan = plan_node(NODE, [recorded], again, {"t1": plan.reports[0]}, NOW + 1)
    removed = {a.container_id: a.reason for a in plan.actions if isinstance(a, RemoveContainer)}
    assert removed == {"main": "task already terminal", "side": "task already terminal"}


def test_a_running_group_is_never_dated_before_its_last_container_started() -> None:
    """The agent's clock stepped back 30 s after the group started: the first running report (the task's
    recorded start) is dated at the sidecar's start, so the group is not failed as restarted later."""
    observed = [
        container("main", started_at=NOW + 28.0),
        container("side", member="log", started_at=NOW + 29.5),
    ]
    (report,) = plan_node(NODE, [assignment()], observed, {}, NOW).reports
    assert (report.state, report.at) == (TaskState.RUNNING, NOW + 29.5)
    recorded = replace(assignment(), state=TaskState.RUNNING, started_at=report.at)
    assert plan_node(NODE, [recorded], observed, {"t1": report}, NOW + 1).reports == ()
