"""The full round's fast paths decide exactly what the general code does (issue 19, seventh round; pure).

Optimized: the settled slot in ``Orchestrator._settled_slot``, the round's node fates kept per node
(``RoundContext.node_fate``), ``Task.healthy`` by table, the new leader's first round reading the tasks once
(``group_tasks``, its node infos from the ``NodeUsage`` it keeps). The reference turns each off: the
general ``_reconcile_key`` for every slot, ``RoundContext._node_fate`` asked every time, the old ``healthy``
and a ``plan_round`` built by ``full_scope`` alone. Random clusters come from the incremental
planner's property test (real FSM: reports, service and node changes, rollouts, removals, invalid
specs); every reconcile is compared whole (actions in order, events, wakes), every round's decisions
and the orchestrators' random sources too.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from test_leader_incremental import commit, decisions, new_cluster, random_change

from p2porch.leader.incremental import IncrementalPlanner
from p2porch.leader.scheduling import (
    Scope,
    full_scope,
    group_tasks,
    occupies_node,
    placed_tasks,
    plan_round,
    plan_scope,
)
from p2porch.model import Task, TaskHealth
from p2porch.raft.state import ClusterState
from p2porch.scheduler import Orchestrator, build_node_infos
from p2porch.scheduler.round_context import RoundContext
from p2porch.scheduler.usage import NodeUsage


class GeneralOrchestrator(Orchestrator):
    """Decides every slot by the general code (no settled-slot shortcut)."""

    @staticmethod
    def _settled_slot(*_args: object) -> None:
        return None


def _old_healthy(self: Task) -> bool | None:
    if self.health in (TaskHealth.NONE, TaskHealth.STARTING):
        return None
    return self.health == TaskHealth.HEALTHY


@pytest.fixture
def reference(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Context manager factory: inside it, the node fates are computed every time and ``healthy`` is
    the old property (what the general code ran before the fast paths)."""

    class _Reference:
        def __enter__(self) -> None:
            monkeypatch.setattr(RoundContext, "node_fate", RoundContext._node_fate)
            monkeypatch.setattr(Task, "healthy", property(_old_healthy))

        def __exit__(self, *_exc: object) -> None:
            monkeypatch.undo()

    yield _Reference()


def reference_full_round(state: ClusterState, now: float, orchestrator: Orchestrator) -> object:
    """A full round as before the first round read the tasks once: ``full_scope`` alone."""
    return plan_scope(state, now, orchestrator, full_scope(state))


@pytest.mark.parametrize("seed", range(30))
def test_fast_paths_decide_what_the_general_code_decides(seed: int, reference: object) -> None:
    rng = random.Random(seed)
    state, now = new_cluster(rng), 10.0
    grace = rng.choice([0.0, 5.0, 20.0])
    fast = Orchestrator(random.Random(seed), down_grace_s=grace)
    slow = GeneralOrchestrator(random.Random(seed), down_grace_s=grace)
    first = IncrementalPlanner(Orchestrator(random.Random(seed + 1000), down_grace_s=grace))
    first_ref = GeneralOrchestrator(random.Random(seed + 1000), down_grace_s=grace)
    settled = 0
    for step in range(50):
        invalid = {s.service_id for s in state.services.values() if s.invalid}
        services = [s for s in state.services.values() if not s.invalid]
        tasks = [t for t in state.tasks.values() if t.service_id not in invalid]
        nodes = list(state.nodes.values())
        got = fast.reconcile(services, tasks, nodes, now)
        got_round = plan_round(state, now, fast)
        first.reset()  # a new leader's first round, each step
        got_first = first.plan(state, now)
        with reference:  # type: ignore[attr-defined]
            want = slow.reconcile(services, tasks, nodes, now)
            want_round = reference_full_round(state, now, slow)
            want_first = reference_full_round(state, now, first_ref)
        assert got == want, f"seed {seed} step {step}"
        assert decisions(got_round) == decisions(want_round), f"seed {seed} step {step}"  # type: ignore[arg-type]
        assert decisions(got_first) == decisions(want_first), f"seed {seed} step {step}"  # type: ignore[arg-type]
        assert got_first.wakes == want_first.wakes  # type: ignore[attr-defined]
        assert fast.rng.getstate() == slow.rng.getstate()
        assert first.orchestrator.rng.getstate() == first_ref.rng.getstate()
        settled += sum(1 for t in tasks if t.state == "running" and t.node_id is not None)
        state = commit(rng, state, got_round, now)
        for _ in range(rng.randrange(0, 4)):
            state = random_change(rng, state, now)
        now += rng.choice([0.0, 0.5, 1.0, 3.0, 10.0, 30.0])
    assert settled > 0  # the shortcut's case did occur


def test_healthy_by_table_equals_the_old_property() -> None:
    for health in TaskHealth:
        task = Task(task_id="t", service_id="s", slot=1, health=health)
        assert task.healthy == _old_healthy(task)
        assert type(task.healthy) is type(_old_healthy(task))


@pytest.mark.parametrize("seed", range(10))
def test_group_tasks_gives_full_scopes_placed_tasks_and_infos(seed: int) -> None:
    rng = random.Random(seed)
    state, now = new_cluster(rng), 10.0
    orchestrator = Orchestrator(random.Random(seed))
    for _ in range(20):
        state = commit(rng, state, plan_round(state, now, orchestrator), now)
        for _ in range(rng.randrange(0, 4)):
            state = random_change(rng, state, now)
        now += 1.0
        grouped = group_tasks(state)
        scope: Scope = full_scope(state)
        usage = NodeUsage()
        for held in grouped.held.values():
            usage.add(held)
        assert [p for held in grouped.held.values() for p in held] == scope.placed
        assert usage.infos(state.nodes.values()) == scope.infos
        assert scope.infos == build_node_infos(state.nodes.values(), scope.placed or [])
        for sid, tasks in grouped.tasks.items():
            assert tasks == {t.task_id: t for t in state.tasks.values() if t.service_id == sid}
            held = placed_tasks(state.services.get(sid), tasks.values())
            assert grouped.held.get(sid, []) == held
            svc = state.services.get(sid)
            occupying = [t for t in tasks.values() if t.node_id is not None and occupies_node(t)]
            assert len(held) == (0 if svc is None or svc.invalid else len(occupying))
            assert [p.node_id for p in held] == (
                [] if svc is None or svc.invalid else [t.node_id for t in occupying]
            )
