"""What the leader writes after a round: update failure actions and finished rebalances (pure, real FSM)."""

from dataclasses import replace

from p2porch.errors import ConflictError, ProposalTimeout
from p2porch.leader.followups import (
    COMMITTED,
    DEPOSED,
    Outcome,
    Writes,
    outcome_of,
    rebalance_done_updates,
    refused_rollback,
    round_writes,
    update_failure_updates,
)
from p2porch.leader.scheduling import Round, node_status_updates
from p2porch.model import Node, NodeStatus, Service, ServiceSpec
from p2porch.raft import command_gate
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE, ClusterState
from p2porch.scheduler import UpdateFailed


def run(state: ClusterState, command: bytes) -> ClusterState:
    new, result, _ = apply(state, command)
    assert result["ok"], result
    return new


def spec(image: str, action: str = "rollback", name: str = "web") -> ServiceSpec:
    data = {"name": name, "image": image, "replicas": 2, "update": {"failure_action": action}}
    return ServiceSpec.from_dict(data)


def service_state(current: ServiceSpec, **bookkeeping: object) -> ClusterState:
    """Services s1 (``current`` with ``bookkeeping`` fields) and s2, as the FSM stores them."""
    state = run(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c").encode())
    state = run(state, C.CreateService(at=2.0, service_id="s1", spec=current).encode())
    if bookkeeping:
        update = C.UpdateService.of(state.services["s1"], at=2.5, **bookkeeping)
        state = run(state, update.encode())
    return run(state, C.CreateService(at=2.0, service_id="s2", spec=spec("x:1", name="other")).encode())


def commit(state: ClusterState, writes: list) -> ClusterState:
    for _service, update, *_ in writes:
        state = run(state, update.encode())
    return state


def test_a_failed_update_rolls_back_to_the_previous_spec_keeping_a_rebalance_request() -> None:
    state = service_state(spec("app:2"), previous_spec=spec("app:1"), rebalance_requested=5.0)
    failures = [UpdateFailed("s1", "t1", "rollback"), UpdateFailed("s1", "t2", "rollback")]
    writes = update_failure_updates(state, failures, 3.0)
    assert [(s.service_id, action) for s, _, action in writes] == [("s1", "rollback")]  # once per service
    state = commit(state, writes)
    service: Service = state.services["s1"]
    assert service.spec.image == "app:1"
    # the failed spec is not kept (swarmkit clears PreviousSpec): `service rollback` after it is refused,
    # where it rolled the failed update out again (walk h45: web 1 of 5 tasks down, update paused)
    assert service.previous_spec is None
    assert service.rebalance_requested == 5.0 and not service.update_paused
    assert service.rollout is not None and service.rollout.state == "rollback_started"
    assert service.rollout.started_at == 3.0


def test_pause_or_no_previous_spec_pauses_and_a_paused_service_is_left_alone() -> None:
    state = service_state(spec("app:2", action="pause"), previous_spec=spec("app:1"))
    state = commit(state, update_failure_updates(state, [UpdateFailed("s1", "t1", "pause")], 3.0))
    assert state.services["s1"].update_paused is True
    assert state.services["s1"].spec.image == "app:2"
    assert update_failure_updates(state, [UpdateFailed("s1", "t3", "pause")], 4.0) == []  # already paused

    state = service_state(spec("app:2"))  # rollback asked, but nothing to roll back to
    (write,) = update_failure_updates(state, [UpdateFailed("s1", "t1", "rollback")], 3.0)
    assert write[2] == "pause" and write[1].update_paused is True
    assert update_failure_updates(state, [UpdateFailed("gone", "t1", "rollback")], 3.0) == []


def test_a_rollback_point_an_older_member_does_not_read_pauses_instead() -> None:
    """Main rolled back to the point unchecked: a service moved off ``host`` whose update failed after a
    spec-2 node joined wrote the host spec, which that node's FSM refuses while the newer ones apply it."""
    host = ServiceSpec.from_dict({**spec("app:1").to_dict(), "networks": ["host"], "endpoint_mode": "dnsrr"})
    state = service_state(spec("app:2"), previous_spec=host)
    new = command_gate.advertisement()
    failures = [UpdateFailed("s1", "t1", "rollback")]
    (write,) = update_failure_updates(state, failures, 3.0, lambda: {"n1": new, "n2": {**new, "spec": 2}})
    assert write[2] == "pause" and write[1].update_paused is True
    assert write[1].rollout is not None and "not rolled back: networks: host" in write[1].rollout.reason
    assert "n2" in write[1].rollout.reason
    (write,) = update_failure_updates(state, failures, 3.0, lambda: {"n1": new, "n2": new})  # upgraded
    assert write[2] == "rollback"


def test_a_rollback_point_naming_a_removed_secret_or_config_pauses_instead() -> None:
    """Review r52c: after a rotation by new name (Docker's: `service update --secret-rm db_v1 --secret-add
    db_v2`, then `secret rm db_v1`, which Swarm allows), a failed update rolled back to the spec naming
    db_v1: every task failed to start, and the service ended paused with a generic reason."""
    old = ServiceSpec.from_dict({**spec("app:1").to_dict(), "secrets": ["db_v1"], "configs": ["app.conf"]})
    state = service_state(spec("app:2"), previous_spec=old)
    failures = [UpdateFailed("s1", "t1", "rollback")]
    (write,) = update_failure_updates(state, failures, 3.0)
    assert write[2] == "pause" and write[1].update_paused is True
    assert write[1].rollout is not None
    assert "(not rolled back: its previous spec's secret 'db_v1' no longer exists)" in write[1].rollout.reason
    for kind, name in (("secret", "db_v1"), ("config", "app.conf")):
        put = C.PutSecret(
            at=2.6,
            kind=kind,
            name=name,
            object_id=f"o-{name}",
            secret_version=1,
            sealed=b"x",
            digest="d",
            size=1,
        )
        state = run(state, put.encode())
    ((_, _, action),) = update_failure_updates(state, failures, 3.0)
    assert action == "rollback"


def test_a_rollback_the_fsm_refuses_is_paused_naming_the_refusal() -> None:
    state = service_state(spec("app:2"), previous_spec=spec("app:1"))
    ((service, rollback, _),) = update_failure_updates(
        state, [UpdateFailed("s1", "t1", "rollback", "boom")], 3.0
    )
    pause = refused_rollback(service, 3.0, rollback, "--publish: port '30000' (tcp) is already in use")
    state = commit(state, [(service, pause)])
    after = state.services["s1"]
    assert after.update_paused and after.spec.image == "app:2" and after.rollout is not None
    assert (
        after.rollout.reason
        == "update failed: boom (not rolled back: --publish: port '30000' (tcp) is already in use)"
    )


def drive(writes: Writes, outcomes: list[Outcome]) -> tuple[list[C.UpdateService], bool]:
    """The writes a decision yields when sent ``outcomes`` in order, and what it returns."""
    yielded: list[C.UpdateService] = []
    try:
        write = next(writes)
        while True:
            yielded.append(write.update)
            write = writes.send(outcomes[len(yielded) - 1])
    except StopIteration as stop:
        return yielded, bool(stop.value)


def test_the_round_decision_pauses_a_refused_rollback_and_ends_only_on_a_commit() -> None:
    """The decision the real loop and the cluster simulator both drive: a refused rollback is followed
    by the pause naming the refusal; the round ends only when a write committed (or the leader was
    deposed), else it goes on to its placements."""
    state = service_state(spec("app:2"), previous_spec=spec("app:1"), rebalance_requested=5.0)
    plan = Round(update_failures=[UpdateFailed("s1", "t1", "rollback", "boom")], rebalanced=["s1"])
    refused = Outcome("refused", "--publish: port '30000' (tcp) is already in use")
    lost = Outcome("lost", "service_version")
    (rollback, pause, clear), ends = drive(round_writes(state, plan, 3.0), [refused, lost, lost])
    assert rollback.spec.image == "app:1" and pause.update_paused and pause.spec.image == "app:2"
    assert pause.rollout is not None and pause.rollout.reason.endswith(
        f"(not rolled back: {refused.message})"
    )
    assert clear.rebalance_requested == 0.0 and not ends  # nothing committed: the placements go on
    assert drive(round_writes(state, plan, 3.0), [refused, COMMITTED]) == ([rollback, pause], True)
    assert drive(round_writes(state, plan, 3.0), [DEPOSED]) == ([rollback], True)
    assert drive(round_writes(state, Round(), 3.0), []) == ([], False)


def test_a_write_error_is_a_race_a_deposition_or_a_refusal() -> None:
    assert outcome_of(ProposalTimeout("no commit")).kind == "lost"
    assert outcome_of(ConflictError("moved", field="service_version")).kind == "lost"
    assert outcome_of(ConflictError("newer leader", field="leader_epoch")) is DEPOSED
    assert outcome_of(ConflictError("in use", field="--publish")) == Outcome("refused", "in use")


def test_finished_rebalances_drop_only_the_request() -> None:
    state = service_state(spec("app:1"), rebalance_requested=7.0)
    before = state.services["s1"]
    writes = rebalance_done_updates(state, ["s1", "gone"], 3.0)
    assert [s.service_id for s, _ in writes] == ["s1"]
    state = commit(state, writes)
    after = state.services["s1"]
    assert after.rebalance_requested == 0.0
    restored = replace(after, rebalance_requested=7.0, version=before.version, updated_at=before.updated_at)
    assert restored == before


def test_node_statuses_follow_gossip_except_suspects_unknowns_and_left_nodes() -> None:
    state = run(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c").encode())
    for i, status in enumerate(["ready", "ready", "down", "left", "ready", "down"], 1):
        node = Node(f"id{i}", f"n{i}", f"10.0.0.{i}", 7947, 7946, status=NodeStatus(status))
        state = run(state, C.AddNode(at=1.0, node=node).encode())
    gossip = {"id1": "dead", "id2": "suspect", "id3": "alive", "id4": "alive", "id6": "dead"}
    assert node_status_updates(state, gossip) == {"id1": "down", "id3": "ready"}
    assert node_status_updates(state, {"id1": "left"}) == {"id1": "down"}
