"""The agent's trio worker against an in-memory executor (shell test: MockClock, no I/O).

Belongs to the shell tier (tests/shell/): batching, retries, resilience and event-driven reconcile.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest
import trio
import trio.testing

from p2porch.agent.model import (
    KIND_SIDECAR,
    LABEL_MEMBER,
    LABEL_MEMBER_KIND,
    ContainerEvent,
    MemberSpec,
    NodeCapacity,
    ObservedContainer,
    TaskAssignment,
    TaskReport,
)
from p2porch.agent.plan import StartOutcome
from p2porch.agent.worker import NodeAgent, run_agent
from p2porch.errors import ExecutorError
from p2porch.model import TaskState

NODE = "n1"


class FakeExecutor:
    """Containers in a dict; ``down`` makes every call fail like an unreachable engine."""

    def __init__(self) -> None:
        self.containers: dict[str, ObservedContainer] = {}
        self.down = False
        self.starts: list[str] = []
        self.removed: list[str] = []
        self.events_send, self.events_receive = trio.open_memory_channel[ContainerEvent](100)

    def _check(self) -> None:
        if self.down:
            raise ExecutorError("engine down")

    async def list_containers(self) -> list[ObservedContainer]:
        await trio.sleep(0)
        self._check()
        return list(self.containers.values())

    async def start(self, assignment: TaskAssignment, container_id: str = "") -> StartOutcome:
        await trio.sleep(0.01)
        self.starts.append(assignment.task_id)
        cid = container_id or f"c-{assignment.task_id}"
        observed = ObservedContainer(
            cid, cid, assignment.task_id, NODE, "running", address="10.0.0.1", pid=4242
        )
        self.containers[cid] = observed
        return StartOutcome(observed)

    async def remove(self, container_id: str, stop_grace_s: float) -> None:
        self._check()
        self.removed.append(container_id)
        self.containers.pop(container_id, None)

    async def capacity(self) -> NodeCapacity:
        return NodeCapacity(1, 1)

    @asynccontextmanager
    async def open_events(self) -> AsyncIterator[trio.MemoryReceiveChannel[ContainerEvent]]:
        self._check()
        yield self.events_receive

    @asynccontextmanager
    async def open_logs(
        self,
        task_ids: Collection[str] | None = None,
        *,
        service_name: str = "",
        follow: bool = False,
        tail: int | None = None,
        container: str = "",
        since: float | None = None,
        timestamps: bool = False,
    ) -> AsyncIterator[Any]:
        raise NotImplementedError
        yield


class Recorder:
    def __init__(self, fail_first: int = 0) -> None:
        self.batches: list[list[TaskReport]] = []
        self.fail_first = fail_first
        self.calls = 0

    async def __call__(self, batch: list[TaskReport]) -> None:
        self.calls += 1
        if self.calls <= self.fail_first:
            raise RuntimeError("not leader")
        self.batches.append(list(batch))

    def latest(self) -> dict[str, TaskReport]:
        return {r.task_id: r for b in self.batches for r in b}


def task(i: int, **kw: Any) -> TaskAssignment:
    return TaskAssignment(f"t{i:04d}", "web", "s", i, NODE, "img", **kw)


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def start(
    nursery: trio.Nursery,
    ex: FakeExecutor,
    get: Any,
    rec: Recorder,
    changed: Any = None,
    resync_s: float = 1000.0,
) -> NodeAgent:
    return await nursery.start(
        lambda task_status: run_agent(
            ex, NODE, get, changed, rec, resync_interval_s=resync_s, task_status=task_status
        )
    )


async def test_reports_are_batched_at_most_max_batch_and_newest_wins(autojump_clock: Any) -> None:
    ex, rec = FakeExecutor(), Recorder()
    tasks = [task(i) for i in range(150)]
    async with trio.open_nursery() as nursery:
        await start(nursery, ex, lambda: tasks, rec)
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    assert all(len(b) <= 64 for b in rec.batches)
    assert all(len({r.task_id for r in b}) == len(b) for b in rec.batches)  # one report per task per batch
    assert len(rec.batches) <= 6
    latest = rec.latest()
    assert len(latest) == 150 and {r.state for r in latest.values()} == {TaskState.RUNNING}
    assert sorted(ex.starts) == sorted(t.task_id for t in tasks)  # each started exactly once


async def test_failed_delivery_is_retried_without_losing_reports(autojump_clock: Any) -> None:
    ex, rec = FakeExecutor(), Recorder(fail_first=3)
    async with trio.open_nursery() as nursery:
        agent = await start(nursery, ex, lambda: [task(1), task(2)], rec)
        await trio.sleep(30)
        nursery.cancel_scope.cancel()
    assert rec.calls > 3 and agent.report_failures == 3
    assert {t: r.state for t, r in rec.latest().items()} == {
        "t0001": TaskState.RUNNING,
        "t0002": TaskState.RUNNING,
    }


async def test_engine_outage_does_not_kill_the_agent(autojump_clock: Any) -> None:
    ex, rec = FakeExecutor(), Recorder()
    ex.down = True
    async with trio.open_nursery() as nursery:
        await start(nursery, ex, lambda: [task(1)], rec, resync_s=2.0)
        await trio.sleep(10)
        assert rec.batches == [] and ex.starts == []
        ex.down = False
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    assert rec.latest()["t0001"].state == TaskState.RUNNING


async def test_docker_event_triggers_prompt_reconcile(autojump_clock: Any) -> None:
    ex, rec = FakeExecutor(), Recorder()
    async with trio.open_nursery() as nursery:
        await start(nursery, ex, lambda: [task(1)], rec)  # resync every 1000 s: only events can help
        await trio.sleep(1)
        assert rec.latest()["t0001"].state == TaskState.RUNNING
        cid = "c-t0001"
        ex.containers[cid] = replace(ex.containers[cid], status="exited", exit_code=2)
        t0 = trio.current_time()
        await ex.events_send.send(ContainerEvent("die", cid, "t0001"))
        while rec.latest()["t0001"].state != TaskState.FAILED:
            await trio.sleep(0.05)
        assert trio.current_time() - t0 < 1.0
        nursery.cancel_scope.cancel()
    assert rec.latest()["t0001"].exit_code == 2
    assert ex.starts == ["t0001"]  # failed tasks are not restarted by the agent


async def test_change_notification_triggers_prompt_reconcile(autojump_clock: Any) -> None:
    ex, rec = FakeExecutor(), Recorder()
    current = [task(1)]
    send, receive = trio.open_memory_channel[object](10)
    async with trio.open_nursery() as nursery:
        await start(nursery, ex, lambda: current, rec, changed=receive)
        await trio.sleep(1)
        current = [task(1, desired_state="shutdown", state=TaskState.RUNNING), task(2)]
        t0 = trio.current_time()
        await send.send(None)
        while set(rec.latest()) != {"t0001", "t0002"} or rec.latest()["t0001"].state != "shutdown":
            await trio.sleep(0.05)
        assert trio.current_time() - t0 < 1.0
        nursery.cancel_scope.cancel()
    assert ex.removed == ["c-t0001"]
    assert rec.latest()["t0002"].state == TaskState.RUNNING


async def test_a_running_task_is_stopped_only_after_the_drain(autojump_clock: Any) -> None:
    ex, rec = FakeExecutor(), Recorder()
    current = [task(1)]
    send, receive = trio.open_memory_channel[object](10)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: run_agent(
                ex, NODE, lambda: current, receive, rec, resync_interval_s=1000.0, drain_s=2.0,
                task_status=task_status,
            )
        )  # fmt: skip
        while rec.latest().get("t0001") is None or rec.latest()["t0001"].state != TaskState.RUNNING:
            await trio.sleep(0.05)
        current = [task(1, desired_state="shutdown", state=TaskState.RUNNING)]
        t0 = trio.current_time()
        await send.send(None)
        while not ex.removed:
            await trio.sleep(0.05)
        assert trio.current_time() - t0 >= 2.0  # left running (in DNS no more) for the drain
        nursery.cancel_scope.cancel()
    assert ex.removed == ["c-t0001"]


async def stopped_after(
    gate_s: float, fixed_s: float, connections_s: float = 0.0
) -> tuple[float, list[tuple[Any, ...]]]:
    """How long a load-balanced task ran after its stop when every node's rules dropped it after
    ``gate_s``, the node's fixed drain is ``fixed_s`` and its connections end ``connections_s`` after the
    connection wait began; and what the gate and the connection wait were asked (in that order)."""
    ex, rec = FakeExecutor(), Recorder()
    current = [task(1, drain_ports=(80,), drain_listeners=True)]
    asked: list[tuple[Any, ...]] = []

    async def gate(task_id: str, index: int) -> None:
        asked.append((task_id, index))
        await trio.sleep(gate_s)

    async def connections(task_id: str, pid: int, ports: tuple[int, ...], listeners: bool, at: float) -> None:
        asked.append((task_id, pid, ports, listeners, trio.current_time() - at))
        await trio.sleep(connections_s)

    send, receive = trio.open_memory_channel[object](10)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: run_agent(
                ex, NODE, lambda: current, receive, rec, resync_interval_s=1000.0, drain_s=fixed_s,
                drain_gate=gate, connection_wait=connections, task_status=task_status,
            )
        )  # fmt: skip
        while rec.latest().get("t0001") is None or rec.latest()["t0001"].state != TaskState.RUNNING:
            await trio.sleep(0.05)
        current = [
            task(
                1, desired_state="shutdown", state=TaskState.RUNNING, drain_index=9, drain_ports=(80,),
                drain_listeners=True,
            )
        ]  # fmt: skip
        t0 = trio.current_time()
        await send.send(None)
        while not ex.removed:
            await trio.sleep(0.01)
        waited = trio.current_time() - t0
        nursery.cancel_scope.cancel()
    return waited, asked


async def test_a_load_balanced_task_waits_for_the_gate_and_the_fixed_drain_whichever_ends_later(
    autojump_clock: Any,
) -> None:
    for gate_s, fixed_s in ((3.0, 1.0), (0.5, 1.0)):
        waited, asked = await stopped_after(gate_s, fixed_s)
        assert asked[0] == ("t0001", 9)
        assert max(gate_s, fixed_s) <= waited < max(gate_s, fixed_s) + 0.1, (gate_s, fixed_s, waited)


async def test_a_load_balanced_task_then_waits_for_its_open_connections_to_end(autojump_clock: Any) -> None:
    waited, asked = await stopped_after(0.5, 1.0, connections_s=2.0)
    assert asked[0] == ("t0001", 9)
    task_id, pid, ports, listeners, since_drain_began = asked[1]
    assert (task_id, pid, ports, listeners) == ("t0001", 4242, (80,), True)
    assert since_drain_began == pytest.approx(
        1.0, abs=0.1
    )  # after the gate and the fixed drain, with the drain's start
    assert 3.0 <= waited < 3.1, waited


async def test_a_started_load_balanced_task_is_reported_running_once_it_listens(autojump_clock: Any) -> None:
    ex, rec = FakeExecutor(), Recorder()
    current = [task(1, ready_ports=(80, 443)), task(2)]
    asked: list[tuple[Any, ...]] = []

    async def listens(task_id: str, pid: int, ports: tuple[int, ...]) -> None:
        asked.append((task_id, pid, ports))
        await trio.sleep(3.0)  # its process listens 3 s after the start

    def state(task_id: str) -> Any:
        report = rec.latest().get(task_id)
        return report and report.state

    send, receive = trio.open_memory_channel[object](100)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: run_agent(
                ex, NODE, lambda: current, receive, rec, resync_interval_s=1000.0, listen_wait=listens,
                task_status=task_status,
            )
        )  # fmt: skip
        t0 = trio.current_time()
        other = 0.0
        while state("t0001") != TaskState.RUNNING:
            await send.send(None)  # reconcile passes meanwhile: none reports the running container first
            await trio.sleep(0.1)
            other = other or (state("t0002") == TaskState.RUNNING and trio.current_time() - t0)
        waited = trio.current_time() - t0
        nursery.cancel_scope.cancel()
    assert asked == [("t0001", 4242, (80, 443))]
    assert 3.0 <= waited < 3.3, waited
    assert 0 < other < 0.5, other  # a task without a TCP ingress port: no wait


class TimedRecorder(Recorder):
    """Also records when (trio's clock) each batch was delivered."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    async def __call__(self, batch: list[TaskReport]) -> None:
        self.times.append(trio.current_time())
        await super().__call__(batch)


async def reports_delivered(
    events: list[tuple[float, str, TaskState]], until_s: float = 5.0
) -> TimedRecorder:
    """Record ``(at, task, state)`` reports into a bare agent's queue (no engine) from t = 0 and return
    what its flush loop delivered, and when (report_window: settle 0.1 s, STARTING held up to 1 s)."""
    rec = TimedRecorder()
    agent = NodeAgent(None, NODE, list, rec, flush_interval_s=0.1, starting_hold_s=1.0)  # type: ignore[arg-type]
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(agent._flush_loop)
        for at, task_id, state in events:
            await trio.sleep_until(start + at)
            agent._record(TaskReport(task_id, state, at))
        await trio.sleep_until(start + until_s)
        nursery.cancel_scope.cancel()
    rec.times = [round(t - start, 6) for t in rec.times]
    return rec


async def test_a_starting_report_is_replaced_by_its_outcome_within_the_hold(autojump_clock: Any) -> None:
    rec = await reports_delivered([(0.0, "t1", TaskState.STARTING), (0.5, "t1", TaskState.RUNNING)])
    assert [[(r.task_id, r.state) for r in b] for b in rec.batches] == [[("t1", TaskState.RUNNING)]]
    assert rec.times == [0.5]  # the batch was open past its settle time: the outcome closes it at once


async def test_a_starting_report_waits_at_most_the_hold(autojump_clock: Any) -> None:
    rec = await reports_delivered(
        [(0.0, "t1", TaskState.STARTING), (0.3, "t2", TaskState.STARTING), (1.5, "t1", TaskState.RUNNING)]
    )
    assert [[(r.task_id, r.state) for r in b] for b in rec.batches] == [
        [("t1", TaskState.STARTING), ("t2", TaskState.STARTING)],  # one command for both starts
        [("t1", TaskState.RUNNING)],
    ]
    assert rec.times == [1.0, 1.6]


async def test_settled_reports_still_leave_after_the_flush_interval(autojump_clock: Any) -> None:
    rec = await reports_delivered(
        [(0.0, "t1", TaskState.RUNNING), (1.0, "t2", TaskState.STARTING), (1.05, "t3", TaskState.FAILED)]
    )
    assert [[r.task_id for r in b] for b in rec.batches] == [["t1"], ["t2", "t3"]]
    assert rec.times == [0.1, 1.1]


class SteppingExecutor(FakeExecutor):
    """Its containers start at ``clock()``; then the host's clock steps back 30 s (NTP, by hand) before
    the agent reports the start."""

    def __init__(self, wall: list[float]) -> None:
        super().__init__()
        self.wall = wall

    def clock(self) -> float:
        return self.wall[0] + trio.current_time()

    async def start(self, assignment: TaskAssignment, container_id: str = "") -> StartOutcome:
        await trio.sleep(0.01)
        outcome = await super().start(assignment, container_id)
        assert outcome.container is not None
        started = replace(outcome.container, started_at=self.clock())
        self.containers[started.container_id] = started
        await trio.sleep(0.2)  # e.g. its sidecars start
        self.wall[0] -= 30.0
        return StartOutcome(started)


async def test_a_clock_stepped_back_during_a_start_never_fails_the_task_as_restarted(
    autojump_clock: Any,
) -> None:
    """The task's recorded start is its first running report's time: dated before the container's start
    (as the engine says) by a clock step, the next pass took the task's own container for one started
    again outside p2porch and failed it (docs/agent.md, "The engine changed while the daemon was away")."""
    ex, rec = SteppingExecutor([1_700_000_000.0]), Recorder()

    def assignments() -> list[TaskAssignment]:  # as the cluster records it: started at the first report
        first = next((r for b in rec.batches for r in b if r.state == TaskState.RUNNING), None)
        if first is None:
            return [task(1)]
        return [task(1, state=TaskState.RUNNING, started_at=first.at)]

    agent = NodeAgent(ex, NODE, assignments, rec, resync_interval_s=1.0, clock=ex.clock)
    async with trio.open_nursery() as nursery:
        await nursery.start(agent.run)
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    container = ex.containers["c-t0001"]
    assert [r.state for b in rec.batches for r in b] == [TaskState.RUNNING]
    assert rec.latest()["t0001"].at >= container.started_at
    assert ex.starts == ["t0001"] and ex.removed == []


class ForwardSteppingExecutor(SteppingExecutor):
    """Its main container starts at ``clock()``; then the host's clock steps forward 30 s before its
    sidecar ``log`` starts (the engine dates both by the host's clock)."""

    async def start(self, assignment: TaskAssignment, container_id: str = "") -> StartOutcome:
        outcome = await FakeExecutor.start(self, assignment, container_id)
        assert outcome.container is not None
        main = replace(outcome.container, started_at=self.clock())
        self.containers[main.container_id] = main
        self.wall[0] += 30.0
        await trio.sleep(0.2)
        labels = {LABEL_MEMBER: "log", LABEL_MEMBER_KIND: KIND_SIDECAR}
        side = replace(main, container_id="side", name="side", labels=labels, started_at=self.clock())
        self.containers["side"] = side
        return StartOutcome(main)


async def test_a_clock_stepped_forward_during_a_group_start_never_fails_it_as_restarted(
    autojump_clock: Any,
) -> None:
    """The task's recorded start is its first running report's time: dated by the monotonic time the start
    took, it fell before the sidecar's start when the clock stepped forward between the main container's
    and the sidecar's starts, and the next pass failed the group as "sidecar log ... started again outside
    p2porch" (docs/agent.md: a step forward changes nothing)."""
    ex, rec = ForwardSteppingExecutor([1_700_000_000.0]), Recorder()
    log_sidecar = MemberSpec("log", KIND_SIDECAR, "busybox", command=("tail", "-F", "/x"))

    def assignments() -> list[TaskAssignment]:  # as the cluster records it: started at the first report
        first = next((r for b in rec.batches for r in b if r.state == TaskState.RUNNING), None)
        if first is None:
            return [task(1, members=(log_sidecar,))]
        return [task(1, members=(log_sidecar,), state=TaskState.RUNNING, started_at=first.at)]

    agent = NodeAgent(ex, NODE, assignments, rec, resync_interval_s=1.0, clock=ex.clock)
    async with trio.open_nursery() as nursery:
        await nursery.start(agent.run)
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    assert [(r.state, r.error) for b in rec.batches for r in b] == [(TaskState.RUNNING, "")]
    assert rec.latest()["t0001"].at >= ex.containers["side"].started_at
    assert ex.starts == ["t0001"] and ex.removed == []


class BouncingExecutor(FakeExecutor):
    """An engine whose event stream a test ends (dockerd stopping); subscriptions fail while ``down``."""

    def __init__(self) -> None:
        super().__init__()
        self.stream: trio.MemorySendChannel[ContainerEvent] | None = None

    @asynccontextmanager
    async def open_events(self) -> AsyncIterator[trio.MemoryReceiveChannel[ContainerEvent]]:
        self._check()
        self.stream, receive = trio.open_memory_channel[ContainerEvent](10)
        yield receive


async def start_counting_backs(
    nursery: trio.Nursery, ex: BouncingExecutor, backs: list[float], **options: Any
) -> None:
    """Start an agent on ``ex`` whose ``engine_back`` calls are timed into ``backs``."""
    rec = Recorder()
    await nursery.start(
        lambda task_status: run_agent(
            ex,
            NODE,
            lambda: [task(1)],
            None,
            rec,
            engine_back=lambda: backs.append(trio.current_time()),
            task_status=task_status,
            **options,
        )
    )


async def test_the_engine_answering_again_is_told_once_per_return(autojump_clock: Any) -> None:
    """A dockerd restart ends the event stream; once a subscription answers again ``engine_back`` runs (the
    member service asks the overlay for a full resync there), not at the agent's first subscription."""
    ex, backs = BouncingExecutor(), list[float]()
    async with trio.open_nursery() as nursery:
        await start_counting_backs(nursery, ex, backs)
        await trio.sleep(3)
        assert backs == []
        for _ in range(2):  # stopped 5 s, then back; twice
            ex.down = True
            assert ex.stream is not None
            await ex.stream.aclose()
            await trio.sleep(5)
            ex.down, answered = False, trio.current_time()
            await trio.sleep(3)
            assert len(backs) == 1 + _ and 0 <= backs[-1] - answered <= 1.0
        nursery.cancel_scope.cancel()


async def test_an_agent_run_again_after_its_engine_was_away_tells_it_at_its_first_subscription(
    autojump_clock: Any,
) -> None:
    """A dockerd that stops removes its socket: the member service's agent fails and a new one runs once the
    engine answers. That one has no stream of its own that ended; ``engine_was_away`` makes its first
    subscription tell ``engine_back`` (the overlay, ingress/VIP and network policy resyncs)."""
    for was_away in (False, True):
        backs = list[float]()
        async with trio.open_nursery() as nursery:
            await start_counting_backs(nursery, BouncingExecutor(), backs, engine_was_away=was_away)
            await trio.sleep(3)
            assert len(backs) == int(was_away)
            nursery.cancel_scope.cancel()
