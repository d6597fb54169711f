"""Autopilot's voter decisions (pure): add, promote, demote, remove, one step at a time."""

from dataclasses import replace

from p2porch.leader.autopilot import (
    AdmittedVoters,
    VoterAnswers,
    VoterChange,
    next_check_s,
    next_voter_change,
)
from p2porch.model import Node
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE


def node(i: int, role: str = "voter", status: str = "ready", status_at: float = 0.0) -> Node:
    return Node(f"id{i}", f"n{i}", f"10.0.0.{i}", 7947, 7946, role=role, status=status, status_at=status_at)


def addr(i: int) -> str:
    return f"10.0.0.{i}:7947"


FIVE = [node(1), node(2), node(3), node(4, "replica"), node(5, "replica")]
ALIVE = {f"id{i}" for i in range(1, 6)}


def step(nodes, voters, alive=ALIVE, running=(), now=100.0, target=3, grace=5.0):
    return next_voter_change(
        nodes, set(voters), alive, set(running), now, target=target, grace_s=grace, self_addr=addr(1)
    )


def test_healthy_cluster_needs_nothing():
    assert step(FIVE, [addr(1), addr(2), addr(3)]) is None


def test_a_voter_down_within_the_grace_is_left_alone():
    nodes = [node(1), node(2), node(3, status="down", status_at=97.0), *FIVE[3:]]
    assert step(nodes, [addr(1), addr(2), addr(3)], alive=ALIVE - {"id3"}) is None


def test_dead_voter_is_replaced_promote_add_then_demote_then_remove():
    voters = {addr(1), addr(2), addr(3)}
    alive = ALIVE - {"id3"}
    nodes = [node(1), node(2), node(3, status="down", status_at=90.0), *FIVE[3:]]
    change = step(nodes, voters, alive)
    assert change == VoterChange("promote", addr(4), "id4", "replaces voter n3")
    nodes[3] = node(4)  # the promotion is committed; n4 restarts its store as a voter
    assert step(nodes, voters, alive) is None  # not added before it runs as a voter; nobody else promoted
    assert step(nodes, voters, alive, running=[addr(4)]) == VoterChange(
        "add", addr(4), "id4", "runs as a voter"
    )
    voters.add(addr(4))
    assert step(nodes, voters, alive) == VoterChange("demote", addr(3), "id3", "n3 is down")
    nodes[2] = node(3, "replica", status="down", status_at=90.0)
    assert step(nodes, voters, alive) == VoterChange("remove", addr(3), "id3", "n3 was demoted")
    voters.discard(addr(3))
    assert step(nodes, voters, alive) is None
    # n3 comes back as a replica: nothing changes, there are enough voters
    nodes[2] = node(3, "replica")
    assert step(nodes, voters) is None


def test_a_promoted_replica_that_dies_is_given_up_after_the_grace():
    voters = {addr(1), addr(2), addr(3)}
    nodes = [node(1), node(2), node(3, status="down", status_at=0.0), node(4, status="down", status_at=98.0)]
    nodes.append(node(5, "replica"))
    assert step(nodes, voters) is None  # n4 is still coming
    nodes[3] = node(4, status="down", status_at=90.0)
    assert step(nodes, voters) == VoterChange("promote", addr(5), "id5", "replaces voter n3")


def test_more_healthy_voters_than_the_target_are_trimmed():
    nodes = [node(1), node(2), node(3), node(4), node(5, "replica")]
    assert step(nodes, [addr(1), addr(2), addr(3), addr(4)]) == VoterChange(
        "demote", addr(4), "id4", "4 voters, target 3"
    )


def test_no_replica_to_promote_keeps_the_dead_voter():
    nodes = [node(1), node(2), node(3, status="down", status_at=0.0)]
    assert step(nodes, [addr(1), addr(2), addr(3)], alive={"id1", "id2"}) is None
    suspect = [*nodes, node(4, "replica")]  # a replica gossip does not see alive is not promoted
    assert step(suspect, [addr(1), addr(2), addr(3)], alive={"id1", "id2"}) is None


def test_departed_voters_are_removed_and_the_leader_never_removes_itself():
    nodes = [node(1, status="down", status_at=0.0), node(2), node(3, status="left")]
    assert step(nodes, [addr(1), addr(2), addr(3)]) == VoterChange(
        "remove", addr(3), None, "its node left the cluster"
    )
    assert step(nodes[:2], [addr(1), addr(2)], target=2) is None  # self (n1) is never demoted


def test_a_joined_voter_is_added_once_it_runs_as_one():
    nodes = [node(1), node(2)]
    assert step(nodes, [addr(1)], target=2) is None
    assert step(nodes, [addr(1)], running=[addr(2)], target=2) == VoterChange(
        "add", addr(2), "id2", "runs as a voter"
    )


def test_after_a_forced_recovery_replicas_are_promoted_back_to_the_target():
    nodes = [node(1), *(node(i, "replica") for i in range(2, 6))]
    assert step(nodes, [addr(1)]) == VoterChange("promote", addr(2), "id2", "1 of 3 voters")
    nodes[1] = node(2)
    assert step(nodes, [addr(1)], running=[addr(2)]) == VoterChange("add", addr(2), "id2", "runs as a voter")
    assert step(nodes, [addr(1)]).kind == "promote"  # n3: 1 voter + 1 coming < 3
    nodes[2] = node(3)
    assert step(nodes, [addr(1)]) is None  # 1 + 2 coming: nobody else promoted


def test_a_voter_that_just_joined_is_awaited_not_replaced():
    """A joiner is ``joining`` until gossip sees it; the FSM stamps its status time at the join, so within
    the grace it is a voter coming (no replica is promoted instead), after it one given up on."""
    state, _, _ = apply(EMPTY_STATE, C.InitCluster(at=95.0, cluster_id="c").encode())
    for record in (node(1), node(2), node(4, "replica"), node(5, "replica")):
        state, _, _ = apply(state, C.AddNode(at=95.0, node=record).encode())
    state, _, _ = apply(state, C.AddNode(at=98.0, node=node(3, status="joining")).encode())
    assert state.nodes["id3"].status_at == 98.0
    nodes = list(state.nodes.values())
    assert step(nodes, [addr(1), addr(2)], now=100.0) is None  # awaited
    later = step(nodes, [addr(1), addr(2)], now=200.0)
    assert later is not None and later.kind == "promote"  # it never showed up: replaced


def wait(nodes, voters, now=100.0, grace=5.0):
    return next_check_s(nodes, set(voters), now, grace_s=grace, check_s=0.5, quiet_s=10.0)


def test_next_check_is_quiet_when_nothing_is_under_way():
    assert wait(FIVE, [addr(1), addr(2), addr(3)]) == 10.0
    left = [*FIVE, node(6, status="left", status_at=99.0)]  # a node that left is not waited for
    assert wait(left, [addr(1), addr(2), addr(3)]) == 10.0


def test_next_check_is_the_grace_deadline_of_a_down_node():
    nodes = [node(1), node(2), node(3, status="down", status_at=97.0), *FIVE[3:]]
    assert wait(nodes, [addr(1), addr(2), addr(3)]) == 2.0  # down at 97, grace 5 s: decide at 102
    # past its grace the decision no longer changes with time (a commit or gossip change wakes the loop)
    assert wait(nodes, [addr(1), addr(2), addr(3)], now=103.0) == 10.0


def test_next_check_is_soon_while_a_recorded_voter_is_not_in_the_configuration():
    nodes = [node(1), node(2), node(3), node(4), FIVE[4]]  # n4 promoted, not added yet
    assert wait(nodes, [addr(1), addr(2), addr(3)]) == 0.5


def test_no_promotion_for_a_shortfall_while_nodes_join():
    """A formation: voters short of the target, replicas ready, a node still joining. Its admission (or a
    later one, not committed yet) hands out the free voter seats; a promotion then made a voter too many,
    demoted and restarted as a replica again. Once nobody joins (or the joiner is given up on), promote."""
    nodes = [node(1), node(2), node(3, "replica"), node(4, "replica"), node(5, "replica", "joining", 99.0)]
    assert step(nodes, [addr(1), addr(2)]) is None
    assert step(nodes, [addr(1), addr(2)], now=105.0) == VoterChange(
        "promote", addr(3), "id3", "2 of 3 voters"
    )
    nodes[4] = node(5, "replica")  # the joiner is ready: the formation is over
    assert step(nodes, [addr(1), addr(2)]) == VoterChange("promote", addr(3), "id3", "2 of 3 voters")
    # a dead voter is replaced at once, joins or not
    dead = [node(1), node(2), node(3, status="down", status_at=90.0), node(4, "replica"), nodes[4]]
    dead.append(node(6, "replica", "joining", 99.0))
    change = step(dead, [addr(1), addr(2), addr(3)], alive=ALIVE - {"id3"})
    assert change == VoterChange("promote", addr(4), "id4", "replaces voter n3")


def test_a_voters_answer_is_reused_within_its_ttl_for_its_generation_only():
    answers = VoterAnswers(ttl_s=2.0)
    answers.note(addr(4), 0, now=10.0)
    answers.note(addr(5), 1, now=10.0)
    assert answers.running([addr(4), addr(5), addr(6)], 0, now=11.9) == {addr(4)}  # 5: another generation
    assert answers.running([addr(5)], 1, now=11.9) == {addr(5)}
    assert answers.running([addr(4)], 0, now=12.0) == set()  # too old: asked again
    answers.note(addr(4), 0, now=12.5)
    assert answers.running([addr(4)], 0, now=13.0) == {addr(4)}


def test_a_voter_seen_joining_runs_as_one_once_ready_and_alive_without_being_asked():
    """n4 and n5 were admitted as voters (seen ``joining``); once gossip sees them alive they run as
    voters. n6 was never seen joining (a promoted replica, or admitted between two looks): asked."""
    admitted = AdmittedVoters()
    voters = [addr(1), addr(2), addr(3)]
    joining = [node(4, status="joining"), node(5, status="joining"), node(6, "replica")]
    admitted.observe([*FIVE[:3], *joining], voters, term=2)
    ready = [node(4), node(5), node(6)]
    admitted.observe([*FIVE[:3], *ready], voters, term=2)
    assert admitted.running(ready, alive={"id4", "id5", "id6"}) == {addr(4), addr(5)}
    # not alive in this leader's gossip (suspect, dead, or left: a join abandoned after its gossip started)
    assert admitted.running(ready, alive={"id5", "id6"}) == {addr(5)}


def test_an_admitted_voter_is_forgotten_once_added_demoted_gone_moved_or_the_term_changes():
    voters = [addr(1), addr(2), addr(3)]
    joining = [node(4, status="joining"), node(5, status="joining"), node(6, status="joining")]
    joining.append(node(7, status="joining"))
    alive = {"id4", "id5", "id6", "id7"}
    admitted = AdmittedVoters()
    admitted.observe([*FIVE[:3], *joining], voters, term=2)
    # n4 added; n5 recorded replica; n6 gone; n7 came back at another Raft port
    later = [node(4), node(5, "replica"), replace(node(7), raft_port=7000)]
    admitted.observe([*FIVE[:3], *later], [*voters, addr(4)], term=2)
    # n4 removed again and n5 promoted: both restart their store as voters, so both are asked
    promoted = [node(4), node(5), node(6), node(7)]
    admitted.observe([*FIVE[:3], *promoted], voters, term=2)
    assert admitted.running(promoted, alive) == set()
    admitted.observe([*FIVE[:3], *joining], voters, term=2)
    assert admitted.running(promoted, alive) == {addr(4), addr(5), addr(6), addr(7)}
    admitted.observe([*FIVE[:3], *promoted], voters, term=3)  # a new term: what another leader wrote
    assert admitted.running(promoted, alive) == set()


def test_committed_records_are_noted_in_order_between_two_looks():
    """n4 was admitted and marked ready between two looks: noted from the committed records. n5 was
    admitted, recorded replica and promoted again in the same batch: its store restarts as a voter, so
    it is asked. A new term forgets."""
    admitted = AdmittedVoters()
    changed = [node(4, status="joining"), node(5, status="joining"), node(4), node(5, "replica"), node(5)]
    admitted.note(changed, term=2)
    state = [*FIVE[:3], node(4), node(5)]
    admitted.observe(state, [addr(1), addr(2), addr(3)], term=2)
    assert admitted.running([node(4), node(5)], alive={"id4", "id5"}) == {addr(4)}
    admitted.note([], term=3)
    assert admitted.running([node(4)], alive={"id4"}) == set()
