"""The leader's self-pacing (pure): the AIMD placement budget, and what a budget lets through a round.

``WritePacer`` is driven with injected ``now`` and seeded random signals; ``admit`` and a budgeted
``IncrementalPlanner`` run on states built through the real FSM.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from p2porch.leader.incremental import IncrementalPlanner
from p2porch.leader.pacing import PacingLimits, PacingSignals, WritePacer
from p2porch.leader.scheduling import admit
from p2porch.model import DesiredState, Node, ServiceSpec, Task, TaskState
from p2porch.raft import commands as C
from p2porch.raft.commands import TaskPut
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE, ClusterState
from p2porch.scheduler import Orchestrator
from p2porch.scheduler.orchestrator import CreateTask

DANGER = PacingSignals(tick_late_s=0.8, tick_share=0.8)  # a tick late by 0.8 of the followers' window
SLOW = PacingSignals(commit_s=2.5)
CALM = PacingSignals(tick_late_s=0.05, tick_share=0.1, commit_s=0.02)


def late(late_s: float, share: float, placed: int = 0) -> PacingSignals:
    return PacingSignals(tick_late_s=late_s, tick_share=share, placed=placed)


def test_no_pressure_never_bounds_a_round() -> None:
    """Lateness of any size far from the followers' window, while the leader places nothing (so no rise
    is its doing), and commits under a second: never bounded."""
    pacer = WritePacer()
    rng = random.Random(1)
    for step in range(500):
        signals = PacingSignals(rng.uniform(0, 2.0), rng.uniform(0, 0.49), rng.uniform(0, 0.99), 0)
        assert pacer.observe(step * 0.37, signals) is False
        assert pacer.budget() is None
    assert pacer.cuts == 0


def test_steady_high_lateness_while_placing_is_not_pressure() -> None:
    """A machine at load 15-20: every tick 0.5-0.7 s late whatever the leader places, the followers'
    window widened to ~3 s. The fixed 0.3 s threshold cut this to the floor; now it never bounds."""
    pacer = WritePacer()
    rng = random.Random(2)
    for step in range(300):
        lateness = rng.uniform(0.5, 0.7)
        assert not pacer.observe(step * 0.8, late(lateness, lateness / 3.0, placed=rng.randrange(0, 2000)))
    assert pacer.budget() is None and pacer.cuts == 0


@pytest.mark.parametrize("signal", [DANGER, SLOW], ids=["tick near the window", "slow commit"])
def test_danger_cuts_from_what_was_placed_and_at_most_start(signal: PacingSignals) -> None:
    limits = PacingLimits()
    big = WritePacer(limits)
    assert big.observe(10.0, replace(signal, placed=50_000))
    assert big.budget() == limits.start and big.why == "danger"  # half of 50,000 is more than the start
    small = WritePacer(limits)
    assert small.observe(10.0, replace(signal, placed=900))
    assert small.budget() == 450
    idle = WritePacer(limits)  # pressure seen before a round (nothing placed): the first budget
    assert idle.observe(10.0, signal)
    assert idle.budget() == limits.start


def test_danger_is_a_share_of_the_window_not_a_lateness() -> None:
    """0.3 s late when the followers hold 0.5 s is danger; 1.2 s late when they hold 3 s is not."""
    limits = PacingLimits(danger_share=0.5)
    assert late(0.3, 0.6).danger(limits)
    assert not late(1.2, 0.4).danger(limits)
    assert late(1.5, 0.5).danger(limits)
    pacer = WritePacer(limits)
    assert not pacer.observe(0.0, late(1.2, 0.4, placed=500))
    assert pacer.observe(1.0, late(1.6, 0.53, placed=500)) and pacer.why == "danger"


def test_a_steady_lateness_near_the_window_is_cut_each_hold() -> None:
    """Approaching the timeout cuts even when nothing rises (the baseline is as high)."""
    limits = PacingLimits(start=2000, floor=200, hold_s=1.0)
    pacer = WritePacer(limits)
    seen = []
    for i in range(6):
        pacer.observe(float(i), late(1.6, 0.55, placed=4000))
        seen.append(pacer.budget())
    assert seen == [2000, 1000, 500, 250, 200, 200]
    assert pacer.recent == pytest.approx(pacer.baseline)  # nothing rose
    pacer = WritePacer(limits)
    assert pacer.observe(0.0, DANGER)
    assert not pacer.observe(0.5, DANGER)  # the same overload, seen again within hold_s
    assert pacer.budget() == 2000
    seen = []
    for i in range(1, 10):
        pacer.observe(float(i), DANGER)
        seen.append(pacer.budget())
    assert seen == [1000, 500, 250, 200, 200, 200, 200, 200, 200]


def rise(pacer: WritePacer, placed: int, start: float = 0.0) -> tuple[float, list[bool]]:
    """0.3 s late for a minute (steady), then the lateness climbing to 1.2 s over 10 s (its share of the
    window stays below danger); the cuts seen during the climb."""
    now = start
    for _ in range(60):
        assert not pacer.observe(now, late(0.3, 0.1, placed))
        now += 1.0
    cuts = []
    for step in range(10):
        lateness = 0.3 + 0.09 * (step + 1)
        cuts.append(pacer.observe(now, late(lateness, 0.4 * lateness / 1.2, placed)))
        now += 1.0
    return now, cuts


def test_lateness_rising_with_placements_cuts_once_per_recent_period() -> None:
    limits = PacingLimits(recent_s=5.0, baseline_s=30.0, rise_ratio=1.5, rise_margin_s=0.1)
    pacer = WritePacer(limits)
    _, cuts = rise(pacer, placed=400)
    assert any(cuts) and pacer.why == "rise"
    assert sum(cuts) <= 2  # 10 s of rise: at most one cut per recent_s
    first = cuts.index(True)
    assert not any(cuts[first + 1 : first + 5])
    assert pacer.budget() is not None and pacer.budget() <= limits.start
    assert pacer.recent >= limits.rise_ratio * pacer.baseline + limits.rise_margin_s


def test_lateness_rising_while_the_leader_places_nothing_cuts_nothing() -> None:
    """The same climb, but the leader placed nothing within ``recent_s``: another process's doing."""
    pacer = WritePacer()
    _, cuts = rise(pacer, placed=0)
    assert not any(cuts) and pacer.budget() is None
    bounded = WritePacer()  # already bounded: the budget keeps growing through the climb
    bounded.observe(0.0, DANGER)
    before = bounded.budget()
    _, cuts = rise(bounded, placed=0, start=1.0)
    after = bounded.budget()
    assert not any(cuts) and before is not None and (after is None or after > before)


def test_the_budget_grows_while_lateness_is_steady_but_high() -> None:
    limits = PacingLimits(start=2000, floor=200, increase_per_s=200.0, ceiling=20_000)
    pacer = WritePacer(limits)
    assert pacer.observe(0.0, late(1.8, 0.6, placed=4000))  # a stall near the window: cut to 2,000
    assert pacer.budget() == 2000
    seen = []
    for i in range(1, 11):  # then 0.6-0.8 s late every second, a fifth of the widened window
        pacer.observe(float(i), late(0.6 + 0.2 * (i % 2), 0.2, placed=2000))
        seen.append(pacer.budget())
    assert seen == [2000 + 200 * i for i in range(1, 11)]


def test_grows_back_with_time_and_turns_off_past_the_ceiling() -> None:
    limits = PacingLimits(start=2000, floor=200, ceiling=5000, increase_per_s=100.0)
    pacer = WritePacer(limits)
    pacer.observe(0.0, DANGER)
    pacer.observe(1.0, DANGER)
    assert pacer.budget() == 1000
    pacer.observe(3.0, CALM)  # 2 s without pressure: +200
    assert pacer.budget() == 1200
    pacer.observe(3.0, CALM)  # no time passed: no growth
    assert pacer.budget() == 1200
    pacer.observe(40.0, CALM)  # 37 s more: 4,900, below the ceiling
    assert pacer.budget() == 4900
    pacer.observe(41.0, CALM)  # past the ceiling: no bound again
    assert pacer.budget() is None and pacer.repair_budget() is None
    assert pacer.observe(42.0, DANGER) and pacer.budget() == limits.start


def test_growth_starts_from_the_last_pressure_not_from_the_last_cut() -> None:
    pacer = WritePacer(PacingLimits(start=1000, floor=100, increase_per_s=100.0, hold_s=5.0))
    pacer.observe(0.0, DANGER)
    pacer.observe(4.0, DANGER)  # within hold: no cut, but the pressure goes on until 4 s
    pacer.observe(6.0, CALM)
    assert pacer.budget() == 1200  # 2 s of calm, not 6


def test_the_repair_budget_is_the_budget_never_below_its_floor() -> None:
    limits = PacingLimits(start=2000, floor=200, repair_floor=1000)
    pacer = WritePacer(limits)
    assert pacer.repair_budget() is None  # off: repairs unbounded, as everything else
    pacer.observe(0.0, DANGER)
    assert pacer.budget() == 2000 and pacer.repair_budget() == 2000
    for i in range(1, 5):
        pacer.observe(float(i), DANGER)
    assert pacer.budget() == 200 and pacer.repair_budget() == 1000


@pytest.mark.parametrize("seed", range(8))
def test_random_signals_keep_the_budget_off_or_at_least_the_floor(seed: int) -> None:
    rng = random.Random(seed)
    limits = PacingLimits(
        floor=rng.choice([1, 50, 200]),
        start=rng.choice([500, 2000]),
        ceiling=rng.choice([4000, 20000]),
        increase_per_s=rng.choice([10.0, 200.0]),
        hold_s=rng.choice([0.0, 1.0]),
        recent_s=rng.choice([2.0, 5.0]),
    )
    pacer = WritePacer(limits)
    now = 0.0
    pressured = False
    for _ in range(2000):
        now += rng.expovariate(2.0)
        lateness = rng.expovariate(3.0)
        signals = PacingSignals(
            lateness, lateness / rng.uniform(0.5, 3.0), rng.expovariate(3.0), rng.randrange(0, 5000)
        )
        before = pacer.budget()
        cut = pacer.observe(now, signals)
        budget = pacer.budget()
        pressure = signals.danger(limits) or pacer.rising(now)
        pressured |= pressure
        assert budget is None or limits.floor <= budget < limits.ceiling
        repairs = pacer.repair_budget()
        assert (repairs is None) == (budget is None)
        assert repairs is None or repairs >= max(limits.repair_floor, budget or 0)
        if cut:
            assert pressure
            assert budget is not None and (before is None or budget <= max(limits.floor, before))
        if not pressure and before is not None:
            assert budget is None or budget >= before  # calm never lowers it
    assert pressured and pacer.cuts > 0


# --- admit and the budgeted planner --------------------------------------------------------------


def run(state: ClusterState, command: C.Command) -> ClusterState:
    new, result, _ = apply(state, command.encode())
    assert result["ok"], result
    return new


def cluster(nodes: int, services: dict[str, int]) -> ClusterState:
    state = run(EMPTY_STATE, C.InitCluster(at=0.0, cluster_id="c0ffee"))
    for i in range(nodes):
        record = Node(
            node_id=f"n{i}",
            name=f"n{i}",
            addr=f"10.0.0.{i + 1}",
            raft_port=7947,
            gossip_port=7946,
            role="voter",
            cpu_nanos=64 * 10**9,
            memory_bytes=256 << 30,
        )
        state = run(state, C.AddNode(at=0.0, node=record))
    for sid, replicas in services.items():
        spec = ServiceSpec(name=sid, image="app:1", replicas=replicas)
        state = run(state, C.CreateService(at=0.0, service_id=sid, spec=spec))
    return state


def create(task_id: str, service_id: str, slot: int) -> CreateTask:
    return CreateTask(task_id, service_id, slot, None, 1, "h", 0.0)


def pending(task_id: str, service_id: str, slot: int) -> Task:
    return Task(
        task_id=task_id,
        service_id=service_id,
        slot=slot,
        node_id=None,
        state=TaskState.PENDING,
        state_at=0.0,
        spec_version=1,
        template_hash="h",
    )


def test_admit_puts_repairs_first_then_waiting_then_new_slots() -> None:
    held = [pending("old-a1", "a", 1)]  # slot a/1 has a task: its create is a repair
    waiting = [pending("w-b0", "b", 0), pending("w-b1", "b", 1)]
    creates = [create("a0", "a", 0), create("a1", "a", 1), create("c0", "c", 0), create("c1", "c", 1)]
    tasks = held + waiting

    got = admit(creates, waiting, tasks, budget=3)
    assert [c.task_id for c in got.creates] == ["a1"]  # the repair, in the creates' order
    assert [t.task_id for t in got.waiting] == ["w-b0", "w-b1"]
    assert got.deferred == {"a": 1, "c": 2} and got.held_back == 3

    got = admit(creates, waiting, tasks, budget=4)
    assert [c.task_id for c in got.creates] == ["a0", "a1"]  # order kept
    assert got.deferred == {"c": 2} and got.held_back == 2

    got = admit(creates, waiting, tasks, budget=0)  # repairs go through whatever the budget
    assert [c.task_id for c in got.creates] == ["a1"] and got.waiting == []
    assert got.deferred == {"a": 1, "b": 2, "c": 2} and got.held_back == 5

    got = admit(creates, waiting, tasks, budget=6)
    assert got.creates == creates and got.waiting == waiting
    assert got.deferred == {} and got.held_back == 0


def placed_by(state: ClusterState, items: list[object]) -> int:
    return sum(1 for i in items if isinstance(i, TaskPut) and i.task.state == TaskState.ASSIGNED)


def commit(state: ClusterState, items: list[object], now: float) -> ClusterState:
    return run(state, C.PutTasks(at=now, items=tuple(items)))  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(4))
def test_a_budgeted_planner_places_budget_per_round_until_every_task_is_placed(seed: int) -> None:
    rng = random.Random(seed)
    services = {f"s{i:02d}": rng.randrange(1, 40) for i in range(12)}
    total = sum(services.values())
    budget = rng.choice([7, 25, 60])
    state = cluster(6, services)
    planner = IncrementalPlanner(Orchestrator(random.Random(seed)))
    now, rounds = 10.0, 0
    while True:
        out = planner.plan(state, now, budget)
        if out.empty:
            break
        placed = placed_by(state, out.items)
        assert placed == min(budget, total - len(state.tasks))  # the budget, or the rest
        assert out.held_back <= total - len(state.tasks) - placed
        state = commit(state, out.items, now)
        now += 0.5
        rounds += 1
        assert rounds < 200
    assert len(state.tasks) == total
    assert all(t.node_id is not None for t in state.tasks.values())
    assert rounds == -(-total // budget)  # full rounds of the budget, never an idle one between


def test_without_a_budget_the_planner_places_everything_in_one_round() -> None:
    state = cluster(6, {"a": 30, "b": 30})
    out = IncrementalPlanner(Orchestrator(random.Random(1))).plan(state, 10.0)
    assert placed_by(state, out.items) == 60 and out.held_back == 0 and not out.deferred


def test_a_lost_nodes_tasks_are_replaced_before_new_slots_under_a_small_budget() -> None:
    state = cluster(3, {"old": 9})
    planner = IncrementalPlanner(Orchestrator(random.Random(3)), full_every_s=1e9)
    state = commit(state, planner.plan(state, 1.0).items, 1.0)
    lost = {t.task_id for t in state.tasks.values() if t.node_id == "n0"}
    assert lost
    state = run(
        state, C.UpdateNode(at=2.0, node_id="n0", status="down", node_version=state.nodes["n0"].version)
    )
    state = run(
        state, C.CreateService(at=2.0, service_id="new", spec=ServiceSpec(name="new", image="a", replicas=50))
    )
    later = 2.0 + 3600.0  # past the down grace: the lost tasks are replaced
    out = planner.plan(state, later, len(lost))
    new_records = [i.task for i in out.items if isinstance(i, TaskPut) and i.task_version == 0]
    assert {t.service_id for t in new_records} == {"old"}  # every replacement, no new slot
    assert len(new_records) == len(lost) and out.deferred == {"new": 50}


def test_a_bounded_round_plans_only_the_deferred_services_its_budget_can_use() -> None:
    state = cluster(8, {f"s{i:02d}": 30 for i in range(40)})
    planner = IncrementalPlanner(Orchestrator(random.Random(9)), full_every_s=1e9)
    out = planner.plan(state, 1.0, 25)  # the first round is full: every service, 25 placed
    assert planner.last_scope == 40 and len(out.deferred) == 40
    now, scopes = 1.0, []
    while not out.empty:
        state = commit(state, out.items, now)
        now += 0.5
        out = planner.plan(state, now, 25)
        scopes.append(planner.last_scope)
    assert len(state.tasks) == 1200 and all(t.node_id for t in state.tasks.values())
    # each round: the one or two services placed last round (changed) and those whose turn it is
    assert max(scopes) <= 4
    out = IncrementalPlanner(Orchestrator(random.Random(9))).plan(cluster(8, {"a": 5}), 1.0)
    assert not out.deferred


def test_admit_gives_repairs_their_own_budget_before_anything_else() -> None:
    held = [pending(f"old-a{i}", "a", i) for i in range(5)]  # slots a/0..4 have tasks: repairs
    waiting = [pending("w-b0", "b", 0)]
    creates = [create(f"a{i}", "a", i) for i in range(5)] + [create("c0", "c", 0), create("c1", "c", 1)]
    tasks = held + waiting

    got = admit(creates, waiting, tasks, budget=2, repair_budget=3)
    assert [c.task_id for c in got.creates] == ["a0", "a1", "a2"]  # repairs past the placement budget
    assert got.waiting == []  # the repairs used the placement budget up
    assert got.deferred_repairs == {"a": 2} and got.deferred_slots == {("a", 3), ("a", 4)}
    assert got.deferred == {"b": 1, "c": 2} and got.held_back == 3

    got = admit(creates, waiting, tasks, budget=5, repair_budget=3)
    assert [c.task_id for c in got.creates] == ["a0", "a1", "a2", "c0"]
    assert [t.task_id for t in got.waiting] == ["w-b0"]
    assert got.deferred == {"c": 1} and got.deferred_repairs == {"a": 2}

    got = admit(creates, waiting, tasks, budget=3, repair_budget=None)  # repairs unbounded (as before)
    assert [c.task_id for c in got.creates] == ["a0", "a1", "a2", "a3", "a4"]
    assert got.deferred_repairs == {} and not got.deferred_slots

    got = admit(creates, waiting, tasks, budget=8, repair_budget=5)
    assert got.creates == creates and got.waiting == waiting
    assert got.deferred == {} and got.deferred_repairs == {} and got.held_back == 0


def lose_nodes(state: ClusterState, node_ids: list[str], at: float) -> ClusterState:
    for node_id in node_ids:
        update = C.UpdateNode(
            at=at, node_id=node_id, status="down", node_version=state.nodes[node_id].version
        )
        state = run(state, update)
    return state


@pytest.mark.parametrize("seed", range(3))
def test_a_lost_zone_is_repaired_in_chunks_of_the_repair_budget_before_any_new_task(seed: int) -> None:
    """Three of eight nodes lost: their tasks (of 20 services) are replaced ``repairs`` a round, each
    round's stops of lost tasks going out with their replacements only; a new service waits until the
    last repair is written."""
    rng = random.Random(seed)
    state = cluster(8, {f"s{i:02d}": rng.randrange(4, 16) for i in range(20)})
    planner = IncrementalPlanner(Orchestrator(random.Random(seed)), full_every_s=1e9)
    state = commit(state, planner.plan(state, 1.0).items, 1.0)
    lost_nodes = ["n0", "n1", "n2"]
    lost = {t.task_id for t in state.tasks.values() if t.node_id in lost_nodes}
    assert len(lost) > 20
    state = lose_nodes(state, lost_nodes, 2.0)
    spec = ServiceSpec(name="zz", image="a", replicas=30)
    state = run(state, C.CreateService(at=2.0, service_id="zz", spec=spec))
    budget, repairs = rng.choice([(3, 7), (5, 10), (1, 4)])
    now, rounds, repaired, new_seen_at = 3600.0, 0, 0, None
    while True:
        out = planner.plan(state, now, budget, repairs)
        if out.empty:
            break
        puts = [i.task for i in out.items if isinstance(i, TaskPut)]
        created = [i.task for i in out.items if isinstance(i, TaskPut) and i.task_version == 0]
        replaced = [t for t in created if t.service_id != "zz"]
        stopped = [t for t in puts if t.task_id in lost and t.desired_state == DesiredState.SHUTDOWN]
        assert len(replaced) <= repairs
        assert {(t.service_id, t.slot) for t in stopped} <= {(t.service_id, t.slot) for t in replaced}
        if out.deferred_repairs:
            assert len(replaced) == repairs  # the turn fills the repair budget
            assert not any(t.service_id == "zz" for t in puts)  # nothing new while repairs wait
        elif new_seen_at is None and any(t.service_id == "zz" for t in puts):
            new_seen_at = rounds
        repaired += len(replaced)
        state = commit(state, out.items, now)
        now += 0.5
        rounds += 1
        assert rounds < 500
    assert repaired == len(lost)
    assert rounds >= -(-len(lost) // repairs)
    live = [t for t in state.tasks.values() if t.desired_state == DesiredState.RUNNING]
    assert all(t.node_id not in lost_nodes for t in live)
    assert sum(1 for t in live if t.service_id == "zz") == 30 and new_seen_at is not None


def test_a_left_out_repairs_slot_is_written_nothing() -> None:
    """The lost node's task of a repair left out keeps its record unchanged (its stop waits with it)."""
    state = cluster(3, {"old": 9})
    planner = IncrementalPlanner(Orchestrator(random.Random(3)), full_every_s=1e9)
    state = commit(state, planner.plan(state, 1.0).items, 1.0)
    lost = sorted((t.slot, t.task_id) for t in state.tasks.values() if t.node_id == "n0")
    assert len(lost) >= 2
    state = lose_nodes(state, ["n0"], 2.0)
    out = planner.plan(state, 3600.0, budget=1, repair_budget=1)
    written = {i.task.task_id: i.task for i in out.items if isinstance(i, TaskPut)}
    replaced_slots = {i.task.slot for i in out.items if isinstance(i, TaskPut) and i.task_version == 0}
    assert len(replaced_slots) == 1 and out.deferred_repairs == {"old": len(lost) - 1}
    for slot, task_id in lost:
        if slot in replaced_slots:
            assert written[task_id].desired_state == DesiredState.SHUTDOWN
        else:
            assert task_id not in written
