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
import trio.testing

from p2porch.agent.docker_executor import INFO_TIMEOUT_S, OFFSET_REREAD_S, OFFSET_RETRY_S, DockerExecutor
from p2porch.agent.dockerspec import clock_offset, engine_time, observed_from_inspect
from p2porch.agent.model import ObservedContainer, TaskAssignment, TaskReport
from p2porch.agent.plan import RemoveContainer, StartTask, plan_node
from p2porch.engine.client import EngineError
from p2porch.engine.endpoint import Endpoint
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


def test_the_engine_clock_offset_is_a_lower_bound_from_info_system_time() -> None:
    """dockerd stamps SystemTime near the start of a slow /info: the offset from the request's start is the
    least the true one can be (a start moved by it is never later than it was)."""
    info = {"SystemTime": stamp(1000.0)}
    assert abs(clock_offset(info, 1004.0) - 4.0) < 1e-3  # the agent's clock is at least 4 s ahead
    assert clock_offset({}, 1004.0) == 0.0


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


class LocalEngine(Engine):
    """The stand-in behind a unix socket: the agent's own host."""

    endpoint = Endpoint(url="unix:///run/docker.sock", socket_path="/run/docker.sock")


def test_a_local_engine_shares_the_agents_clock_and_its_info_is_never_read() -> None:
    engine = LocalEngine()
    engine.system_time = NOW - 30  # whatever /info would say
    executor = DockerExecutor(engine, clock=lambda: NOW)  # type: ignore[arg-type]

    async def main() -> None:
        (first,) = await executor.list_containers()
        assert first.started_at == RECORDED and engine.infos == 0
        observed = await executor.inspect("c1")
        assert observed is not None and observed.started_at == RECORDED and engine.infos == 0

    trio.run(main)


class SlowInfoEngine(Engine):
    """A remote engine on the agent's clock whose /info stamps SystemTime, then works ``slow_s`` more."""

    def __init__(self, slow_s: float) -> None:
        super().__init__()
        self.now = NOW
        self.slow_s = slow_s

    def clock(self) -> float:
        return self.now

    def info(self) -> dict[str, Any]:
        self.infos += 1
        answer = {"SystemTime": stamp(self.now)}
        self.now += self.slow_s  # runc/containerd versions...
        return answer


def test_a_slow_info_does_not_move_a_fresh_start_later() -> None:
    """A 2.6 s /info made the midpoint offset +1.3 s: every fresh container looked restarted outside
    p2porch (failed, removed, its replacement too)."""
    engine = SlowInfoEngine(slow_s=2.6)
    engine.started = NOW
    executor = DockerExecutor(engine, clock=engine.clock)  # type: ignore[arg-type]

    async def main() -> None:
        (first,) = await executor.list_containers()
        assert first.started_at == NOW and engine.infos == 1
        plan = plan_node(NODE, [assignment(started_at=NOW)], [first], {}, NOW + 3)
        assert [r.state for r in plan.reports] == [TaskState.RUNNING] and plan.actions == ()

    trio.run(main)


class FailingInfoEngine(Engine):
    """A remote engine whose /info fails (``error``) or hangs until ``release`` is set (``hang``)."""

    def __init__(self) -> None:
        super().__init__()
        self.error: EngineError | None = EngineError("info is broken", status=500)
        self.hang = False
        self.called = threading.Event()
        self.release = threading.Event()

    def info(self) -> dict[str, Any]:
        self.infos += 1
        self.called.set()
        if self.hang:
            self.release.wait(30)
        if self.error is not None:
            raise self.error
        return {"SystemTime": stamp(self.system_time)}


def test_a_failing_info_leaves_start_times_unjudged_and_is_retried_after_a_backoff() -> None:
    engine = FailingInfoEngine()
    engine.started = RECORDED + 60  # restarted: judged only once the engine's clock is known
    engine.system_time = NOW - 30
    clock = trio.testing.MockClock()
    executor = DockerExecutor(engine, clock=lambda: NOW)  # type: ignore[arg-type]

    async def main() -> None:
        (first,) = await executor.list_containers()  # no ExecutorError: the reconcile is not blind
        assert first.started_at == 0.0 and engine.infos == 1
        plan = plan_node(NODE, [assignment()], [first], {}, NOW)
        assert plan.actions == () and [r.state for r in plan.reports] == [TaskState.RUNNING]
        observed = await executor.inspect("c1")  # what start() returns: the container did start
        assert observed is not None and observed.started_at == 0.0
        assert engine.infos == 1  # not read again on every inspect
        clock.jump(OFFSET_RETRY_S)
        await executor.list_containers()
        assert engine.infos == 2  # tried again, failed again: the next try waits twice as long
        clock.jump(OFFSET_RETRY_S)
        await executor.list_containers()
        assert engine.infos == 2
        clock.jump(OFFSET_RETRY_S)
        engine.error = None
        (known,) = await executor.list_containers()
        assert engine.infos == 3 and known.started_at == RECORDED + 90 and engine.inspects == 2  # cached

    trio.run(main, clock=clock)


def test_a_hanging_info_is_given_up_without_judging_start_times() -> None:
    engine = FailingInfoEngine()
    engine.hang = True
    clock = trio.testing.MockClock()
    executor = DockerExecutor(engine, clock=lambda: NOW)  # type: ignore[arg-type]

    async def main() -> None:
        async def time_out() -> None:
            assert await trio.to_thread.run_sync(engine.called.wait, 10)
            clock.jump(INFO_TIMEOUT_S)

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(time_out)
                (first,) = await executor.list_containers()
            assert first.started_at == 0.0 and engine.infos == 1
        finally:
            engine.release.set()

    trio.run(main, clock=clock)


def test_a_remote_engines_clock_is_read_again_at_each_full_resync() -> None:
    engine = Engine()
    clock = trio.testing.MockClock()
    executor = DockerExecutor(engine, clock=lambda: NOW)  # type: ignore[arg-type]

    async def main() -> None:
        (first,) = await executor.list_containers()
        assert first.started_at == RECORDED and engine.infos == 1
        engine.system_time = NOW - 30  # the engine's clock was stepped back 30 s
        await executor.list_containers()
        assert engine.infos == 1  # not on every pass
        clock.jump(OFFSET_REREAD_S)
        (later,) = await executor.list_containers()
        assert engine.infos == 2 and later.started_at == RECORDED + 30 and engine.inspects == 1

    trio.run(main, clock=clock)


class RestartDuringInspect(LocalEngine):
    """`docker restart` while the agent's inspect is in flight: the events (die, start) are seen before the
    inspect's (stale) answer comes back; the listing looks the same before and after."""

    def __init__(self) -> None:
        super().__init__()
        self.events_sent = threading.Event()

    def events(self, filters: Any) -> Iterator[dict[str, Any]]:
        labels = {"p2porch.managed": "true", "p2porch.task-id": "t1"}
        assert self.gate.wait(10)
        for action in ("die", "start"):
            yield {"Type": "container", "Action": action, "Actor": {"ID": "c1", "Attributes": labels}}
        self.events_sent.set()  # the consumer asked for more: both events were taken in

    def inspect_container(self, container_id: str) -> dict[str, Any]:
        answer = super().inspect_container(container_id)  # read before the restart
        if self.inspects == 1:
            self.started = RECORDED + 60
            self.gate.set()
            assert self.events_sent.wait(10)
        return answer


def test_an_inspect_overtaken_by_an_event_is_not_cached() -> None:
    engine = RestartDuringInspect()
    executor = DockerExecutor(engine, clock=lambda: NOW)  # type: ignore[arg-type]

    async def main() -> None:
        async with executor.open_events() as events:
            (stale,) = await executor.list_containers()
            assert stale.started_at == RECORDED
            assert [event.action async for event in events] == ["die", "start"]
        (fresh,) = await executor.list_containers()
        assert fresh.started_at == RECORDED + 60 and engine.inspects == 2

    trio.run(main)
