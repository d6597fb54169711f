"""The pure parts of the voter-role watcher: who sees a leader, recorded voters, peers' answers, recovery."""

from dataclasses import replace

import pytest

from p2porch.membership.localstate import LocalClusterState
from p2porch.membership.token import new_token
from p2porch.membership.voter_role import (
    _parse_answer,
    holds_elections,
    recorded_voters,
    recovered_state,
    sees_leader,
)
from p2porch.model import Node
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE
from p2porch.raft.status import RaftStatus

A, B, R = "10.0.0.1:7947", "10.0.0.2:7947", "10.0.0.3:7947"


def status(**kw: object) -> RaftStatus:
    base = dict(
        self_addr=A, role="follower", is_leader=False, leader=None, term=3, commit_index=9, last_applied=9,
        voters=(A, B), connected_voters=(), replicas_connected=0, has_quorum=False, ready=True,
        state_version=4, raft_thread_alive=True,
    )  # fmt: skip
    base.update(kw)
    return RaftStatus(**base)  # type: ignore[arg-type]


def test_sees_leader_only_when_connected_to_it_or_leading() -> None:
    assert sees_leader(status(is_leader=True, leader=A))
    assert sees_leader(status(leader=B, connected_voters=(B,)))
    assert not sees_leader(status(leader=B, connected_voters=()))  # a replica's stale leader name
    assert not sees_leader(status())


def state_with(*nodes: Node):
    state = EMPTY_STATE
    init = C.InitCluster(at=1.0, cluster_id="0123456789abcdef").encode()
    for cmd in [init] + [C.AddNode(at=2.0, node=n).encode() for n in nodes]:
        state, result, _ = apply(state, cmd)
        assert result["ok"], result
    return state


def node(i: int, role: str, status: str = "ready") -> Node:
    return Node(f"id{i}", f"n{i}", f"10.0.0.{i}", 7947, 7946, role=role, status=status)


def test_recorded_voters_are_sorted_and_skip_replicas_and_left_nodes() -> None:
    state = state_with(node(3, "voter"), node(1, "voter"), node(2, "replica"), node(4, "voter", "left"))
    assert recorded_voters(state) == (A, R)


def test_recovered_state_makes_the_survivor_the_only_voter_and_restores_through_the_fsm() -> None:
    state = state_with(node(1, "voter"), node(2, "voter"), node(3, "replica"))
    data = recovered_state(state, "id2")
    assert {n.node_id: n.role for n in data.nodes.values()} == {
        "id1": "replica",
        "id2": "voter",
        "id3": "replica",
    }
    assert state.nodes["id1"].role == "voter"  # the committed state is not touched
    restored, result, _ = apply(EMPTY_STATE, C.RestoreState(at=5.0, state=data).encode())
    assert result["ok"] and restored.generation == state.generation + 1
    assert recorded_voters(restored) == (B,) and restored.version > state.version


LOCAL = LocalClusterState(
    cluster_id="0123456789abcdef", token=str(new_token("0123456789abcdef")), node_id="id1", node_name="n1",
    role="voter", raft_addr=A, voters=(A, B), generation=2,
)  # fmt: skip
GOOD = {"leader": B, "role": "replica", "voters": [B, R], "generation": 2}


def test_a_peer_answer_that_sees_a_leader_gives_the_recorded_role() -> None:
    assert _parse_answer(GOOD, LOCAL) == replace(LOCAL, role="replica", voters=(B, R))
    newer = _parse_answer({**GOOD, "generation": 3}, LOCAL)
    assert newer is not None and newer.generation == 3  # follow a forced recovery


@pytest.mark.parametrize(
    "answer",
    [
        None,
        "garbage",
        [],
        {},
        {**GOOD, "leader": None},  # the peer sees no leader: its record may be stale
        {**GOOD, "role": "king"},
        {**GOOD, "voters": None},
        {**GOOD, "voters": []},
        {**GOOD, "generation": "two"},
        {**GOOD, "generation": 1},  # never go back to a log a recovery replaced
        {k: v for k, v in GOOD.items() if k != "voters"},
    ],
)
def test_unusable_answers_change_nothing(answer: object) -> None:
    assert _parse_answer(answer, LOCAL) is None


def test_only_a_switch_from_replica_to_voter_holds_elections_until_a_leader_is_heard() -> None:
    replica = replace(LOCAL, role="replica")
    assert holds_elections(replica, LOCAL)  # promoted: not in the configuration until the leader adds it
    assert not holds_elections(LOCAL, replica)  # demoted
    assert not holds_elections(LOCAL, replace(LOCAL, generation=3))  # a voter following a recovery
    assert not holds_elections(replica, replace(replica, generation=3))


def test_recovered_state_records_the_voters_that_did_not_answer_down_since_the_recovery() -> None:
    """Their tasks are replaced at once, not after the new leader's never-seen grace (30 s); a replica
    that was not asked, and the survivor, stay ready (gossip decides for them)."""
    lost = replace(node(1, "voter"), restart_until=50.0, restart_incarnation=3)  # it had announced a restart
    state = state_with(lost, node(2, "voter"), node(3, "replica"))
    data = recovered_state(state, "id2", lost=frozenset({A}), now=100.0)
    assert {n.node_id: (n.status, n.status_at) for n in data.nodes.values()} == {
        "id1": ("down", 100.0),
        "id2": ("ready", state.nodes["id2"].status_at),
        "id3": ("ready", state.nodes["id3"].status_at),
    }
    assert (data.nodes["id1"].restart_until, data.nodes["id1"].down_since) == (0.0, 100.0)
    assert recovered_state(state, "id2", lost=frozenset({B}), now=100.0).nodes["id2"].status == "ready"
