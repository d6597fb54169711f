"""A service's rollback point (``model.rollback_point``): every update that changes the spec keeps the
one it replaced, as Swarm's ``PreviousSpec``; a rollback swaps them; only a template change rolls out.
Pure, with the orchestrator showing that a rollback of replicas replaces no task."""

from __future__ import annotations

import dataclasses
import random

from p2porch.model import Node, Rollout, Service, ServiceSpec, Task, UpdateConfig
from p2porch.model.rollback_point import changed_fields, restores_template, rolled_back, updated
from p2porch.scheduler import CreateTask, Orchestrator, RolloutDone, ShutdownTask

V1 = ServiceSpec(name="web", image="app:1", replicas=2)
POLICY = UpdateConfig(parallelism=3)


def test_an_update_of_any_field_keeps_the_spec_it_replaced_and_only_a_template_change_rolls_out() -> None:
    created = Service("s1", V1)
    scaled = updated(created, dataclasses.replace(V1, replicas=5), now=10.0)
    assert scaled.changed and scaled.fields == ("replicas",)
    assert scaled.previous_spec == V1 and scaled.rollout is None  # nothing to roll out
    labelled = updated(created, dataclasses.replace(V1, labels=(("tier", "web"),)), now=10.0)
    assert labelled.fields == ("labels",) and labelled.previous_spec == V1
    policy = updated(created, dataclasses.replace(V1, update=UpdateConfig(parallelism=2)), now=10.0)
    assert policy.fields == ("update",) and policy.previous_spec == V1 and policy.rollout is None
    image = updated(created, dataclasses.replace(V1, image="app:2"), now=10.0)
    assert image.fields == ("image",) and image.previous_spec == V1
    assert image.rollout == Rollout.update(10.0)
    # a non-template update while a rollout runs keeps that rollout (its failures still count)
    rolling = Service("s1", V1, rollout=Rollout.update(3.0))
    assert updated(rolling, dataclasses.replace(V1, replicas=3), now=10.0).rollout == Rollout.update(3.0)


def test_an_update_that_changes_nothing_keeps_the_record_as_it_was() -> None:
    before = Service(
        "s1", V1, previous_spec=dataclasses.replace(V1, image="app:0"), rollout=Rollout.update(1)
    )
    same = updated(before, ServiceSpec.from_dict(V1.to_dict()), now=10.0)
    assert not same.changed and same.fields == ()
    assert (same.spec, same.previous_spec, same.rollout) == (
        before.spec,
        before.previous_spec,
        before.rollout,
    )
    assert changed_fields(V1, ServiceSpec.from_dict(V1.to_dict())) == ()


def test_a_rollback_swaps_the_two_specs_and_a_second_one_swaps_them_back() -> None:
    v2 = dataclasses.replace(V1, image="app:2", replicas=4)
    service = Service("s1", v2, previous_spec=V1, rollout=Rollout.update(1.0))
    back = rolled_back(service, now=20.0, reason="manual rollback", policy=POLICY)
    assert back is not None and back.spec == V1 and back.previous_spec == v2
    assert back.fields == ("image", "replicas")
    assert back.rollout == Rollout.rolling_back(20.0, POLICY, "manual rollback")  # rolled out
    again = rolled_back(Service("s1", back.spec, previous_spec=back.previous_spec), 30.0, "manual", None)
    assert again is not None and (again.spec, again.previous_spec) == (v2, V1)
    assert rolled_back(Service("s1", V1), 20.0, "manual rollback", POLICY) is None  # never updated


def test_a_rollback_that_keeps_the_template_is_complete_at_once_and_cannot_fix_a_failed_update() -> None:
    v1_scaled = dataclasses.replace(V1, replicas=5)
    service = Service("s1", v1_scaled, previous_spec=V1)
    back = rolled_back(service, now=20.0, reason="manual rollback", policy=POLICY)
    assert back is not None and back.fields == ("replicas",) and back.spec == V1
    assert back.rollout is not None and back.rollout.state == "rollback_completed"
    assert not restores_template(service)  # what an automatic rollback checks
    assert restores_template(Service("s1", dataclasses.replace(V1, image="app:2"), previous_spec=V1))
    assert not restores_template(Service("s1", V1))


def test_the_orchestrator_applies_a_rollback_of_replicas_without_replacing_a_task() -> None:
    """5 replicas rolled back to 2: three tasks stop, the two kept are not restarted, nothing new starts."""
    back = rolled_back(Service("s1", dataclasses.replace(V1, replicas=5), previous_spec=V1), 20.0, "m", None)
    assert back is not None and back.rollout is not None
    service = Service("s1", back.spec, previous_spec=back.previous_spec, rollout=back.rollout)
    tasks = [
        Task(
            task_id=f"t{slot}",
            service_id="s1",
            slot=slot,
            node_id="n1",
            state="running",
            started_at=1.0,
            created_at=1.0,
            template_hash=V1.template_hash(),
        )
        for slot in range(1, 6)
    ]
    result = Orchestrator(random.Random(1)).reconcile([service], tasks, [Node("n1", "n1")], now=21.0)
    stopped = sorted(a.task_id for a in result.actions if isinstance(a, ShutdownTask))
    assert stopped == ["t3", "t4", "t5"]
    assert not [a for a in result.actions if isinstance(a, CreateTask)]
    assert not [e for e in result.events if isinstance(e, RolloutDone)]  # already recorded complete
