"""Update and rollback policy of the orchestrator: monitor, max_failure_ratio, failure_action,
rollback_config, and when a recorded rollout completes (pure, injected ``now``)."""

from __future__ import annotations

import dataclasses
import random

from p2porch.model import Node, RestartPolicy, Rollout, Service, ServiceSpec, Task, UpdateConfig
from p2porch.scheduler import Orchestrator, Reconciliation, RolloutDone, ShutdownTask, UpdateFailed
from p2porch.scheduler.rollout import effective_policy

OLD = ServiceSpec(name="web", image="app:1", replicas=4)
NODES = [Node("n1", "n1"), Node("n2", "n2")]
START = 100.0  # the rollout starts here


def new_spec(**update: object) -> ServiceSpec:
    cfg = UpdateConfig(**{"parallelism": 1, "monitor_s": 5.0, **update})  # type: ignore[arg-type]
    return dataclasses.replace(OLD, image="app:2", update=cfg, restart=RestartPolicy(delay_s=60.0))


def task(slot: int, spec: ServiceSpec, tid: str, **kw: object) -> Task:
    fields: dict[str, object] = {
        "task_id": tid,
        "service_id": "s1",
        "slot": slot,
        "node_id": "n1",
        "state": "running",
        "state_at": 0.0,
        "started_at": 0.0,
        "template_hash": spec.template_hash(),
        "created_at": 0.0,
        **kw,
    }
    return Task(**fields)  # type: ignore[arg-type]


def old_tasks(slots: range) -> list[Task]:
    return [task(s, OLD, f"old{s}") for s in slots]


def failed(slot: int, spec: ServiceSpec, tid: str, at: float = 103.0, **kw: object) -> Task:
    """A new-template task that started at START+1 and failed at ``at`` (shut down by its restart if
    ``desired_state`` says so)."""
    fields: dict[str, object] = {
        "state": "failed",
        "state_at": at,
        "started_at": START + 1,
        "created_at": START,
        "error": "exit 1",
        **kw,
    }
    return task(slot, spec, tid, **fields)


def reconcile(svc: Service, tasks: list[Task], now: float) -> Reconciliation:
    return Orchestrator(random.Random(3)).reconcile([svc], tasks, NODES, now)


def rolled(r: Reconciliation, tasks: list[Task]) -> list[int]:
    """Slots the round rolls: a new task (start-first, or an old task already stopped) or, stop-first,
    the old running task it stops (its replacement is created once it stopped)."""
    slot_of = {t.task_id: t.slot for t in tasks}
    stopped = [slot_of[a.task_id] for a in r.shutdowns if a.reason == "rolling update"]
    return sorted({*(c.slot for c in r.creates), *stopped})


def failures(r: Reconciliation) -> list[UpdateFailed]:
    return [e for e in r.events if isinstance(e, UpdateFailed)]


def test_failures_within_the_ratio_let_the_update_go_on_and_beyond_it_fire_the_action() -> None:
    spec = new_spec(max_failure_ratio=0.5, failure_action="rollback")
    svc = Service("s1", spec, rollout=Rollout.update(START))
    # slot 1 failed (its restart already replaced it, so the failed record is shut down history)
    history = [failed(1, spec, "f1", desired_state="shutdown"), task(1, spec, "r1", state="starting")]
    r = reconcile(svc, [*history, *old_tasks(range(2, 5))], now=104.0)
    assert failures(r) == []  # 1 of 4 <= 0.5
    assert rolled(r, [*history, *old_tasks(range(2, 5))]) == [2]  # the failed slot does not hold it up
    # two slots failed: 2 of 4 is not above 0.5 either; a third is
    two = [*history, failed(2, spec, "f2"), *old_tasks(range(3, 5))]
    assert failures(reconcile(svc, two, now=104.0)) == []
    three = [
        *history,
        failed(2, spec, "f2", desired_state="shutdown"),
        failed(3, spec, "f3"),
        old_tasks(range(4, 5))[0],
    ]
    (event,) = failures(reconcile(svc, three, now=104.0))
    assert event.action == "rollback" and event.task_id in ("f1", "f2", "f3")
    assert event.reason.startswith("3 of 4 tasks failed within the 5s monitor (max failure ratio 0.5)")
    assert "exit 1" in event.reason


def test_ratio_zero_fires_on_the_first_failure_and_continue_never_does() -> None:
    tasks = [failed(1, new_spec(), "f1"), *old_tasks(range(2, 5))]
    (event,) = failures(reconcile(Service("s1", new_spec(), rollout=Rollout.update(START)), tasks, now=104.0))
    assert event.action == "pause"
    go_on = Service("s1", new_spec(failure_action="continue"), rollout=Rollout.update(START))
    r = reconcile(go_on, tasks, now=104.0)
    assert failures(r) == [] and rolled(r, tasks) == [2]


def test_a_failure_after_monitor_is_the_restart_policys_business() -> None:
    spec = new_spec()
    late = failed(1, spec, "late", at=START + 1 + 6.0)  # ran 6 s > monitor 5 s
    tasks = [late, *old_tasks(range(2, 5))]
    r = reconcile(Service("s1", spec, rollout=Rollout.update(START)), tasks, now=110.0)
    assert failures(r) == [] and rolled(r, tasks) == [2]


def test_unhealthy_within_monitor_counts_as_a_failure() -> None:
    spec = new_spec()
    sick = task(1, spec, "sick", started_at=START + 1, created_at=START, health="unhealthy")
    (event,) = failures(
        reconcile(Service("s1", spec, rollout=Rollout.update(START)), [sick, *old_tasks(range(2, 5))], 103.0)
    )
    assert "unhealthy" in event.reason


def test_failures_before_the_rollout_started_do_not_count() -> None:
    # a rollback returns to app:1; app:1 tasks that failed long before the rollback are not its failures
    spec = dataclasses.replace(new_spec(), image="app:1")
    ancient = dataclasses.replace(failed(1, spec, "ancient", desired_state="shutdown"), created_at=10.0)
    svc = Service("s1", spec, rollout=Rollout.rolling_back(START, None, ""))
    outdated = [task(s, new_spec(), f"new{s}") for s in range(1, 5)]
    r = reconcile(svc, [ancient, *outdated], now=104.0)
    assert failures(r) == [] and len(rolled(r, outdated)) == 1


def test_the_last_batch_failing_still_fires() -> None:
    spec = new_spec(failure_action="rollback")
    done = [task(s, spec, f"ok{s}", started_at=START, created_at=START) for s in range(1, 4)]
    r = reconcile(
        Service("s1", spec, rollout=Rollout.update(START)), [*done, failed(4, spec, "f4")], now=120.0
    )
    assert [e.action for e in failures(r)] == ["rollback"]


def test_a_rollback_rolls_out_with_its_policy_and_never_rolls_back_again() -> None:
    rollback_cfg = UpdateConfig(parallelism=2, order="start-first", failure_action="rollback", monitor_s=1.0)
    spec = dataclasses.replace(new_spec(), image="app:1")  # back to app:1; its own update says parallelism 1
    outdated = [task(s, new_spec(), f"new{s}") for s in range(1, 5)]
    svc = Service("s1", spec, rollout=Rollout.rolling_back(START, rollback_cfg, ""))
    r = reconcile(svc, outdated, now=START)
    assert [c.slot for c in r.creates] == [1, 2] and r.shutdowns == []  # parallelism 2, start-first
    assert effective_policy(spec.update, spec.rollback, svc.rollout).failure_action == "pause"
    (event,) = failures(reconcile(svc, [failed(1, spec, "f1", at=101.5), *outdated[1:]], now=102.0))
    assert event.action == "pause"
    # without a recorded policy a rollback uses the spec's own rollback config
    plain = Service(
        "s1",
        dataclasses.replace(spec, rollback=UpdateConfig(parallelism=3)),
        rollout=Rollout.rolling_back(START, None, ""),
    )
    assert rolled(reconcile(plain, outdated, now=START), outdated) == [1, 2, 3]


def test_a_rollout_completes_once_every_slot_ran_past_monitor_and_then_failures_are_restarts() -> None:
    spec = new_spec(failure_action="rollback")
    svc = Service("s1", spec, rollout=Rollout.update(START))
    fresh = [task(s, spec, f"n{s}", started_at=110.0, state_at=110.0, created_at=START) for s in range(1, 5)]
    r = reconcile(svc, fresh, now=112.0)
    assert r.events == [] and r.wake_at == 115.0  # still monitored
    assert reconcile(svc, fresh, now=115.0).events == [RolloutDone("s1", rollback=False)]
    # once completed, a crash (even a quick one) is handled by the restart policy alone
    done = dataclasses.replace(svc, rollout=Rollout.update(START).done())
    crashed = [failed(1, spec, "c1", at=112.0, started_at=110.0), *fresh[1:]]
    assert reconcile(done, crashed, now=115.0).events == []
    # and a service with no recorded rollout (created, never updated) reports nothing either
    assert reconcile(Service("s1", spec), crashed, now=115.0).events == []


def test_a_paused_rollout_neither_fires_again_nor_completes() -> None:
    spec = new_spec()
    paused = Service("s1", spec, update_paused=True, rollout=Rollout.update(START))
    tasks = [failed(1, spec, "f1"), *old_tasks(range(2, 5))]
    r = reconcile(paused, tasks, now=104.0)
    assert r.events == [] and not [
        a for a in r.actions if isinstance(a, ShutdownTask) and a.reason == "rolling update"
    ]


def test_the_old_task_a_start_first_update_replaced_stops_for_a_rolling_update_as_a_stop_first_one() -> None:
    # h51 journey: `service ps` said `superseded` for the tasks of a start-first update (`rolling update`
    # for a stop-first one's), the reason a partition's duplicate gets
    spec = new_spec(order="start-first")
    svc = Service("s1", spec, rollout=Rollout.update(START))
    new = task(1, spec, "new1", created_at=START, started_at=START + 1)
    r = reconcile(svc, [*old_tasks(range(1, 5)), new], now=START + 2)
    assert ShutdownTask("old1", "rolling update") in r.shutdowns
    twin = task(2, OLD, "twin2", created_at=1.0)  # the same template twice in a slot: still superseded
    r = reconcile(Service("s1", OLD), [*old_tasks(range(1, 5)), twin], now=START)
    assert r.shutdowns == [ShutdownTask("twin2", "superseded")]
