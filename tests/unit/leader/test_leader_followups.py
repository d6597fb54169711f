"""What the leader writes after a round: update failure actions and finished rebalances (pure, real FSM)."""

from p2porch.leader.scheduling import node_status_updates, rebalance_done_specs, update_failure_specs
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE, ClusterState, NodeRecord
from p2porch.scheduler import ServiceSpec, UpdateFailed


def run(state: ClusterState, command: bytes) -> ClusterState:
    new, result, _ = apply(state, command)
    assert result["ok"], result
    return new


def spec(image: str, action: str = "rollback", **extra: object) -> dict:
    data = {"name": "web", "image": image, "replicas": 2, "update": {"failure_action": action}}
    return {**ServiceSpec.from_dict(data).to_dict(), **extra}


def service_state(stored: dict) -> ClusterState:
    state = run(EMPTY_STATE, C.init_cluster(1.0, cluster_id="c"))
    state = run(state, C.create_service(2.0, "s1", "web", stored))
    return run(state, C.create_service(2.0, "s2", "other", {**spec("x:1"), "name": "other"}))


def commit(state: ClusterState, writes: list) -> ClusterState:
    for service, stored, *_ in writes:
        state = run(state, C.update_service(3.0, service.service_id, stored, service_version=service.version))
    return state


def test_a_failed_update_rolls_back_to_the_previous_spec_keeping_a_rebalance_request() -> None:
    current = spec("app:2", previous_spec=spec("app:1"), rebalance_requested=5.0)
    state = service_state(current)
    failures = [UpdateFailed("s1", "t1", "rollback"), UpdateFailed("s1", "t2", "rollback")]
    writes = update_failure_specs(state, failures, 9.0)
    assert [(s.service_id, action) for s, _, action in writes] == [("s1", "rollback")]  # once per service
    state = commit(state, writes)
    stored = state.services["s1"].spec
    assert stored["image"] == "app:1" and stored["previous_spec"]["image"] == "app:2"
    assert "previous_spec" not in stored["previous_spec"]  # no nesting of old specs
    assert stored["rebalance_requested"] == 5.0
    assert stored["rollout"]["state"] == "rollback_started" and stored["rollout"]["started_at"] == 9.0
    assert ServiceSpec.from_dict(
        {k: v for k, v in stored.items() if k not in ("previous_spec", "rebalance_requested", "rollout")}
    )


def test_pause_or_no_previous_spec_pauses_and_a_paused_service_is_left_alone() -> None:
    state = service_state(spec("app:2", action="pause", previous_spec=spec("app:1")))
    state = commit(state, update_failure_specs(state, [UpdateFailed("s1", "t1", "pause")], 9.0))
    assert state.services["s1"].spec["update_paused"] is True
    assert state.services["s1"].spec["image"] == "app:2"
    assert update_failure_specs(state, [UpdateFailed("s1", "t3", "pause")], 9.0) == []  # already paused

    state = service_state(spec("app:2"))  # rollback asked, but nothing to roll back to
    (write,) = update_failure_specs(state, [UpdateFailed("s1", "t1", "rollback")], 9.0)
    assert write[2] == "pause" and write[1]["update_paused"] is True
    assert update_failure_specs(state, [UpdateFailed("gone", "t1", "rollback")], 9.0) == []


def test_finished_rebalances_drop_only_the_request() -> None:
    state = service_state(spec("app:1", rebalance_requested=7.0))
    writes = rebalance_done_specs(state, ["s1", "gone"])
    assert [s.service_id for s, _ in writes] == ["s1"]
    state = commit(state, writes)
    assert "rebalance_requested" not in state.services["s1"].spec
    assert state.services["s1"].spec["image"] == "app:1"


def test_node_statuses_follow_gossip_except_suspects_unknowns_and_left_nodes() -> None:
    state = run(EMPTY_STATE, C.init_cluster(1.0, cluster_id="c"))
    for i, status in enumerate(["ready", "ready", "down", "left", "ready", "down"], 1):
        node = NodeRecord(f"id{i}", f"n{i}", f"10.0.0.{i}", 7947, 7946, status=status)
        state = run(state, C.add_node(1.0, node))
    gossip = {"id1": "dead", "id2": "suspect", "id3": "alive", "id4": "alive", "id6": "dead"}
    assert node_status_updates(state, gossip) == {"id1": "down", "id3": "ready"}
    assert node_status_updates(state, {"id1": "left"}) == {"id1": "down"}
