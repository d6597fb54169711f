"""The pause after a leader round: as long as the round took (capped), none after a new leadership's first or
sweep round that wrote nothing (pure; ``leader/round_pause.py``, ``IncrementalPlanner.last_takeover``)."""

from __future__ import annotations

import random

import pytest
from test_leader_first_round import settled_cluster
from test_leader_incremental import report, run

from p2porch.leader.incremental import IncrementalPlanner
from p2porch.leader.round_pause import ROUND_PACE_MAX_S, round_pause
from p2porch.model import NodeStatus, ServiceSpec
from p2porch.raft import commands as C
from p2porch.raft.state import ClusterState
from p2porch.scheduler import Orchestrator


@pytest.mark.parametrize("takeover", [False, True])
def test_a_round_that_wrote_pauses_as_long_as_it_took(takeover: bool) -> None:
    assert round_pause(0.3, wrote=True, takeover=takeover) == 0.3
    assert round_pause(2.5, wrote=True, takeover=takeover) == ROUND_PACE_MAX_S


def test_a_steady_round_that_wrote_nothing_still_pauses() -> None:
    assert round_pause(0.04, wrote=False, takeover=False) == 0.04
    assert round_pause(1.7, wrote=False, takeover=False) == ROUND_PACE_MAX_S
    assert round_pause(-0.01, wrote=False, takeover=False) == 0.0  # a clock step back: no pause, no negative


def test_a_takeover_round_that_wrote_nothing_does_not_pause() -> None:
    assert round_pause(1.2, wrote=False, takeover=True) == 0.0


def running_report(state: ClusterState, rng: random.Random, now: float) -> ClusterState:
    """An agent's report that changes a running task's record and leaves its service settled."""
    task = rng.choice(sorted(state.tasks.values(), key=lambda t: t.task_id))
    return report(state, now, task.task_id, state="running", health=rng.choice(["healthy", ""]))


def loop_rounds(
    planner: IncrementalPlanner, state: ClusterState, now: float, churn: random.Random | None, rounds: int
) -> tuple[ClusterState, list[tuple[bool, bool, float]]]:
    """The leader loop's rounds with writes committed: (takeover, wrote, pause) each, a round taking 0.2 s;
    ``churn``: an agent's report (a task failing one time in four) commits before every round."""
    seen = []
    for _ in range(rounds):
        plan = planner.plan(state, now)
        seen.append(
            (
                planner.last_takeover,
                plan.writes,
                round_pause(0.2, wrote=plan.writes, takeover=planner.last_takeover),
            )
        )
        if plan.items:
            state = run(state, C.PutTasks(at=now, items=tuple(plan.items)))
        now += 0.5
        if churn is not None:
            if churn.random() < 0.25:
                victim = churn.choice(sorted(t.task_id for t in state.tasks.values() if t.node_id))
                state = report(state, now, victim, state="failed", exit_code=1)
            else:
                state = running_report(state, churn, now)
    return state, seen


def test_the_empty_first_and_sweep_rounds_of_a_new_leadership_do_not_pause_then_every_round_does() -> None:
    state = settled_cluster(30)  # 90 tasks, 9 a sweep round: a first round then 10 sweep rounds
    planner = IncrementalPlanner(Orchestrator(random.Random(1)), sweep_tasks=9)
    _, seen = loop_rounds(planner, state, 60.0, None, 14)
    assert seen == [(True, False, 0.0)] * 11 + [(False, False, 0.2)] * 3
    assert not planner.sweeping and planner.first_rounds == 1


def test_a_service_created_during_the_takeover_is_placed_by_the_next_round_which_pauses() -> None:
    state = settled_cluster(30)
    planner = IncrementalPlanner(Orchestrator(random.Random(1)), sweep_tasks=9)
    assert planner.plan(state, 60.0).empty and planner.last_takeover  # the first round: no pause next
    state = run(
        state, C.CreateService(at=60.1, service_id="probe", spec=ServiceSpec(name="probe", image="a:1"))
    )
    plan = planner.plan(state, 60.2)  # a sweep round, at once
    assert {i.task.service_id for i in plan.items if isinstance(i, C.TaskPut)} == {"probe"}
    assert planner.last_takeover and plan.writes and round_pause(0.2, wrote=True, takeover=True) == 0.2


@pytest.mark.parametrize("seed", range(6))
def test_under_churn_only_the_takeover_rounds_skip_their_pause(seed: int) -> None:
    """Reports commit before every round and some tasks fail (rounds that write): the rounds without a pause
    are the new leadership's first and sweep rounds that wrote nothing, at most one plus one per sweep turn,
    all at its start; after the sweep every round pauses, and a leadership lost and won starts over."""
    churn = random.Random(seed)
    state = settled_cluster(30)
    # seeded apart from settled_cluster's Random(0), whose task ids it would draw again
    planner = IncrementalPlanner(Orchestrator(random.Random(100 + seed)), full_every_s=1e9, sweep_tasks=9)
    for term in range(2):
        state, seen = loop_rounds(planner, state, 60.0 + 100 * term, churn, 25)
        takeover = [t for t, _, _ in seen]
        sweep_rounds = takeover.index(False)
        assert 1 <= sweep_rounds <= 1 + 10 and not any(takeover[sweep_rounds:])  # bounded, then never again
        assert [p for _, wrote, p in seen if wrote] == [0.2] * sum(w for _, w, _ in seen)  # a write: a pause
        assert all(p == 0.2 for _, _, p in seen[sweep_rounds:])
        assert any(w for _, w, _ in seen)  # the churn made rounds write
        planner.reset()  # leadership lost and won back


def test_a_full_round_during_the_sweep_ends_the_takeover() -> None:
    """A node changed: the round plans everything (a full round, no sweep left), and pauses as any other."""
    state = settled_cluster(30)
    planner = IncrementalPlanner(Orchestrator(random.Random(1)), sweep_tasks=9)
    planner.plan(state, 60.0)
    planner.plan(state, 60.1)
    assert planner.last_takeover and planner.sweeping
    node = sorted(state.nodes)[0]
    state = run(state, C.UpdateNode(at=60.2, node_id=node, status=NodeStatus.DOWN))
    plan = planner.plan(state, 60.3)
    assert not planner.last_takeover and not planner.sweeping and planner.first_rounds == 1
    assert plan.writes and round_pause(0.2, wrote=plan.writes, takeover=planner.last_takeover) == 0.2


def test_a_leader_that_took_over_an_empty_cluster_pauses_after_every_round_but_its_first() -> None:
    """The throughput benchmark's leader: nothing to sweep, so its placing rounds are all paced."""
    state = settled_cluster(0)
    planner = IncrementalPlanner(Orchestrator(random.Random(3)))
    assert planner.plan(state, 10.0).empty and planner.last_takeover and not planner.sweeping
    for s in range(5):
        spec = ServiceSpec(name=f"new{s}", image="a:1", replicas=4)
        state = run(state, C.CreateService(at=11.0 + s, service_id=f"new{s}", spec=spec))
        plan = planner.plan(state, 11.5 + s)
        assert plan.writes and not planner.last_takeover
        state = run(state, C.PutTasks(at=11.5 + s, items=tuple(plan.items)))
    assert planner.first_rounds == 1
