"""The rollout record of a service: its stored form, the leader's writes, and the events it makes."""

from p2porch.control.events import describe_change
from p2porch.leader.followups import rollout_done_updates, update_failure_updates
from p2porch.model import Rollout, Service, ServiceSpec
from p2porch.model.container import UpdateConfig
from p2porch.raft import commands as C
from p2porch.raft.fsm import Change, apply
from p2porch.raft.state import EMPTY_STATE, ClusterState
from p2porch.scheduler import RolloutDone, UpdateFailed


def run(state: ClusterState, command: bytes) -> ClusterState:
    new, result, _ = apply(state, command)
    assert result["ok"], result
    return new


def spec(image: str) -> ServiceSpec:
    data = {"name": "web", "image": image, "update": {"failure_action": "rollback"}}
    return ServiceSpec.from_dict({**data, "rollback": {"parallelism": 3, "order": "start-first"}})


def one_service(current: ServiceSpec, **bookkeeping: object) -> ClusterState:
    state = run(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c").encode())
    state = run(state, C.CreateService(at=2.0, service_id="s1", spec=current).encode())
    if bookkeeping:
        state = run(state, C.UpdateService.of(state.services["s1"], at=2.5, **bookkeeping).encode())
    return state


def test_records_round_trip_and_unreadable_ones_are_none() -> None:
    assert Rollout.from_dict(None) is None
    assert Rollout.from_dict({"state": "bogus", "started_at": 1.0}) is None
    assert Rollout.from_dict({"state": "updating", "started_at": "x"}) is None
    r = Rollout.update(5.0)
    assert (r.started_at, r.rollback, r.completed, r.policy) == (5.0, False, False, None)
    back = Rollout.rolling_back(7.0, UpdateConfig(parallelism=2, monitor_s=1.0), "manual rollback")
    assert Rollout.from_dict(back.to_dict()) == back and back.rollback and not back.completed
    assert back.done().completed and back.done().state == "rollback_completed"
    assert back.paused("why").state == "rollback_paused" and r.paused("why").state == "paused"
    broken = {**back.to_dict(), "policy": {"parallelism": -1}}  # unreadable policy: the spec's own
    assert Rollout.from_dict(broken) == Rollout.rolling_back(7.0, None, "manual rollback")
    assert back.status() == {"state": "rollback_started", "started_at": 7.0, "reason": "manual rollback"}
    # the record travels through Raft and snapshots
    state = one_service(spec("app:1"), rollout=back)
    assert state.services["s1"].rollout == back
    assert ClusterState.from_dict(state.to_dict()).services["s1"].rollout == back


def test_automatic_rollback_records_the_failed_specs_rollback_config_and_the_reason() -> None:
    state = one_service(spec("app:2"), previous_spec=spec("app:1"), rollout=Rollout.update(3.0))
    failure = UpdateFailed(
        "s1", "t1", "rollback", "1 of 1 tasks failed within the 5s monitor: task t1 exit 1"
    )
    ((_, update, action),) = update_failure_updates(state, [failure], 20.0)
    assert action == "rollback" and update.spec.image == "app:1"
    rollout = update.rollout
    assert rollout is not None and rollout.state == "rollback_started" and rollout.started_at == 20.0
    assert rollout.reason == f"update failed: {failure.reason}"
    assert rollout.policy is not None and (rollout.policy.parallelism, rollout.policy.order) == (
        3,
        "start-first",
    )
    state = run(state, update.encode())
    ((_, done),) = rollout_done_updates(state, [RolloutDone("s1", rollback=True)], 21.0)
    assert (
        done.rollout is not None and done.rollout.state == "rollback_completed" and done.spec.image == "app:1"
    )


def test_an_automatic_rollback_pauses_when_the_rollback_point_runs_the_same_tasks() -> None:
    """A scale during a failing update made the failing spec the rollback point (every update keeps
    one, as Swarm's): rolling back to it would replace nothing, so the update pauses and says why."""
    failing = spec("app:2")
    scaled = ServiceSpec.from_dict({**failing.to_dict(), "replicas": 3})
    state = one_service(scaled, previous_spec=failing, rollout=Rollout.update(3.0))
    failure = UpdateFailed("s1", "t1", "rollback", "1 of 3 tasks failed within the 5s monitor")
    ((_, update, action),) = update_failure_updates(state, [failure], 20.0)
    assert action == "pause" and update.update_paused and update.spec == scaled
    assert update.rollout is not None and update.rollout.state == "paused"
    assert update.rollout.reason.endswith("(nothing to roll back to: the previous spec runs the same tasks)")


def test_service_events_carry_the_rollout_state_and_reason() -> None:
    state = one_service(spec("app:2"), rollout=Rollout.update(3.0))
    before: Service = state.services["s1"]
    ((_, update, _),) = update_failure_updates(
        state, [UpdateFailed("s1", "t1", "pause", "2 of 2 tasks failed")], 9.0
    )
    state = run(state, update.encode())
    after = state.services["s1"]
    event = describe_change(Change("service", "put", "s1", after, after.version), before, state, 9.0)
    assert event is not None and event["update_status"] == "paused"
    assert event["reason"] == "update failed: 2 of 2 tasks failed"
    same = describe_change(Change("service", "put", "s1", after, after.version), after, state, 9.0)
    assert same is not None and "update_status" not in same


def test_an_automatic_rollback_to_a_spec_on_a_removed_network_pauses_and_says_so() -> None:
    """h52b journey: a stack redeploy moved web off ``shop_back`` and pruned that network while the new
    image failed; rolling back to the spec on ``shop_back`` was refused by the FSM (network not found),
    which raised out of the scheduler at every round on main: no task was placed anywhere again. The
    failure now pauses the update, naming the network, and the pause is a write the FSM takes."""
    on_back = ServiceSpec.from_dict({**spec("app:1").to_dict(), "networks": ["shop_back"]})
    state = run(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c").encode())
    state = run(state, C.CreateNetwork(at=1.5, network_id="n1", name="shop_back").encode())
    state = run(state, C.CreateService(at=2.0, service_id="s1", spec=on_back).encode())
    moved = C.UpdateService.of(
        state.services["s1"], at=2.5, spec=spec("app:2"), previous_spec=on_back, rollout=Rollout.update(2.5)
    )
    state = run(state, moved.encode())
    state = run(state, C.RemoveNetwork(at=3.0, name="shop_back").encode())  # the deploy's prune
    failure = UpdateFailed("s1", "t1", "rollback", "2 of 2 tasks failed within the 2s monitor")
    ((_, update, action),) = update_failure_updates(state, [failure], 20.0)
    assert action == "pause" and update.update_paused and update.spec.image == "app:2"
    assert update.rollout is not None and update.rollout.state == "paused"
    assert update.rollout.reason.endswith(
        "(not rolled back: its previous spec's network 'shop_back' no longer exists)"
    )
    run(state, update.encode())  # main: the rollback, refused "network 'shop_back' not found"
