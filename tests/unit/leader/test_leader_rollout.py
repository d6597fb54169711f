"""The rollout record of a stored spec: parsing for the orchestrator, leader writes, events."""

from p2porch.control.events import describe_change
from p2porch.leader.rollout import (
    completed,
    orchestrator_rollout,
    paused,
    rollback_started,
    rollout_status,
    update_started,
)
from p2porch.leader.scheduling import rollout_done_specs, update_failure_specs
from p2porch.raft import commands as C
from p2porch.raft.fsm import Change, apply
from p2porch.raft.state import EMPTY_STATE, ClusterState
from p2porch.scheduler import RolloutDone, ServiceSpec, UpdateFailed
from p2porch.scheduler.spec import UpdateConfig


def run(state: ClusterState, command: bytes) -> ClusterState:
    new, result, _ = apply(state, command)
    assert result["ok"], result
    return new


def stored(image: str, **extra: object) -> dict:
    data = {"name": "web", "image": image, "update": {"failure_action": "rollback"}}
    return {
        **ServiceSpec.from_dict({**data, "rollback": {"parallelism": 3, "order": "start-first"}}).to_dict(),
        **extra,
    }


def one_service(spec: dict) -> ClusterState:
    state = run(EMPTY_STATE, C.init_cluster(1.0, cluster_id="c"))
    return run(state, C.create_service(2.0, "s1", "web", spec))


def test_records_parse_into_what_the_orchestrator_needs() -> None:
    assert orchestrator_rollout({}) is None
    assert orchestrator_rollout({"rollout": {"state": "bogus", "started_at": 1.0}}) is None
    assert orchestrator_rollout({"rollout": {"state": "updating", "started_at": "x"}}) is None
    r = orchestrator_rollout({"rollout": update_started(5.0)})
    assert r is not None and (r.started_at, r.rollback, r.completed, r.policy) == (5.0, False, False, None)
    back = rollback_started(7.0, {"parallelism": 2, "monitor": "1s"}, "manual rollback")
    r = orchestrator_rollout({"rollout": back})
    assert r is not None and r.rollback and r.policy == UpdateConfig(parallelism=2, monitor_s=1.0)
    r = orchestrator_rollout({"rollout": completed(back)})
    assert r is not None and r.completed and r.rollback
    broken = {**back, "policy": {"parallelism": -1}}  # unreadable policy: the spec's own rollback config
    r = orchestrator_rollout({"rollout": broken})
    assert r is not None and r.policy is None
    assert paused(update_started(1.0), "why")["state"] == "paused"
    assert paused(back, "why") == {**back, "state": "rollback_paused", "reason": "why"}
    assert rollout_status({"rollout": back}) == {
        "state": "rollback_started",
        "started_at": 7.0,
        "reason": "manual rollback",
    }


def test_automatic_rollback_records_the_failed_specs_rollback_config_and_the_reason() -> None:
    state = one_service(stored("app:2", previous_spec=stored("app:1"), rollout=update_started(3.0)))
    failure = UpdateFailed(
        "s1", "t1", "rollback", "1 of 1 tasks failed within the 5s monitor: task t1 exit 1"
    )
    ((service, spec, action),) = update_failure_specs(state, [failure], 20.0)
    assert action == "rollback" and spec["image"] == "app:1"
    record = spec["rollout"]
    assert record["state"] == "rollback_started" and record["started_at"] == 20.0
    assert record["reason"] == f"update failed: {failure.reason}"
    assert record["policy"]["parallelism"] == 3 and record["policy"]["order"] == "start-first"
    state = run(state, C.update_service(21.0, "s1", spec, service_version=service.version))
    ((_, done),) = rollout_done_specs(state, [RolloutDone("s1", rollback=True)])
    assert done["rollout"]["state"] == "rollback_completed" and done["image"] == "app:1"


def test_service_events_carry_the_rollout_state_and_reason() -> None:
    state = one_service(stored("app:2", rollout=update_started(3.0)))
    before = state.services["s1"]
    (write,) = update_failure_specs(state, [UpdateFailed("s1", "t1", "pause", "2 of 2 tasks failed")], 9.0)
    state = run(state, C.update_service(9.0, "s1", write[1], service_version=before.version))
    after = state.services["s1"]
    event = describe_change(Change("service", "put", "s1", after, after.version), before, state, 9.0)
    assert event is not None and event["update_status"] == "paused"
    assert event["reason"] == "update failed: 2 of 2 tasks failed"
    same = describe_change(Change("service", "put", "s1", after, after.version), after, state, 9.0)
    assert same is not None and "update_status" not in same
