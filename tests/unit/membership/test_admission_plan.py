"""The pure admission decision (membership/admission_plan.py): a new node, the same node again, or a
name taken by another."""

from __future__ import annotations

from dataclasses import replace

import pytest

from p2porch.errors import ConflictError
from p2porch.membership.admission_plan import (
    AdmissionPlan,
    admitted_status,
    earlier_attempt,
    plan_admission,
    with_pending,
)
from p2porch.model import Node, NodeRole, NodeStatus
from p2porch.raft import commands as C
from p2porch.raft import fsm
from p2porch.raft.state import EMPTY_STATE, ClusterState


def three_voters(n: int) -> int:
    return min(3, n)


def key(n: int) -> str:
    return f"{n:02d}" * 22  # 44 characters, like a base64 X25519 public key


def fields(n: int, name: str = "", **over: object) -> dict[str, object]:
    return {
        "node_id": f"{n:016x}",
        "name": name or f"n{n}",
        "addr": f"10.0.0.{n}",
        "raft_port": 7947,
        "gossip_port": 7946,
        "join_port": 0,
        "vxlan_port": 0,
        "key_pub": key(n),
        **over,
    }


def state_with(
    *records: tuple[dict[str, object], NodeRole, NodeStatus], leased: tuple[int, ...] = ()
) -> ClusterState:
    commands: list[C.Command] = [C.InitCluster(at=0.0, cluster_id="c0ffee0123456789")]
    commands += [
        C.AddNode(at=0.0, node=Node(**record, role=role, status=status))  # type: ignore[arg-type]
        for record, role, status in records
    ]
    commands += [C.LeaseSubnet(at=0.0, node_id=f"{n:016x}") for n in leased]
    state = EMPTY_STATE
    for command in commands:
        state, result, _ = fsm.apply(state, command.encode())
        assert "error" not in result, result
    return state


def plan(state: ClusterState, request: dict[str, object], source: str = "") -> AdmissionPlan:
    """The plan for ``request`` arriving from ``source`` (default: the address it names)."""
    earlier = earlier_attempt(state, request, source or str(request["addr"]))
    return plan_admission(state, request, earlier, three_voters)


def test_a_new_node_is_added_and_leased_as_a_voter_until_the_target_then_as_a_replica() -> None:
    one = state_with((fields(1), NodeRole.VOTER, NodeStatus.READY))
    assert plan(one, fields(2)) == AdmissionPlan(role=NodeRole.VOTER)
    three = state_with(*((fields(n), NodeRole.VOTER, NodeStatus.READY) for n in (1, 2, 3)))
    assert plan(three, fields(4)) == AdmissionPlan(role=NodeRole.REPLICA)


def test_the_same_node_asking_again_keeps_its_joining_record() -> None:
    state = state_with(
        *((fields(n), NodeRole.VOTER, NodeStatus.READY) for n in (1, 2, 3)),
        (fields(4), NodeRole.VOTER, NodeStatus.JOINING),  # it was a voter when first admitted: it stays one
        leased=(4,),
    )
    got = plan(state, fields(4))
    assert got == AdmissionPlan(role=NodeRole.VOTER, add=False, lease=False) and got.resumed


@pytest.mark.parametrize("status", [NodeStatus.READY, NodeStatus.DOWN])
def test_a_replica_past_joining_is_resumed_only_from_its_own_address(status: NodeStatus) -> None:
    state = state_with(
        *((fields(n), NodeRole.VOTER, NodeStatus.READY) for n in (1, 2, 3)),
        (fields(4), NodeRole.REPLICA, status),
        leased=(4,),
    )
    got = plan(state, fields(4))
    assert got == AdmissionPlan(role=NodeRole.REPLICA, add=False, lease=False) and got.resumed
    with pytest.raises(ConflictError):  # --behind-nat lifts the address check: the public key proves nothing
        plan(state, fields(4, behind_nat=True), source="192.0.2.7")


@pytest.mark.parametrize("status", [NodeStatus.READY, NodeStatus.DOWN])
def test_a_voter_past_joining_is_never_resumed(status: NodeStatus) -> None:
    # a failed attempt wiped its Raft state: back in the configuration with an empty journal it could
    # vote twice in a term
    state = state_with(
        *((fields(n), NodeRole.VOTER, NodeStatus.READY) for n in (1, 2, 3)),
        (fields(4), NodeRole.VOTER, status),
        leased=(4,),
    )
    with pytest.raises(ConflictError) as caught:
        plan(state, fields(4))
    assert caught.value.field == "--name"


def test_the_same_node_without_its_lease_gets_one() -> None:
    state = state_with(
        (fields(1), NodeRole.VOTER, NodeStatus.READY), (fields(2), NodeRole.VOTER, NodeStatus.JOINING)
    )
    assert plan(state, fields(2)) == AdmissionPlan(role=NodeRole.VOTER, add=False, lease=True)


def test_the_same_node_with_a_new_id_or_ports_replaces_its_record_and_its_role_is_chosen_again() -> None:
    state = state_with(
        *((fields(n), NodeRole.VOTER, NodeStatus.READY) for n in (1, 2)),
        (fields(3), NodeRole.VOTER, NodeStatus.JOINING),
    )
    for again in (fields(3, node_id=f"{33:016x}"), fields(3, raft_port=8000)):
        # without its old record there are 2 voters of 3 nodes: it joins as a voter again
        assert plan(state, again) == AdmissionPlan(role=NodeRole.VOTER, remove_id=f"{3:016x}")


def test_a_name_taken_by_another_node_is_refused_naming_the_flag() -> None:
    state = state_with(
        (fields(1), NodeRole.VOTER, NodeStatus.READY), (fields(2), NodeRole.VOTER, NodeStatus.JOINING)
    )
    for intruder in (
        fields(2, key_pub=key(9)),  # same address and name, another key
        fields(9, name="n2"),  # another address
        fields(2, key_pub=""),  # no key proves nothing
    ):
        with pytest.raises(ConflictError) as caught:
            plan(state, intruder)
        assert caught.value.field == "--name"


def test_a_record_without_a_key_is_never_taken_over() -> None:
    state = state_with(
        (fields(1), NodeRole.VOTER, NodeStatus.READY),
        (fields(2, key_pub=""), NodeRole.VOTER, NodeStatus.JOINING),
    )
    with pytest.raises(ConflictError):
        plan(state, fields(2, key_pub=""))


def test_a_node_that_left_gives_its_name_to_anyone() -> None:
    state = state_with(
        (fields(1), NodeRole.VOTER, NodeStatus.READY), (fields(2), NodeRole.VOTER, NodeStatus.LEFT)
    )
    assert plan(state, fields(9, name="n2")) == AdmissionPlan(role=NodeRole.VOTER, remove_id=f"{2:016x}")


def test_admissions_in_flight_count_as_committed_for_the_next_plan() -> None:
    state = state_with((fields(1), NodeRole.VOTER, NodeStatus.READY))
    n2 = Node(**fields(2), role=NodeRole.VOTER, status=NodeStatus.JOINING)  # type: ignore[arg-type]
    ahead = with_pending(state, [(n2, None)])
    assert state.node_by_name("n2") is None and ahead.node_by_name("n2") == n2
    assert plan(ahead, fields(3)).role == NodeRole.VOTER  # 3 voters with n1 and n2
    n3 = Node(**fields(3), role=NodeRole.VOTER, status=NodeStatus.JOINING)  # type: ignore[arg-type]
    assert plan(with_pending(state, [(n2, None), (n3, None)]), fields(4)).role == NodeRole.REPLICA
    with pytest.raises(ConflictError):  # n2's name, still in flight, for another node
        plan(ahead, fields(5, name="n2"))


def test_an_admission_in_flight_that_replaces_a_record_removes_it_from_the_view() -> None:
    state = state_with(
        (fields(1), NodeRole.VOTER, NodeStatus.READY), (fields(2), NodeRole.REPLICA, NodeStatus.LEFT)
    )
    newcomer = Node(**fields(3, name="n2"), role=NodeRole.VOTER, status=NodeStatus.JOINING)  # type: ignore[arg-type]
    ahead = with_pending(state, [(newcomer, f"{2:016x}")])
    assert set(ahead.nodes) == {f"{1:016x}", f"{3:016x}"} and ahead.node_by_name("n2") == newcomer
    assert with_pending(state, []) is state


@pytest.mark.parametrize(
    ("role", "source", "status"),
    [
        (NodeRole.REPLICA, "10.0.0.7", NodeStatus.READY),  # its admission is the join's one entry
        (NodeRole.REPLICA, "192.0.2.7", NodeStatus.JOINING),  # behind NAT: resumed only while joining
        (NodeRole.VOTER, "10.0.0.7", NodeStatus.JOINING),  # never resumed past joining; added once ready
    ],
)
def test_only_a_replica_from_its_own_address_is_admitted_ready(
    role: NodeRole, source: str, status: NodeStatus
) -> None:
    assert admitted_status(role, "10.0.0.7", source) == status


def test_the_old_join_entries_replay_to_the_node_the_new_admission_writes_at_once() -> None:
    """A cluster upgraded in place replays joins of the old shape (the record ``joining``, the lease,
    then the leader's ready mark in an entry of its own); they end where a replica's one entry does."""
    init = [C.InitCluster(at=0.0, cluster_id="c" * 16)]
    record = Node(**fields(2), role=NodeRole.REPLICA)
    lease = C.LeaseSubnet(at=1.0, node_id=record.node_id).encode()
    joining = C.AddNode(at=1.0, node=replace(record, status=NodeStatus.JOINING)).encode()
    mark = C.UpdateNode(at=1.0, node_id=record.node_id, status=NodeStatus.READY).encode()
    old = [fsm.encode_batch([joining, lease]), fsm.encode_batch([mark])]
    new = [fsm.encode_batch([C.AddNode(at=1.0, node=record).encode(), lease])]
    ends = []
    for entries in (old, new):
        state = fsm.apply_batch(EMPTY_STATE, fsm.encode_batch([c.encode() for c in init]))[0]
        for entry in entries:
            state, results, _ = fsm.apply_batch(state, entry)
            assert all(r["ok"] for r in results)
        node = state.nodes[record.node_id]
        ends.append((node.status, node.role, node.status_at, state.leases[record.node_id].subnet))
    assert ends[0] == ends[1] == (NodeStatus.READY, NodeRole.REPLICA, 1.0, ends[1][3])
