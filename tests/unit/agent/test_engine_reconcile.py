"""The agent checks its containers against the engine's own word, not what it recorded: a container the
engine (or someone at the node) started again after its task was recorded running is not the task's
process any more (plan.restarted_error), and the executor inspects afresh after every event about a
container and after its event stream came back (a dockerd restart)."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Iterator
from typing import Any

import trio

from p2porch.agent.docker_executor import DockerExecutor
from p2porch.agent.dockerspec import clock_offset, engine_time, observed_from_inspect
from p2porch.agent.model import ObservedContainer, TaskAssignment, TaskReport
from p2porch.agent.plan import RemoveContainer, StartTask, plan_node
from p2porch.model import DesiredState, TaskHealth, TaskState

NODE = "n1"
NOW = 10_000.0
RECORDED = 5_000.0  # the cluster recorded the task running then (the agent's first running report)


def assignment(**kw: Any) -> TaskAssignment:
    base: dict[str, Any] = dict(
        task_id="t1", service_name="web", service_id="s1", slot=1, node_name=NODE, image="busybox"
    )
    base.update(state=TaskState.RUNNING, started_at=RECORDED)
    base.update(kw)
    return TaskAssignment(**base)


def container(started_at: float, cid: str = "c1", status: str = "running") -> ObservedContainer:
    return ObservedContainer(cid, "web.1.t1", "t1", NODE, status, address="10.0.0.5", started_at=started_at)


def stamp(at: float) -> str:
    """``at`` as the Engine API writes times (nanoseconds, Z)."""
    moment = datetime.datetime.fromtimestamp(at, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


def test_engine_times_are_read_to_the_microsecond_and_the_zero_time_is_none() -> None:
    assert engine_time("2026-12-07T02:35:46.250000789Z") == 1796610946.25
    assert engine_time("2026-12-07T03:35:46.25+01:00") == 1796610946.25
    assert engine_time("0001-01-01T00:00:00Z") == 0.0
    assert engine_time("") == engine_time(None) == engine_time("yesterday") == 0.0


def test_the_engine_clock_offset_is_read_from_info_system_time() -> None:
    info = {"SystemTime": stamp(1000.0)}
    assert abs(clock_offset(info, 1004.0, 1006.0) - 5.0) < 1e-3  # the agent's clock is 5 s ahead
    assert clock_offset({}, 1004.0, 1006.0) == 0.0


def test_a_container_restarted_after_its_task_was_recorded_running_is_failed_and_removed() -> None:
    restarted = container(RECORDED + 60)
    plan = plan_node(NODE, [assignment()], [restarted], {}, NOW)
    (failed,) = plan.reports
    assert (failed.state, failed.container_id, failed.health) == (TaskState.FAILED, "c1", TaskHealth.NONE)
    assert "started again outside p2porch" in failed.error and "UTC" in failed.error
    assert plan.actions == (RemoveContainer("t1", "c1", 10.0, "restarted outside p2porch"),)
    # Next pass (its removal done): the task stays failed, never started again here (the orchestrator
    # replaces it per its restart policy).
    again = plan_node(NODE, [assignment()], [], {"t1": failed}, NOW + 1)
    assert again.actions == () and again.reports == ()


def test_the_container_the_task_started_in_is_adopted() -> None:
    for started in (RECORDED - 0.2, RECORDED + 0.9):  # the engine started it before the first report
        plan = plan_node(NODE, [assignment()], [container(started)], {}, NOW)
        assert plan.actions == ()
        assert [(r.state, r.container_id) for r in plan.reports] == [(TaskState.RUNNING, "c1")]


def test_a_task_not_yet_recorded_running_is_adopted_whatever_its_start() -> None:
    plan = plan_node(NODE, [assignment(state=TaskState.STARTING, started_at=0.0)], [container(NOW)], {}, NOW)
    assert plan.actions == () and [r.state for r in plan.reports] == [TaskState.RUNNING]


def test_a_restarted_container_of_a_task_to_shut_down_is_only_stopped() -> None:
    shut = assignment(desired_state=DesiredState.SHUTDOWN)
    plan = plan_node(NODE, [shut], [container(RECORDED + 60)], {}, NOW)
    assert [a.reason for a in plan.actions if isinstance(a, RemoveContainer)] == ["desired shutdown"]
    assert not any(isinstance(a, StartTask) for a in plan.actions)
    assert all(r.state != TaskState.FAILED for r in plan.reports)


def test_exited_and_vanished_containers_of_a_running_task_are_failed_not_started_again() -> None:
    """What a dockerd restart without live-restore leaves (killed containers) and a `docker rm -f`."""
    killed = ObservedContainer("c1", "web.1.t1", "t1", NODE, "exited", exit_code=137, started_at=RECORDED)
    plan = plan_node(NODE, [assignment()], [killed], {}, NOW)
    assert [(r.state, r.exit_code) for r in plan.reports] == [(TaskState.FAILED, 137)]
    assert plan.actions == ()
    gone = plan_node(NODE, [assignment()], [], {}, NOW)
    assert [r.state for r in gone.reports] == [TaskState.FAILED] and gone.actions == ()


class Events:
    """A blocking events stream (read in a worker thread): a container's die and start, once ``gate`` is
    set."""

    def __init__(self, gate: threading.Event) -> None:
        self.gate = gate

    def __iter__(self) -> Iterator[dict[str, Any]]:
        assert self.gate.wait(10)
        labels = {"p2porch.managed": "true", "p2porch.task-id": "t1"}
        for action in ("die", "start"):
            yield {"Type": "container", "Action": action, "Actor": {"ID": "c1", "Attributes": labels}}

    def close(self) -> None:
        self.gate.set()


class Engine:
    """A stand-in Engine API: one managed container whose start time a test changes."""

    def __init__(self) -> None:
        self.started = RECORDED
        self.system_time = NOW
        self.inspects = 0
        self.infos = 0
        self.gate = threading.Event()  # the events stream sends once it is set

    def containers(self, **kw: Any) -> list[dict[str, Any]]:
        return [{"Id": "c1", "State": "running", "Status": "Up 5 seconds"}]

    def inspect_container(self, container_id: str) -> dict[str, Any]:
        self.inspects += 1
        return {
            "Id": container_id,
            "Name": "/web.1.t1",
            "Config": {"Labels": {"p2porch.managed": "true", "p2porch.task-id": "t1", "p2porch.node": NODE}},
            "State": {"Status": "running", "StartedAt": stamp(self.started), "Pid": 42},
        }

    def events(self, filters: Any) -> Events:
        return Events(self.gate)

    def info(self) -> dict[str, Any]:
        self.infos += 1
        return {"SystemTime": stamp(self.system_time)}


def test_the_executor_inspects_afresh_once_the_engine_stream_is_back_and_reads_its_clock() -> None:
    engine = Engine()
    executor = DockerExecutor(engine, clock=lambda: NOW)  # type: ignore[arg-type]

    async def main() -> None:
        (first,) = await executor.list_containers()
        assert first.started_at == RECORDED
        engine.started = RECORDED + 60  # `docker restart`: the listing's key (id, state) is the same
        (cached,) = await executor.list_containers()
        assert cached.started_at == RECORDED and engine.inspects == 1
        executor.forget()  # the event stream came back (open_events)
        engine.system_time = NOW - 30  # ...from an engine whose clock is 30 s behind the agent's
        (fresh,) = await executor.list_containers()
        assert fresh.started_at == RECORDED + 90 and engine.inspects == 2 and engine.infos == 2

    trio.run(main)


def test_an_event_about_a_container_drops_its_cached_inspect() -> None:
    engine = Engine()
    executor = DockerExecutor(engine, clock=lambda: NOW)  # type: ignore[arg-type]

    async def main() -> None:
        async with executor.open_events() as events:
            assert (await executor.list_containers())[0].started_at == RECORDED
            engine.started = RECORDED + 60  # `docker restart` while subscribed: die, start
            assert (await executor.list_containers())[0].started_at == RECORDED  # the listing looks the same
            engine.gate.set()  # the engine sends its events
            actions = [event.action async for event in events]
        assert actions == ["die", "start"]
        (fresh,) = await executor.list_containers()
        assert fresh.started_at == RECORDED + 60

    trio.run(main)


def test_observed_started_at_is_the_engines_start_time() -> None:
    observed = observed_from_inspect(Engine().inspect_container("c1"))
    assert observed is not None and observed.started_at == RECORDED
    assert report_of(observed).state == TaskState.RUNNING


def report_of(observed: ObservedContainer) -> TaskReport:
    (report,) = plan_node(NODE, [assignment(started_at=0.0)], [observed], {}, NOW).reports
    return report
