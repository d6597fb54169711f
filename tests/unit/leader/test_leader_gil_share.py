"""A round with a checkpoint decides exactly what a round without one decides; LeadershipCheck asks
whether the round is still wanted on time and ends a deposed leader's round."""

from __future__ import annotations

import random

import pytest
from test_leader_incremental import commit, decisions, new_cluster, random_change, run

from p2porch.leader.gil_share import LeadershipCheck, RoundAbandoned
from p2porch.leader.incremental import IncrementalPlanner
from p2porch.leader.scheduling import CHECKPOINT_EVERY, paced, plan_round
from p2porch.model import Node, ServiceSpec
from p2porch.raft import commands as C
from p2porch.raft.state import EMPTY_STATE
from p2porch.scheduler import Orchestrator


@pytest.mark.parametrize("seed", range(20))
def test_a_checkpointed_planner_decides_what_a_plain_full_round_decides(seed: int) -> None:
    rng = random.Random(seed)
    state, now = new_cluster(rng), 10.0
    plain, paused = Orchestrator(random.Random(seed)), Orchestrator(random.Random(seed))
    calls: list[int] = []
    planner = IncrementalPlanner(paused, full_every_s=1e9, checkpoint=lambda: calls.append(len(calls)))
    for step in range(40):
        full = plan_round(state, now, plain)
        checked = planner.plan(state, now)
        assert decisions(checked) == decisions(full), f"seed {seed} step {step}"
        assert paused.rng.getstate() == plain.rng.getstate()
        state = commit(rng, state, full, now)
        for _ in range(rng.randrange(0, 4)):
            state = random_change(rng, state, now)
        if rng.random() < 0.2:
            planner.reset()  # a full round again, checkpoints and all
        now += rng.choice([0.0, 1.0, 10.0])
    assert calls  # the checkpoint was reached (after each service at least)


def test_a_large_first_round_checkpoints_in_its_task_loops_and_decides_the_same() -> None:
    state = run(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c"))
    for i in range(20):
        node = Node(f"id{i}", f"n{i}", f"10.0.{i}.1", 7947, 7946, cpu_nanos=8 * 10**9)
        state = run(state, C.AddNode(at=1.0, node=node))
    for s in range(12):
        spec = ServiceSpec(name=f"svc{s}", image="app:1", replicas=100, reserve_cpu_nanos=10**7)
        state = run(state, C.CreateService(at=1.5, service_id=f"s{s}", spec=spec))
    first = plan_round(state, 2.0, Orchestrator(random.Random(5)))
    state = run(state, C.PutTasks(at=2.0, items=tuple(first.items)))  # 1,200 tasks placed
    calls = 0

    def count() -> None:
        nonlocal calls
        calls += 1

    checked = IncrementalPlanner(Orchestrator(random.Random(9)), checkpoint=count).plan(state, 3.0)
    assert decisions(checked) == decisions(plan_round(state, 3.0, Orchestrator(random.Random(9))))
    # 12 services in reconcile and in group_tasks (read once for the scope and the planner's own
    # bookkeeping), plus the task loops
    assert calls >= 2 * 12 + 2 * (len(state.tasks) // CHECKPOINT_EVERY)


def test_paced_calls_the_checkpoint_after_every_chunk_and_keeps_the_items() -> None:
    calls: list[int] = []
    out = []
    for x in paced(range(2 * CHECKPOINT_EVERY + 3), lambda: calls.append(len(out))):
        out.append(x)
    assert out == list(range(2 * CHECKPOINT_EVERY + 3))
    assert calls == [CHECKPOINT_EVERY, 2 * CHECKPOINT_EVERY]  # after the 500th and the 1,000th item


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def clock(self) -> float:
        return self.now


def test_the_check_asks_keep_going_once_its_work_time_has_passed() -> None:
    t = FakeTime()
    asked: list[float] = []

    def keep_going() -> bool:
        asked.append(t.now)
        return True

    check = LeadershipCheck(0.01, clock=t.clock)
    check.restart(keep_going)
    check()
    assert asked == []  # no time passed
    t.now += 0.009
    check()
    assert asked == []
    t.now += 0.002  # 11 ms of work since the start
    check()
    assert asked == [t.now]
    check()
    assert len(asked) == 1  # the work time counts again from the last check
    t.now += 5.0  # between two rounds: restart() forgets the idle time
    check.restart(keep_going)
    check()
    assert len(asked) == 1
    check.restart()  # no keep_going: the checks pass
    t.now += 1.0
    check()


def test_a_deposed_leader_abandons_its_round_at_a_check_and_a_reset_planner_plans_in_full() -> None:
    rng = random.Random(4)
    state = new_cluster(rng)
    t = FakeTime()
    leading = [True]
    asked = [0]
    check = LeadershipCheck(0.01, clock=t.clock)

    def keep_going() -> bool:
        asked[0] += 1
        return leading[0]

    def checkpoint() -> None:
        t.now += 0.004  # every chunk of work takes 4 ms
        check()

    planner = IncrementalPlanner(Orchestrator(random.Random(8)), checkpoint=checkpoint)
    check.restart(keep_going)
    leading[0] = False  # deposed before the first check
    with pytest.raises(RoundAbandoned):
        planner.plan(state, 10.0)
    assert asked[0] == 1 and planner.full_rounds == 0  # abandoned at the first check
    planner.reset()
    leading[0] = True
    check.restart(keep_going)
    plain = Orchestrator(random.Random())
    plain.rng.setstate(planner.orchestrator.rng.getstate())  # the abandoned round drew task ids
    plan = planner.plan(state, 10.0)
    assert decisions(plan) == decisions(plan_round(state, 10.0, plain))
    assert asked[0] > 1 and planner.full_rounds == 1
