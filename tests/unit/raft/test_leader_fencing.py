"""Leader fencing in the FSM: a deposed leader's late round chunks are refused once a newer leader claimed
its epoch, decided from the state alone (replays and snapshots give the same answer)."""

from __future__ import annotations

import random
from typing import Any

import msgpack

from p2porch.errors import ConflictError
from p2porch.leader.scheduling import ROUND_CHUNK_ITEMS, plan_round, round_commands
from p2porch.model import DesiredState, Node, ServiceSpec
from p2porch.raft import commands as C
from p2porch.raft import dumps
from p2porch.raft.fsm import apply_batch, apply_command, encode_batch
from p2porch.raft.state import EMPTY_STATE, ClusterState
from p2porch.scheduler import Orchestrator

REPLICAS = ROUND_CHUNK_ITEMS + 500  # a round of two chunks


def run(state: ClusterState, cmd: C.Command) -> ClusterState:
    new, result, _ = apply_command(state, cmd)
    assert result["ok"], result
    return new


def refusal(state: ClusterState, cmd: C.Command) -> dict[str, Any]:
    new, result, changes = apply_command(state, cmd)
    assert not result["ok"] and new is state and not changes
    return result


def cluster(replicas: int = REPLICAS) -> ClusterState:
    state = run(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c"))
    for i in range(4):
        state = run(state, C.AddNode(at=1.0, node=Node(f"id{i}", f"n{i}", f"10.0.0.{i + 1}", 7947, 7946)))
    spec = ServiceSpec(name="web", image="busybox", replicas=replicas)
    return run(state, C.CreateService(at=2.0, service_id="s1", spec=spec))


def tasks_per_slot(state: ClusterState) -> dict[int, int]:
    counts: dict[int, int] = {}
    for t in state.tasks.values():
        if t.desired_state == DesiredState.RUNNING:
            counts[t.slot] = counts.get(t.slot, 0) + 1
    return counts


def epoch_rounds(state: ClusterState, epoch: int, seed: int, now: float) -> list[C.PutTasks]:
    plan = plan_round(state, now, Orchestrator(random.Random(seed)))
    return [
        C.PutTasks(at=c.at, items=c.items, expected_version=c.expected_version, leader_epoch=epoch)
        for c in round_commands(plan.items, now, state.version)
    ]


def test_without_an_epoch_a_deposed_leaders_second_chunk_doubles_slots() -> None:
    """The bug the epoch fixes, shown on the FSM: chunk 1 of the old leader, the new leader's round
    planned on it, then the old leader's chunk 2 (new tasks, version 0: nothing else conflicts)."""
    state = cluster()
    old_round = round_commands(
        plan_round(state, 3.0, Orchestrator(random.Random(1))).items, 3.0, state.version
    )
    assert len(old_round) == 2
    state = run(state, old_round[0])
    new_plan = plan_round(state, 4.0, Orchestrator(random.Random(2)))
    for cmd in round_commands(new_plan.items, 4.0, state.version):
        state = run(state, cmd)
    state = run(state, old_round[1])  # unfenced: it commits
    assert max(tasks_per_slot(state).values()) == 2
    assert sum(tasks_per_slot(state).values()) == REPLICAS + (REPLICAS - ROUND_CHUNK_ITEMS)


def test_a_stale_epoch_chunk_is_refused_and_the_current_one_applies() -> None:
    state = run(cluster(), C.ClaimLeaderEpoch(at=2.5, epoch=3))
    old_round = epoch_rounds(state, 3, seed=1, now=3.0)
    state = run(state, old_round[0])
    state = run(state, C.ClaimLeaderEpoch(at=3.5, epoch=5))  # a new leader won term 5
    for cmd in epoch_rounds(state, 5, seed=2, now=4.0):
        state = run(state, cmd)
    result = refusal(state, old_round[1])
    assert (result["error"], result["field"]) == (ConflictError.__name__, "leader_epoch")
    assert "leader epoch 3 is older than the latest claimed epoch 5" in result["message"]
    assert tasks_per_slot(state) == {slot: 1 for slot in range(1, REPLICAS + 1)}
    # the deposed leader's status writes and bookkeeping are refused alike; the current leader's apply
    node = state.nodes["id1"]
    down = C.UpdateNode(at=5.0, node_id="id1", status="down", node_version=node.version, leader_epoch=3)
    assert refusal(state, down)["field"] == "leader_epoch"
    run(state, C.UpdateNode(at=5.0, node_id="id1", status="down", node_version=node.version, leader_epoch=5))


def test_unfenced_commands_still_apply_after_an_epoch_was_claimed() -> None:
    """Agents' reports, API writes and every entry written before fencing carry no epoch: never fenced."""
    state = run(cluster(replicas=2), C.ClaimLeaderEpoch(at=2.5, epoch=9))
    (chunk,) = round_commands(
        plan_round(state, 3.0, Orchestrator(random.Random(1))).items, 3.0, state.version
    )
    assert chunk.leader_epoch is None
    state = run(state, chunk)
    state = run(state, C.CreateService(at=4.0, service_id="s2", spec=ServiceSpec(name="db", image="x")))
    assert len(state.tasks) == 2 and state.leader_epoch == 9


def test_claims_move_the_epoch_forward_only() -> None:
    state = cluster(replicas=0)
    # before init_cluster a claim would take version 0 from it: refused
    assert refusal(EMPTY_STATE, C.ClaimLeaderEpoch(at=1.0, epoch=1))["field"] == "cluster_id"
    state = run(state, C.ClaimLeaderEpoch(at=3.0, epoch=4))
    assert state.leader_epoch == 4
    again, result, changes = apply_command(state, C.ClaimLeaderEpoch(at=3.1, epoch=4))
    assert result["ok"] and again is state and not changes  # the same term again: nothing changes
    assert refusal(state, C.ClaimLeaderEpoch(at=3.2, epoch=2))["field"] == "leader_epoch"
    newer = run(state, C.ClaimLeaderEpoch(at=3.3, epoch=6))
    assert (newer.leader_epoch, newer.version) == (6, state.version + 1)
    # a command of a newer epoch than claimed (its claim not applied yet here) is not refused
    run(state, C.Noop(at=3.4, tag="x", leader_epoch=5))


def log_of_a_leader_change() -> list[bytes]:
    state = cluster()
    entries = [
        C.InitCluster(at=1.0, cluster_id="c"),
        *(C.AddNode(at=1.0, node=n) for n in state.nodes.values()),
        C.CreateService(at=2.0, service_id="s1", spec=state.services["s1"].spec),
        C.ClaimLeaderEpoch(at=2.5, epoch=3),
    ]
    replay = EMPTY_STATE
    for cmd in entries:
        replay = run(replay, cmd)
    old_round = epoch_rounds(replay, 3, seed=1, now=3.0)
    replay = run(replay, old_round[0])
    new_claim = C.ClaimLeaderEpoch(at=3.5, epoch=5)
    replay = run(replay, new_claim)
    new_round = epoch_rounds(replay, 5, seed=2, now=4.0)
    return [c.encode() for c in (*entries, old_round[0], new_claim, *new_round, old_round[1])]


def test_replays_decide_identically() -> None:
    """Every replica applying the log (in any batching) refuses the same chunk and ends in the same state."""
    log = log_of_a_leader_change()
    one_by_one, results_a = EMPTY_STATE, []
    for entry in log:
        one_by_one, results, _ = apply_batch(one_by_one, encode_batch([entry]))
        results_a.extend(results)
    grouped, results_b, _ = apply_batch(EMPTY_STATE, encode_batch(log))
    assert results_a == results_b
    assert [r["ok"] for r in results_a].count(False) == 1 and not results_a[-1]["ok"]
    assert one_by_one.to_dict() == grouped.to_dict()
    assert one_by_one.leader_epoch == 5


def test_snapshots_carry_the_epoch() -> None:
    log = log_of_a_leader_change()
    state, _, _ = apply_batch(EMPTY_STATE, encode_batch(log[:-1]))
    head = {"format": 1, "last": [1, 2], "prev": [1, 1], "cluster": []}
    body = msgpack.unpackb(dumps.encode_dump(head, state.to_dict()), raw=False, strict_map_key=False)
    loaded = ClusterState.from_dict(body["state"])
    assert loaded.leader_epoch == 5 and loaded.to_dict() == state.to_dict()
    # the stale chunk is refused after a restart from the snapshot as it was on the live state
    after, results, _ = apply_batch(loaded, encode_batch(log[-1:]))
    assert results[0]["field"] == "leader_epoch" and after is loaded
    # a state that never saw a claim encodes exactly as before fencing existed
    assert "leader_epoch" not in cluster(replicas=0).to_dict()
    assert ClusterState.from_dict(cluster(replicas=0).to_dict()).leader_epoch == 0


def test_a_restored_generation_starts_its_epochs_again() -> None:
    """A forced recovery starts a new Raft log whose terms begin at 1: the old epoch must not fence them."""
    old = run(cluster(replicas=0), C.ClaimLeaderEpoch(at=3.0, epoch=40))
    restored = run(EMPTY_STATE, C.RestoreState(at=4.0, state=old))
    assert restored.leader_epoch == 0
    assert run(restored, C.ClaimLeaderEpoch(at=5.0, epoch=1)).leader_epoch == 1
