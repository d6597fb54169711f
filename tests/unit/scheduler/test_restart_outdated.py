"""An unhealthy (or given-up) task of an outdated template: a rollout running, paused, or rolled back.

Before, such a task was replaced by the new template in the round that saw it, skipping the restart
delay and the window, and a paused update went on through every old task that turned unhealthy. Now
(as swarmkit's restart supervisor, which restarts with the current spec after the delay, and its updater,
which may start that slot sooner and does nothing while paused): the slot waits for ``restart_due``
unless the running rollout takes it within its parallelism, and the replacement is always of the current
template (the outdated one never comes back)."""

from __future__ import annotations

import dataclasses
import random

import pytest

from p2porch.model import Node, RestartPolicy, Rollout, Service, ServiceSpec, Task, UpdateConfig
from p2porch.model.placement import parse_constraint
from p2porch.scheduler import Orchestrator, Reconciliation, ShutdownTask

NODES = [Node("n1", "n1"), Node("n2", "n2")]
POLICY = RestartPolicy(delay_s=5.0)  # --restart-delay 5s
OLD = "busybox:1"
NEW = "busybox:2"


def spec_of(image: str, mode: str = "replicated", replicas: int = 1, **kw: object) -> ServiceSpec:
    fields: dict[str, object] = {"restart": POLICY, "update": UpdateConfig(monitor_s=30.0), **kw}
    return ServiceSpec(name="web", image=image, replicas=replicas, mode=mode, **fields)  # type: ignore[arg-type]


def sick(spec: ServiceSpec, at: float, slot: int = 1, node: str = "n1", **kw: object) -> Task:
    """A task of ``spec``'s template, running, reported unhealthy at ``at``."""
    fields: dict[str, object] = {
        "task_id": f"t{slot}",
        "service_id": "s1",
        "slot": slot,
        "node_id": node,
        "state": "running",
        "state_at": at,
        "started_at": 1.0,
        "created_at": 0.0,
        "health": "unhealthy",
        "template_hash": spec.template_hash(),
        **kw,
    }
    return Task(**fields)  # type: ignore[arg-type]


def stopped(task: Task, message: str, at: float) -> Task:
    """``task`` once its shutdown (``message``) was committed and the agent reported it stopped at ``at``."""
    return dataclasses.replace(
        task, desired_state="shutdown", message=message, state="shutdown", state_at=at, health=""
    )


def service(spec: ServiceSpec, rollout: Rollout, paused: bool = False) -> Service:
    return Service("s1", spec, version=2, update_paused=paused, rollout=rollout)


def reconcile(svc: Service, tasks: list[Task], now: float) -> Reconciliation:
    nodes = NODES[:1] if svc.spec.mode == "global" else NODES
    return Orchestrator(random.Random(1)).reconcile([svc], tasks, nodes, now=now)


UPDATING = Rollout.update(50.0)
ROLLING_BACK = Rollout.rolling_back(50.0, None, "update failed")


@pytest.mark.parametrize("mode", ["replicated", "global"])
@pytest.mark.parametrize("rollout", [UPDATING, ROLLING_BACK], ids=["update", "rollback"])
def test_a_running_rollout_takes_the_slot_once_stopped_within_its_budget(mode: str, rollout: Rollout) -> None:
    """The rollout (an update, or the rollback of a failed one, whose current template is the old one)
    has room: the unhealthy task is stopped with its reason kept (not overwritten by the update's), and
    its slot gets the current template once it stopped, before the restart delay."""
    current, outdated = (spec_of(NEW, mode), spec_of(OLD, mode))
    if rollout.rollback:
        current, outdated = outdated, current
    svc = service(current, rollout)
    task = sick(outdated, at=100.0)
    first = reconcile(svc, [task], now=100.0)
    assert first.actions == [ShutdownTask("t1", "unhealthy")]  # no replacement beside the stopping task
    (new,) = reconcile(svc, [stopped(task, "unhealthy", at=100.5)], now=101.0).creates
    assert (new.reason, new.template_hash) == ("rolling update", current.template_hash())
    assert new.node_id == ("n1" if mode == "global" else None)


def test_a_running_rollout_without_room_leaves_the_slot_to_the_restart_delay() -> None:
    """Slot 2's new task is in flight (within its 30 s monitor), parallelism 1: slot 1's unhealthy old task
    is not replaced at once (before: at once, past the parallelism), but after the 5 s delay, with the
    current template and a restart counted."""
    old, new = spec_of(OLD, replicas=2), spec_of(NEW, replicas=2)
    svc = service(new, UPDATING)
    fresh = sick(new, at=90.0, slot=2, node="n2", health="healthy", started_at=90.0, created_at=89.0)
    task = sick(old, at=100.0)
    assert reconcile(svc, [task, fresh], now=100.0).actions == [ShutdownTask("t1", "unhealthy")]
    gone = stopped(task, "unhealthy", at=100.5)
    waiting = reconcile(svc, [gone, fresh], now=101.0)
    assert waiting.actions == [] and waiting.wake_at == 105.5
    (replacement,) = reconcile(svc, [gone, fresh], now=105.5).creates
    assert (replacement.slot, replacement.reason) == (1, "replace unhealthy task")
    assert (replacement.template_hash, replacement.restart_history) == (new.template_hash(), (105.5,))


@pytest.mark.parametrize("mode", ["replicated", "global"])
@pytest.mark.parametrize("rollout", [UPDATING, ROLLING_BACK], ids=["update", "rollback"])
def test_a_paused_rollout_restarts_an_unhealthy_old_task_only_after_the_delay(
    mode: str, rollout: Rollout
) -> None:
    """``--update-failure-action pause`` fired: an old task that turns unhealthy is stopped and its slot
    waits for the restart delay like any other (before: the new template at once, the paused update
    going on past its parallelism); then the current template, never the outdated one."""
    current = spec_of(NEW, mode)
    svc = service(current, rollout.paused("1 of 1 tasks failed"), paused=True)
    task = sick(spec_of(OLD, mode), at=100.0)
    assert reconcile(svc, [task], now=100.0).actions == [ShutdownTask("t1", "unhealthy")]
    gone = stopped(task, "unhealthy", at=100.5)
    waiting = reconcile(svc, [gone], now=103.0)
    assert waiting.actions == [] and waiting.wake_at == 105.5
    (new,) = reconcile(svc, [gone], now=105.5).creates
    assert (new.reason, new.template_hash, new.restart_history) == (
        "replace unhealthy task",
        current.template_hash(),
        (105.5,),
    )


def test_restarts_of_old_tasks_under_a_paused_rollout_back_off() -> None:
    """No restart storm: the restart history travels across the template change, so an old task's slot
    that keeps failing waits ``delay * 2**n`` as any other."""
    current = spec_of(NEW)
    svc = service(current, UPDATING.paused("failed"), paused=True)
    task = sick(spec_of(OLD), at=100.0, restart_history=(70.0, 90.0))
    gone = stopped(task, "unhealthy", at=100.5)
    assert reconcile(svc, [gone], now=101.0).wake_at == 120.5  # 5 * 2**2 after the stop


@pytest.mark.parametrize("mode", ["replicated", "global"])
def test_an_old_task_given_up_is_left_while_paused_and_replaced_by_the_resumed_rollout(mode: str) -> None:
    """``--restart-condition none``: the unhealthy old task is stopped for good. While the rollout is
    paused its slot stays empty (before: created at once by the new template, the pause ignored); the
    resumed (or a new) rollout replaces it within its parallelism."""
    never = RestartPolicy(condition="none")
    current = spec_of(NEW, mode, restart=never)
    task = sick(spec_of(OLD, mode, restart=never), at=100.0)
    paused = service(current, UPDATING.paused("failed"), paused=True)
    reason = "not restarted: unhealthy; restart condition none"
    assert reconcile(paused, [task], now=100.0).actions == [ShutdownTask("t1", reason)]
    gone = stopped(task, reason, at=100.5)
    later = reconcile(paused, [gone], now=1000.0)
    assert later.actions == [] and later.wake_at is None
    resumed = service(current, UPDATING.paused("failed").restarted(900.0))  # as an update resumes it
    (new,) = reconcile(resumed, [gone], now=1000.0).actions  # no second stop: its reason stays
    assert (new.reason, new.template_hash) == ("rolling update", current.template_hash())  # type: ignore[union-attr]


def test_a_global_old_task_given_up_on_a_node_no_longer_eligible_is_not_replaced_there() -> None:
    """The rollout replaces a given-up old task only on a node the service may still run on."""
    never = RestartPolicy(condition="none")
    current = spec_of(NEW, "global", restart=never, constraints=(parse_constraint("node.labels.zone==a"),))
    reason = "not restarted: unhealthy; restart condition none"
    gone = stopped(sick(spec_of(OLD, "global", restart=never), at=100.0), reason, at=100.5)
    r = reconcile(service(current, Rollout.update(900.0)), [gone], now=1000.0)
    assert r.creates == []
