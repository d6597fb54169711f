"""An outdated task restarts by the restart policy of the spec it was created with, as swarmkit's restart
supervisor reads the task's own spec; a task of the current template by the service's policy."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest

from p2porch.errors import ConfigError
from p2porch.model import Node, RestartPolicy, Rollout, Service, ServiceSpec, Task
from p2porch.raft.fields import checked_task, task_from_wire
from p2porch.raft.task_fast import task_from_plain
from p2porch.scheduler import Orchestrator, Reconciliation, ShutdownTask

QUICK = RestartPolicy(delay_s=1.0, max_delay_s=1.0)
SLOW = RestartPolicy(delay_s=100.0, max_delay_s=100.0)
NODES = [Node("n1", "n1"), Node("n2", "n2")]


def spec_of(image: str, restart: RestartPolicy) -> ServiceSpec:
    return ServiceSpec(name="web", image=image, replicas=1, restart=restart)


def failed(spec: ServiceSpec, policy: RestartPolicy | None, at: float = 10.0, **kw: object) -> Task:
    return Task(
        "old",
        "s1",
        1,
        "n1",
        state="failed",  # type: ignore[arg-type]
        state_at=at,
        started_at=1.0,
        template_hash=spec.template_hash(),
        restart_policy=policy,
        **kw,  # type: ignore[arg-type]
    )


def paused(spec: ServiceSpec) -> Service:
    """A paused rollout: only the restart policy may replace the outdated task."""
    return Service("s1", spec, update_paused=True, rollout=Rollout.update(5.0))


def reconcile(svc: Service, tasks: list[Task], now: float) -> Reconciliation:
    return Orchestrator(random.Random(5)).reconcile([svc], tasks, NODES, now)


def test_an_outdated_task_restarts_after_its_own_delay() -> None:
    old, new = spec_of("app:1", QUICK), spec_of("app:2", SLOW)
    r = reconcile(paused(new), [failed(old, QUICK)], now=11.5)
    assert r.shutdowns == [ShutdownTask("old", "restart after failed")]
    (create,) = r.creates
    assert create.template_hash == new.template_hash()  # the replacement is of the current template
    assert reconcile(paused(new), [failed(old, QUICK)], now=10.5).wake_at == 11.0


def test_an_outdated_task_whose_own_condition_is_none_is_not_restarted() -> None:
    old, new = spec_of("app:1", RestartPolicy(condition="none")), spec_of("app:2", SLOW)
    r = reconcile(paused(new), [failed(old, old.restart)], now=10.0)
    assert r.actions == [ShutdownTask("old", "not restarted: restart condition none")]


def test_an_outdated_unhealthy_task_waits_for_its_own_delay() -> None:
    old, new = spec_of("app:1", SLOW), spec_of("app:2", QUICK)
    sick = dataclasses.replace(
        failed(old, SLOW), state="shutdown", desired_state="shutdown", message="unhealthy", state_at=10.0
    )
    assert reconcile(paused(new), [sick], now=12.0).creates == []  # QUICK would restart it at 11
    assert reconcile(paused(new), [sick], now=12.0).wake_at == 110.0
    assert len(reconcile(paused(new), [sick], now=110.0).creates) == 1


@pytest.mark.parametrize("policy", [SLOW, None])
def test_a_current_task_restarts_by_the_services_policy(policy: RestartPolicy | None) -> None:
    """A restart-policy change rolls no task here: the task of the current template (or one recorded
    before tasks carried a policy) follows the service's current policy."""
    spec = spec_of("app:1", QUICK)
    assert len(reconcile(Service("s1", spec), [failed(spec, policy)], now=11.5).creates) == 1


def test_the_task_record_carries_its_policy_through_both_decoders() -> None:
    task = failed(spec_of("app:1", QUICK), QUICK)
    plain = json.loads(json.dumps(task.to_dict()))  # as the wire gives it: plain str, not enums
    assert plain["restart_policy"] == {"delay_s": 1.0, "max_delay_s": 1.0}  # what differs from the default
    assert task_from_plain(plain) == task and checked_task(plain) == task == Task.from_dict(plain)
    legacy = dataclasses.replace(task, restart_policy=None)
    assert "restart_policy" not in legacy.to_dict()
    assert task_from_plain(json.loads(json.dumps(legacy.to_dict()))) == legacy
    bad = {**plain, "restart_policy": {"condition": "sometimes"}}
    assert task_from_plain(bad) is None
    with pytest.raises(ConfigError) as err:
        task_from_wire(bad)
    assert err.value.field == "restart_policy.condition"


def test_a_tasks_policy_is_written_sparse_and_read_back_equal() -> None:
    """Every task record carries its policy: the default one costs ``{}``, any other only the fields
    that differ, and each reads back to an equal policy (the default maximum delay included)."""
    assert Task("t", "s1", 1, "n1", restart_policy=RestartPolicy()).to_dict()["restart_policy"] == {}
    rng = random.Random(7)
    for _ in range(2000):
        delay = rng.choice([0, 1, 5, 5.0, 300, 400.5])
        policy = RestartPolicy(
            condition=rng.choice(["any", "on-failure", "none"]),
            delay_s=delay,
            max_delay_s=max(delay, rng.choice([0, 300, 300.0, 900])),
            max_attempts=rng.choice([0, 3]),
            window_s=rng.choice([0, 60.0]),
        )
        plain = Task("t", "s1", 1, "n1", restart_policy=policy).to_dict()
        assert set(plain["restart_policy"]) <= set(policy.to_dict())
        assert task_from_plain(json.loads(json.dumps(plain))).restart_policy == policy
