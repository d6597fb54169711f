"""The leader loop and the autopilot loop under trio's MockClock (shell tier: no Raft, no sockets).

Both loops get a :class:`~p2porch.context.MemberContext` over an in-memory store that applies commands
with the real FSM, and a :class:`~p2porch.clock.TrioClock`: wall time is the mock clock plus an epoch,
so deadlines the loops compute from ``clock.now()`` (down grace, rebalance, rolling updates) are met in
mock time, deterministically, without waiting. The leader loop's self-pacing (``leader/pacing.py``): without
pressure a round places everything at once; with the Raft thread's ticks reported late, rounds place at
most the budget each and still place every task.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import pytest
import trio
import trio.testing

from p2porch.clock import TrioClock
from p2porch.config import RaftConfig, SchedulerConfig
from p2porch.context import LocalBoard, LocalNode, MemberContext
from p2porch.leader import loop
from p2porch.leader.autopilot_loop import AUTOPILOT_CHECK_S, serve_autopilot
from p2porch.leader.loop import LEADER_DEBOUNCE_S, LEADER_IDLE_CHECK_S, serve_scheduler
from p2porch.leader.pacing import PacingLimits
from p2porch.membership.token import new_token
from p2porch.model import Node, ServiceSpec, TaskState
from p2porch.raft import commands as C
from p2porch.raft.state import ClusterState
from p2porch.testing.memstore import MemoryRaft, MemoryStore


class RecordingStore(MemoryStore):
    """The memory store, also recording the Raft voter changes asked of it, in order."""

    def __init__(self, raft: MemoryRaft, self_addr: str) -> None:
        super().__init__(raft, self_addr)
        self.voter_changes: list[tuple[str, str]] = []

    async def add_voter(self, addr: str, timeout_s: float = 10.0) -> None:
        await super().add_voter(addr, timeout_s)
        self.voter_changes.append(("add", addr))

    async def remove_voter(self, addr: str, timeout_s: float = 10.0) -> None:
        await super().remove_voter(addr, timeout_s)
        self.voter_changes.append(("remove", addr))


EPOCH = 1_800_000_000.0


@dataclass
class FakeMember:
    state: str
    incarnation: int = 1
    meta: dict[str, object] = field(default_factory=dict)  # no restart announced (leader/restart_hold.py)


class FakeGossip:
    """What the loops read from the gossip handle: who is alive."""

    def __init__(self, states: dict[str, str]) -> None:
        self.states = states

    def members(self) -> dict[str, FakeMember]:
        return {name: FakeMember(state) for name, state in self.states.items()}


def node(node_id: str, role: str = "voter") -> Node:
    return Node(
        node_id=node_id,
        name=node_id,
        addr=f"10.0.0.{node_id[-1]}",
        raft_port=7947,
        gossip_port=7946,
        role=role,
        cpu_nanos=4_000_000_000,
        memory_bytes=8 << 30,
    )


async def cluster(store: MemoryStore, nodes: list[Node], clock: TrioClock) -> None:
    await store.write(C.InitCluster(at=clock.now(), cluster_id="c0ffee").encode())
    for record in nodes:
        await store.write(C.AddNode(at=clock.now(), node=record).encode())
        await store.write(C.LeaseSubnet(at=clock.now(), node_id=record.node_id).encode())


def context(store: MemoryStore, gossip: FakeGossip, clock: TrioClock, **ask: Any) -> MemberContext:
    board = LocalBoard()
    board.gossip = gossip  # type: ignore[assignment]

    async def ask_member(host: str) -> dict[str, Any] | None:
        return ask.get(host)

    return MemberContext(
        store=store,
        voter_control=store,
        local=LocalNode("n1", "n1", "10.0.0.1", "10.0.0.1:7947", "voter", 0, b"k" * 32),
        board=board,
        clock=clock,
        commit_timeout_s=5.0,
        ask_member=ask_member,
    )


async def wait_for(store: MemoryStore, condition: Callable[[ClusterState], bool]) -> float:
    """Mock time at which ``condition`` first holds for the committed state."""
    async with store.subscribe() as changes:
        while not condition(store.snapshot()):
            await changes.receive()
    return trio.current_time()


def live_tasks(state: ClusterState) -> dict[str, str | None]:
    """task id -> node id of the service's tasks that should run."""
    return {t.task_id: t.node_id for t in state.tasks.values() if t.desired_state == "running"}


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def test_leader_loop_places_then_replaces_tasks_of_a_dead_node_after_the_grace(
    autojump_clock: Any,
) -> None:
    clock = TrioClock(EPOCH)
    store = MemoryRaft(["10.0.0.1:7947"], leader="10.0.0.1:7947").store("10.0.0.1:7947")
    await cluster(store, [node("n1"), node("n2")], clock)
    spec = ServiceSpec.from_dict({"name": "web", "image": "busybox", "replicas": 2})
    await store.write(C.CreateService(at=clock.now(), service_id="s1", spec=spec).encode())
    gossip = FakeGossip({"n1": "alive", "n2": "alive"})
    ctx = context(store, gossip, clock)
    grace_s = 30.0

    async with trio.open_nursery() as nursery:
        await nursery.start(
            partial(serve_scheduler, ctx, SchedulerConfig(down_grace_s=grace_s), rng=random.Random(7))
        )
        await wait_for(store, lambda s: len(live_tasks(s)) == 2)
        placed = live_tasks(store.snapshot())
        assert sorted(placed.values()) == ["n1", "n2"]  # spread: one task per node

        gossip.states["n2"] = "dead"
        ctx.board.membership_changed.set()
        dead_at = trio.current_time()
        down_at = await wait_for(store, lambda s: s.nodes["n2"].status == "down")
        assert store.snapshot().nodes["n2"].status_at == pytest.approx(EPOCH + down_at)

        replaced_at = await wait_for(store, lambda s: sorted(live_tasks(s).values()) == ["n1", "n1"])
        # Not before the grace (in the clock the loop was given), and promptly once it is over.
        assert dead_at + grace_s <= replaced_at <= down_at + grace_s + LEADER_IDLE_CHECK_S + LEADER_DEBOUNCE_S
        nursery.cancel_scope.cancel()
    assert ctx.board.health["scheduler"] == "running"


async def test_autopilot_loop_replaces_a_dead_voter_after_the_grace(autojump_clock: Any) -> None:
    clock = TrioClock(EPOCH)
    voters = ("10.0.0.1:7947", "10.0.0.2:7947", "10.0.0.3:7947")
    group = MemoryRaft(voters, leader=voters[0])
    store = RecordingStore(group, voters[0])
    nodes = [node("n1"), node("n2"), node("n3"), node("n4", role="replica")]
    await cluster(store, nodes, clock)
    gossip = FakeGossip({"n1": "alive", "n2": "alive", "n3": "alive", "n4": "alive"})
    # n4 answers (join port) that it runs as a voter once it was promoted and restarted.
    ctx = context(store, gossip, clock, **{"10.0.0.4": {"running_role": "voter", "running_generation": 0}})
    grace_s = 20.0
    raft = replace(RaftConfig(), replace_dead_voter_s=grace_s)

    async with trio.open_nursery() as nursery:
        await nursery.start(serve_autopilot, ctx, raft)
        gossip.states["n3"] = "dead"
        await store.write(C.UpdateNode(at=clock.now(), node_id="n3", status="down").encode())
        dead_at = trio.current_time()
        promoted_at = await wait_for(store, lambda s: s.nodes["n4"].role == "voter")
        assert dead_at + grace_s - AUTOPILOT_CHECK_S <= promoted_at
        await wait_for(store, lambda s: s.nodes["n3"].role == "replica")
        while ("remove", "10.0.0.3:7947") not in store.voter_changes:
            await trio.sleep(AUTOPILOT_CHECK_S)
        nursery.cancel_scope.cancel()
    assert store.voter_changes == [("add", "10.0.0.4:7947"), ("remove", "10.0.0.3:7947")]
    assert set(group.voters) == {"10.0.0.1:7947", "10.0.0.2:7947", "10.0.0.4:7947"}


class TimedStore(RecordingStore):
    """The recording store, also noting the mock time of each voter change."""

    def __init__(self, raft: MemoryRaft, self_addr: str) -> None:
        super().__init__(raft, self_addr)
        self.change_times: list[float] = []

    async def add_voter(self, addr: str, timeout_s: float = 10.0) -> None:
        await super().add_voter(addr, timeout_s)
        self.change_times.append(trio.current_time())


async def test_autopilot_loop_adds_waiting_voters_back_to_back(autojump_clock: Any) -> None:
    """Two joined voters run as voters and wait to be added: the second add follows the first at once
    (a configuration change wakes nothing; the loop used to wait its check, the joins staircase)."""
    clock = TrioClock(EPOCH)
    group = MemoryRaft(("10.0.0.1:7947",), leader="10.0.0.1:7947")
    store = TimedStore(group, "10.0.0.1:7947")
    await cluster(store, [node("n1"), node("n2"), node("n3")], clock)
    running = {"running_role": "voter", "running_generation": 0}
    gossip = FakeGossip({"n1": "alive", "n2": "alive", "n3": "alive"})
    ctx = context(store, gossip, clock, **{"10.0.0.2": running, "10.0.0.3": running})

    async with trio.open_nursery() as nursery:
        await nursery.start(serve_autopilot, ctx, RaftConfig())
        while len(store.voter_changes) < 2:
            await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert store.voter_changes == [("add", "10.0.0.2:7947"), ("add", "10.0.0.3:7947")]
    assert store.change_times[1] - store.change_times[0] < AUTOPILOT_CHECK_S


def unanswered_leader(n2_in_gossip: str) -> tuple[TrioClock, RecordingStore, MemberContext, list[str]]:
    """n1 leading alone, n2 in its gossip as ``n2_in_gossip``; the hosts asked over the join port are
    listed, and none answers."""
    clock = TrioClock(EPOCH)
    store = RecordingStore(MemoryRaft(("10.0.0.1:7947",), leader="10.0.0.1:7947"), "10.0.0.1:7947")
    ctx = context(store, FakeGossip({"n1": "alive", "n2": n2_in_gossip}), clock)
    asked: list[str] = []

    async def ask_member(host: str) -> dict[str, Any] | None:
        asked.append(host)
        return None

    return clock, store, replace(ctx, ask_member=ask_member), asked


async def test_autopilot_loop_adds_every_waiting_voter_in_one_step(autojump_clock: Any) -> None:
    """Three joined voters run as voters and wait to be added: each add follows the previous one's
    commit in the same step, with no loop turn between them (issue 19: the leader's loop took 0.14-0.36 s
    from one add's commit to the next in an 8-way formation). Fails when each add is a look of its own
    (the loop's 50 ms gap between them)."""
    clock = TrioClock(EPOCH)
    group = MemoryRaft(("10.0.0.1:7947",), leader="10.0.0.1:7947")
    store = TimedStore(group, "10.0.0.1:7947")
    await cluster(store, [node("n1"), node("n2"), node("n3"), node("n4")], clock)
    running = {"running_role": "voter", "running_generation": 0}
    gossip = FakeGossip({"n1": "alive", "n2": "alive", "n3": "alive", "n4": "alive"})
    ctx = context(store, gossip, clock, **{f"10.0.0.{i}": running for i in (2, 3, 4)})

    async with trio.open_nursery() as nursery:
        await nursery.start(serve_autopilot, ctx, replace(RaftConfig(), voters=5))
        while len(store.voter_changes) < 3:
            await trio.sleep(0.01)
        await trio.sleep(AUTOPILOT_CHECK_S * 4)  # and nothing more: the configuration is complete
        nursery.cancel_scope.cancel()
    assert store.voter_changes == [("add", f"10.0.0.{i}:7947") for i in (2, 3, 4)]
    assert store.change_times[0] == store.change_times[1] == store.change_times[2]


async def test_autopilot_loop_adds_a_voter_as_its_ready_mark_commits(autojump_clock: Any) -> None:
    """A loop that has not looked for a while looks at once when the ready mark of a voter it saw
    admitted commits: the add begins at the mark's commit (the minimum gap counts from the last look,
    not from the wake). Fails with a flat 50 ms sleep after every wake."""
    clock = TrioClock(EPOCH)
    store = TimedStore(MemoryRaft(("10.0.0.1:7947",), leader="10.0.0.1:7947"), "10.0.0.1:7947")
    ctx = context(store, FakeGossip({"n1": "alive", "n2": "alive"}), clock)
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_autopilot, ctx, RaftConfig())
        await cluster(store, [node("n1"), replace(node("n2"), status="joining")], clock)
        await trio.sleep(AUTOPILOT_CHECK_S * 2.5)  # between two of the loop's checks
        marked_at = trio.current_time()
        await store.write(C.UpdateNode(at=clock.now(), node_id="n2", status="ready").encode())
        while not store.voter_changes:
            await trio.sleep(0.001)
        nursery.cancel_scope.cancel()
    assert store.voter_changes == [("add", "10.0.0.2:7947")]
    assert store.change_times == [marked_at]


async def test_autopilot_loop_notes_the_admission_that_woke_it(autojump_clock: Any) -> None:
    """The admission of a voter wakes the loop and its ready mark commits before the look (within the
    minimum gap after the last look): the record that woke the loop is noted with the rest, so the voter
    is seen admitted and added without the join-port question. Fails when the waking change is dropped
    (the voter is then asked, never answers, and is never added)."""
    clock, store, ctx, asked = unanswered_leader("alive")
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_autopilot, ctx, RaftConfig())
        await cluster(store, [node("n1")], clock)
        await trio.sleep(1.0)
        token = C.SetJoinToken(at=clock.now(), join_token=str(new_token("c0ffee")))
        await store.write(token.encode())  # wakes the loop: a look ends now
        await trio.sleep(0.01)
        await store.write(C.AddNode(at=clock.now(), node=replace(node("n2"), status="joining")).encode())
        await trio.sleep(0.01)
        await store.write(C.UpdateNode(at=clock.now(), node_id="n2", status="ready").encode())
        await trio.sleep(3.0)
        nursery.cancel_scope.cancel()
    assert (store.voter_changes, asked) == ([("add", "10.0.0.2:7947")], [])


async def test_autopilot_loop_asks_each_waiting_voter_once_for_back_to_back_adds(autojump_clock: Any) -> None:
    """Three joined voters wait to be added: each is asked once whether it runs as a voter, not again at
    every step (busy joiners answered slowly, each step of an 8-way formation's staircase)."""
    clock = TrioClock(EPOCH)
    group = MemoryRaft(("10.0.0.1:7947",), leader="10.0.0.1:7947")
    store = RecordingStore(group, "10.0.0.1:7947")
    await cluster(store, [node("n1"), node("n2"), node("n3"), node("n4")], clock)
    gossip = FakeGossip({"n1": "alive", "n2": "alive", "n3": "alive", "n4": "alive"})
    ctx = context(store, gossip, clock)
    asked: list[str] = []

    async def ask_member(host: str) -> dict[str, Any] | None:
        asked.append(host)
        await trio.sleep(0.2)  # a busy joiner's answer
        return {"running_role": "voter", "running_generation": 0}

    ctx = replace(ctx, ask_member=ask_member)
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_autopilot, ctx, RaftConfig())
        while len(store.voter_changes) < 3:
            await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert [kind for kind, _ in store.voter_changes] == ["add", "add", "add"]
    assert sorted(asked) == ["10.0.0.2", "10.0.0.3", "10.0.0.4"]


async def admitted_voter_unanswering(
    n2_in_gossip: str, ready_after_s: float = AUTOPILOT_CHECK_S * 2
) -> tuple[list[tuple[str, str]], list[str]]:
    """The autopilot's voter changes and the hosts it asked while n2, admitted as a voter (``joining``),
    is marked ready ``ready_after_s`` later, as the leader loop does when gossip sees it; n2 never
    answers the join-port question; ``n2_in_gossip``: its state in the leader's gossip."""
    clock, store, ctx, asked = unanswered_leader(n2_in_gossip)
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_autopilot, ctx, RaftConfig())
        await cluster(store, [node("n1"), replace(node("n2"), status="joining")], clock)
        await trio.sleep(ready_after_s)
        await store.write(C.UpdateNode(at=clock.now(), node_id="n2", status="ready").encode())
        await trio.sleep(30)
        nursery.cancel_scope.cancel()
    return store.voter_changes, asked


async def test_autopilot_loop_adds_a_voter_it_saw_admitted_once_alive_without_asking_it(
    autojump_clock: Any,
) -> None:
    """A joiner admitted as a voter opened its store as one before its gossip started: once ready and
    alive it is added without the join-port question (a busy joiner's answer took up to 1.2 s). Fails
    when every waiting voter is asked (this one never answers)."""
    assert await admitted_voter_unanswering("alive") == ([("add", "10.0.0.2:7947")], [])


async def test_autopilot_loop_sees_a_voter_admitted_and_marked_ready_between_two_looks(
    autojump_clock: Any,
) -> None:
    """The ready mark can commit 0.07 s after the admission, before the autopilot's next look: the
    admission's record is seen in the committed changes, not only in the state at a look. Fails when
    only the state at each look is observed (n2 is asked then, and never answers)."""
    assert await admitted_voter_unanswering("alive", ready_after_s=0.0) == ([("add", "10.0.0.2:7947")], [])


async def test_autopilot_loop_never_adds_an_admitted_voter_that_left_gossip(autojump_clock: Any) -> None:
    """A join abandoned after its gossip started announces its leave: its record stays a ready voter,
    but it is not alive in the leader's gossip, so it is asked like any other, and not added when it does
    not answer (it would stall commits: 2 voters need both)."""
    changes, asked = await admitted_voter_unanswering("left")
    assert changes == []
    assert asked and set(asked) == {"10.0.0.2"}


async def test_leader_loop_commits_each_cron_tick_on_time_then_starts_its_execution(
    autojump_clock: Any,
) -> None:
    """Every minute: the loop wakes at the tick (not only at its idle check), commits the tick first and
    then the execution's task; in four minutes of mock time, four ticks, each once (each execution
    completes within its minute, so ``forbid`` skips none)."""
    clock = TrioClock(EPOCH)  # EPOCH is a whole minute
    store = MemoryRaft(["10.0.0.1:7947"], leader="10.0.0.1:7947").store("10.0.0.1:7947")
    await cluster(store, [node("n1")], clock)
    spec = ServiceSpec.from_dict(
        {"name": "tick", "image": "busybox", "mode": "replicated-job", "schedule": "* * * * *"}
    )
    await store.write(C.CreateService(at=clock.now(), service_id="s1", spec=spec).encode())
    ctx = context(store, FakeGossip({"n1": "alive"}), clock)

    def iteration(s: ClusterState) -> int:
        return s.services["s1"].job_iteration

    async with trio.open_nursery() as nursery:
        await nursery.start(partial(serve_scheduler, ctx, SchedulerConfig(), rng=random.Random(7)))
        for minute in (1, 2, 3, 4):
            at = await wait_for(store, lambda s, m=minute: iteration(s) == m)
            # on the leader's clock (EPOCH + mock time, ~1.8e9: its float step is ~2e-7 s), never before
            assert EPOCH + minute * 60.0 <= EPOCH + at <= EPOCH + minute * 60.0 + LEADER_DEBOUNCE_S + 0.01
            assert store.snapshot().services["s1"].job.cron_last_tick == EPOCH + minute * 60.0
            await wait_for(
                store, lambda s, m=minute: any(t.job_iteration == m and t.node_id for t in s.tasks.values())
            )
            (task,) = [t for t in store.snapshot().tasks.values() if t.job_iteration == minute]
            report = C.TaskStatusReport(
                task.task_id,
                state=TaskState.COMPLETE,
                state_at=clock.now(),
                exit_code=0,
                reports_exit_code=True,
            )
            await store.write(C.ReportTaskStates(at=clock.now(), node_id="n1", reports=(report,)).encode())
        nursery.cancel_scope.cancel()
    assert iteration(store.snapshot()) == 4
    assert store.snapshot().services["s1"].job.cron_skipped == 0


# --- the leader loop's self-pacing ---------------------------------------------------------------

ADDR = "10.0.0.1:7947"


async def placements_per_commit(store: MemoryStore, total: int) -> list[tuple[float, int]]:
    """(mock time, tasks added) for each commit that added tasks, until ``total`` tasks are placed."""
    seen: list[tuple[float, int]] = []
    count = len(store.snapshot().tasks)
    async with store.subscribe() as changes:
        while sum(1 for t in store.snapshot().tasks.values() if t.node_id) < total:
            await changes.receive()
            now = len(store.snapshot().tasks)
            if now > count:
                seen.append((trio.current_time(), now - count))
            count = now
    return seen


async def start_leader(n_nodes: int, replicas: int, pacing: PacingLimits | None, late_s: float) -> Any:
    clock = TrioClock(EPOCH)
    store = MemoryRaft([ADDR], leader=ADDR).store(ADDR)
    nodes = [node(f"n{i}") for i in range(n_nodes)]
    await cluster(store, nodes, clock)
    if late_s:  # the Raft thread's last tick ran late_s past the period it had set
        store.tick_lateness.tick(0.0, 0.005)
        store.tick_lateness.tick(0.005 + late_s, 0.005)
    spec = ServiceSpec.from_dict({"name": "web", "image": "busybox", "replicas": replicas})
    await store.write(C.CreateService(at=clock.now(), service_id="s1", spec=spec).encode())
    ctx = context(store, FakeGossip({n.node_id: "alive" for n in nodes}), clock)
    run = partial(serve_scheduler, ctx, SchedulerConfig(), rng=random.Random(5), pacing=pacing)
    return store, ctx, run


async def test_without_pressure_200_tasks_on_10_nodes_are_placed_in_one_round(autojump_clock: Any) -> None:
    store, ctx, run = await start_leader(10, 200, None, late_s=0.0)
    started = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        seen = await placements_per_commit(store, 200)
        nursery.cancel_scope.cancel()
    assert [n for _, n in seen] == [200]  # one round, one command: what the loop did before pacing
    # when main's loop places them too (1.0 s of mock time on fd59676, the same test without pacing)
    assert seen[0][0] - started <= LEADER_IDLE_CHECK_S + LEADER_DEBOUNCE_S
    assert ctx.board.health["scheduler"] == "running"


async def test_a_late_raft_thread_bounds_each_round_and_every_task_is_placed(autojump_clock: Any) -> None:
    limits = PacingLimits(start=60, floor=20, increase_per_s=10.0, ceiling=10_000)
    store, ctx, run = await start_leader(10, 400, limits, late_s=0.9)
    started = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        seen = await placements_per_commit(store, 400)
        nursery.cancel_scope.cancel()
    assert sum(n for _, n in seen) == 400
    assert seen[0][1] == 60  # the first round already bounded: the lateness was seen before it
    for at, count in seen:  # never more than the budget grown since (10 a second of calm)
        assert count <= 60 + 10.0 * (at - started) + 1
    assert len(seen) >= 4


async def test_a_late_tick_mid_run_cuts_the_next_rounds(autojump_clock: Any) -> None:
    limits = PacingLimits(start=100, floor=10, increase_per_s=0.0, ceiling=10_000, hold_s=0.0)
    store, ctx, run = await start_leader(10, 300, limits, late_s=0.0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        seen = await placements_per_commit(store, 300)  # no pressure: one round
        assert [n for _, n in seen] == [300]
        store.tick_lateness.tick(100.0, 0.005)
        store.tick_lateness.tick(101.0, 0.005)  # a tick 1 s late
        await store.write(
            C.UpdateService.of(
                store.snapshot().services["s1"],
                at=EPOCH + trio.current_time(),
                spec=ServiceSpec.from_dict({"name": "web", "image": "busybox", "replicas": 550}),
            ).encode()
        )
        seen = await placements_per_commit(store, 550)
        nursery.cancel_scope.cancel()
    assert [n for _, n in seen] == [100, 100, 50]  # start, then the budget held (no growth)


async def test_a_late_tick_far_from_a_widened_window_does_not_bound_the_round(autojump_clock: Any) -> None:
    """The Raft thread stalled for 2 s a moment ago (its followers' window widened to the cap, 3 s) and
    then ran 0.6 s late: the fixed 0.3 s threshold bounded that round; a fifth of the window does not."""
    store, ctx, run = await start_leader(10, 200, PacingLimits(start=60, floor=20), late_s=0.0)
    lateness = store.tick_lateness
    lateness.tick(0.0, 0.005)
    lateness.tick(2.005, 0.005)  # 2 s late
    now = 2.005
    for _ in range(50):
        now += 0.005
        lateness.tick(now, 0.005)
    lateness.take()  # the stall was seen (by a round before this leader's)
    lateness.tick(now + 0.605, 0.005)  # 0.6 s late
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        seen = await placements_per_commit(store, 200)
        nursery.cancel_scope.cancel()
    assert [n for _, n in seen] == [200]


@dataclass
class SteppedClock:
    """TrioClock whose wall time the test steps back by ``back_s``; monotonic time is trio's."""

    epoch: float = EPOCH
    back_s: float = 0.0

    def now(self) -> float:
        return self.epoch + trio.current_time() - self.back_s

    def monotonic(self) -> float:
        return trio.current_time()


async def test_a_wall_step_back_mid_round_delays_no_engine_outage_replacement(
    autojump_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine-outage grace runs on the leader's monotonic clock (engine_outage.py); the loop's wake-up
    for its end must too: a wall clock stepped back 8 s while the round that saw the outage ran made the
    loop (quiet: nothing to place until then) wait its 10 s safety net instead of the 4 s left."""
    clock = SteppedClock()
    store = MemoryRaft(["10.0.0.1:7947"], leader="10.0.0.1:7947").store("10.0.0.1:7947")
    await cluster(store, [node("n1"), node("n2")], clock)  # type: ignore[arg-type]
    spec = ServiceSpec.from_dict({"name": "web", "image": "busybox", "replicas": 2})
    await store.write(C.CreateService(at=clock.now(), service_id="s1", spec=spec).encode())
    ctx = context(store, FakeGossip({"n1": "alive", "n2": "alive"}), clock)  # type: ignore[arg-type]
    stepped_at: list[float] = []
    report_skipped = loop.report_skipped

    def step_during_the_round(state: ClusterState, *args: Any) -> None:  # after its planning, before its wait
        report_skipped(state, *args)
        if state.nodes["n2"].engine_down_at and not stepped_at:  # the first round that saw the outage
            stepped_at.append(trio.current_time())
            clock.back_s = 8.0

    monkeypatch.setattr(loop, "report_skipped", step_during_the_round)
    config = SchedulerConfig(engine_down_grace_s=5.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(serve_scheduler, ctx, config, rng=random.Random(7)))
        await wait_for(store, lambda s: sorted(live_tasks(s).values()) == ["n1", "n2"])
        await trio.sleep(30)  # the loop is quiet
        outage = C.UpdateNode(at=clock.now(), node_id="n2", engine_down_at=clock.now(), engine_error="gone")
        await store.write(outage.encode())
        replaced_at = await wait_for(store, lambda s: sorted(live_tasks(s).values()) == ["n1", "n1"])
        # 5 s of grace, the agent's 1 s of confirmation credited: 4 s after that round (on main: 10 s, the
        # quiet loop's safety net, since its wait measured the 4 s on the stepped wall clock: 12 s)
        assert stepped_at and replaced_at - stepped_at[0] <= 4.0 + 2 * LEADER_DEBOUNCE_S
        nursery.cancel_scope.cancel()
