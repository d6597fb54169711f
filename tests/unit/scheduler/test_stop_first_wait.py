"""A stop-first replacement is created only once the task it replaces stopped (pure, injected ``now``).

As Swarm's updater (``DelayStart`` with ``waitStop``): the old task reported terminal, or its node down
or gone, or its stop grace period plus ``STOP_REPORT_MARGIN_S`` passed without a report."""

from __future__ import annotations

import dataclasses
import random

import pytest
from test_update_policy import task as policy_task

from p2porch.model import Node, NodeStatus, RestartPolicy, Rollout, Service, ServiceSpec, Task, UpdateConfig
from p2porch.scheduler import Orchestrator, Reconciliation, RolloutDone, ShutdownTask
from p2porch.scheduler.stop_wait import STOP_REPORT_MARGIN_S

OLD = ServiceSpec(name="db", image="redis:1", replicas=1, stop_grace_period_s=3.0)
NEW = dataclasses.replace(OLD, image="redis:2", update=UpdateConfig(monitor_s=1.0))
NODES = [Node("n1", "n1"), Node("n2", "n2")]


def task(slot: int = 1, spec: ServiceSpec = OLD, tid: str = "old1", **kw: object) -> Task:
    """Slot ``slot``'s task on n1 (test_update_policy's), running since 1.0 with ``spec``'s stop grace."""
    return policy_task(slot, spec, tid, **{"started_at": 1.0, "stop_grace_s": spec.stop_grace_period_s, **kw})


def orch() -> Orchestrator:
    return Orchestrator(random.Random(7))


def reconcile(
    tasks: list[Task],
    now: float,
    spec: ServiceSpec = NEW,
    nodes: list[Node] = NODES,
    o: Orchestrator | None = None,
) -> Reconciliation:
    svc = Service("s1", spec, version=2, rollout=Rollout.update(100.0))
    return (o or orch()).reconcile([svc], tasks, nodes, now)


def stopping(at: float = 100.0, **kw: object) -> Task:
    """The old task as the leader's stop write at ``at`` left it (``state_at`` is the stop's time)."""
    return task(desired_state="shutdown", message="rolling update", **{"state_at": at, **kw})


def test_the_update_stops_the_old_task_and_creates_nothing_yet() -> None:
    r = reconcile([task()], now=100.0)
    assert r.actions == [ShutdownTask("old1", "rolling update")]
    assert r.wake_at == 100.0 + 3.0 + STOP_REPORT_MARGIN_S  # the bound, should no report come


def test_while_the_old_task_runs_its_replacement_is_not_created_and_the_round_wakes_at_the_bound() -> None:
    r = reconcile([stopping()], now=101.0)
    assert r.actions == [] and r.events == []  # no RolloutDone either: the slot is in flight
    assert r.wake_at == 100.0 + 3.0 + STOP_REPORT_MARGIN_S


@pytest.mark.parametrize("state", ["shutdown", "failed", "complete"])
def test_once_the_old_task_is_reported_stopped_its_replacement_is_created(state: str) -> None:
    r = reconcile([stopping(state=state, state_at=103.0)], now=103.0)
    (new,) = r.creates
    assert (new.slot, new.template_hash, new.reason) == (1, NEW.template_hash(), "rolling update")
    assert r.shutdowns == []


@pytest.mark.parametrize(
    "nodes",
    [
        [Node("n1", "n1", status=NodeStatus.DOWN, status_at=50.0), NODES[1]],  # down (no down grace)
        [Node("n1", "n1", status=NodeStatus.LEFT), NODES[1]],  # left
        NODES[1:],  # gone
    ],
    ids=["down", "left", "gone"],
)
def test_when_the_old_tasks_node_is_down_or_gone_its_replacement_is_created(nodes: list[Node]) -> None:
    r = reconcile([stopping()], now=101.0, nodes=nodes)
    assert [(c.slot, c.template_hash) for c in r.creates] == [(1, NEW.template_hash())]


def test_the_update_of_a_task_on_a_node_already_down_creates_its_replacement_at_once() -> None:
    nodes = [Node("n1", "n1", status=NodeStatus.DOWN, status_at=50.0), NODES[1]]
    r = reconcile([task()], now=100.0, nodes=nodes)
    assert r.shutdowns and [c.slot for c in r.creates] == [1]


def test_without_a_report_the_replacement_is_created_once_grace_plus_margin_passed() -> None:
    bound = 101.0 + 3.0 + STOP_REPORT_MARGIN_S  # counted from the stop write (state_at 101)
    first = reconcile([stopping(at=101.0)], now=101.5)
    assert first.actions == [] and first.wake_at == bound
    assert reconcile([stopping(at=101.0)], now=bound - 0.1).actions == []
    (new,) = reconcile([stopping(at=101.0)], now=bound).creates
    assert new.slot == 1 and new.template_hash == NEW.template_hash()


def test_a_new_leader_holds_the_slot_from_the_committed_state_and_finishes_the_update() -> None:
    # the old leader committed the stop and crashed; a new one (fresh orchestrator) never starts both
    assert reconcile([stopping(at=499.0)], now=500.0).actions == []
    assert len(reconcile([stopping(state="shutdown", state_at=501.0)], now=502.0).creates) == 1


def test_the_next_batch_waits_for_the_held_slot_and_the_rollout_completes_after_it() -> None:
    spec = dataclasses.replace(NEW, replicas=2)
    other = task(2, tid="old2")
    r = reconcile([stopping(), other], now=101.0, spec=spec)
    assert r.actions == []  # parallelism 1: slot 1 is in flight while its old task stops
    new1 = task(1, spec, "new1", started_at=103.0, state_at=103.0, created_at=102.0)
    done = [stopping(state="shutdown", state_at=102.0), new1]
    r2 = reconcile([*done, other], now=105.0, spec=spec)
    assert r2.actions == [ShutdownTask("old2", "rolling update")]
    new2 = task(2, spec, "new2", started_at=106.0, state_at=106.0, created_at=105.0)
    last = [*done, task(2, tid="old2", desired_state="shutdown", state="shutdown", state_at=105.0), new2]
    assert reconcile(last, now=110.0, spec=spec).events == [RolloutDone("s1", rollback=False)]


def test_a_stop_first_rollback_waits_too() -> None:
    back = dataclasses.replace(OLD, rollback=UpdateConfig(order="stop-first"))
    svc = Service("s1", back, version=3, rollout=Rollout.rolling_back(200.0, None, "manual"))
    first = orch().reconcile([svc], [task(1, NEW, "new1")], NODES, now=200.0)
    assert first.actions == [ShutdownTask("new1", "rolling update")]
    held = task(1, NEW, "new1", desired_state="shutdown", state_at=200.0)
    assert orch().reconcile([svc], [held], NODES, now=201.0).actions == []
    (again,) = (
        orch().reconcile([svc], [dataclasses.replace(held, state="shutdown")], NODES, now=202.0).creates
    )
    assert again.template_hash == OLD.template_hash()


def test_start_first_still_starts_the_new_task_before_stopping_the_old_one() -> None:
    spec = dataclasses.replace(NEW, update=UpdateConfig(order="start-first"))
    r = reconcile([task()], now=100.0, spec=spec)
    assert r.shutdowns == [] and [c.slot for c in r.creates] == [1]


def test_an_unhealthy_tasks_restart_waits_for_its_stop() -> None:
    spec = dataclasses.replace(OLD, restart=RestartPolicy(delay_s=0.0))
    sick = task(health="unhealthy", state_at=100.0)
    first = reconcile([sick], now=100.0, spec=spec)
    assert first.actions == [ShutdownTask("old1", "unhealthy")]
    still = dataclasses.replace(sick, desired_state="shutdown")
    assert reconcile([still], now=101.0, spec=spec).actions == []
    stopped = dataclasses.replace(still, state="shutdown", state_at=102.0, health="")
    assert len(reconcile([stopped], now=102.0, spec=spec).creates) == 1
