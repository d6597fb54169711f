"""Autopilot spreads voters over region/zone labels (issue 20)."""

from __future__ import annotations

from p2porch.leader.autopilot import crowded_pick, next_voter_change, spread_pick
from p2porch.model import Node as NodeRecord


def node(i: int, region: str, role: str = "replica", zone: str = "") -> NodeRecord:
    labels = {"region": region, **({"zone": zone} if zone else {})}
    return NodeRecord(f"{i:016x}", f"n{i}", f"10.0.0.{i}", 7947, 7946, role=role, labels=labels)


def change(nodes: list[NodeRecord], target: int = 3):
    voters = [n.raft_addr for n in nodes if n.role == "voter"]
    return next_voter_change(
        nodes,
        voters,
        alive={n.node_id for n in nodes},
        runs_as_voter=set(voters),
        now=100.0,
        target=target,
        grace_s=5.0,
        self_addr=voters[0],
    )


def test_promotion_picks_the_replica_of_the_emptiest_region():
    nodes = [node(1, "a", "voter"), node(2, "a", "voter"), node(3, "a"), node(4, "b"), node(5, "c")]
    step = change(nodes)
    assert (
        step is not None and step.kind == "promote" and step.node_id == nodes[3].node_id
    )  # b before c by name


def test_uneven_regions_swap_a_vote_across_in_two_steps():
    nodes = [node(1, "a", "voter"), node(2, "a", "voter"), node(3, "a", "voter"), node(4, "b"), node(5, "b")]
    step = change(nodes)
    assert step is not None and (step.kind, step.node_id, step.reason) == (
        "promote",
        nodes[3].node_id,
        "spreads voters over regions",
    )
    promoted = [*nodes[:3], node(4, "b", "voter"), nodes[4]]
    step = change(promoted)
    assert step is not None and step.kind == "demote" and step.node_id in {n.node_id for n in nodes[1:3]}


def test_two_regions_split_two_one_are_already_spread():
    nodes = [node(1, "a", "voter"), node(2, "a", "voter"), node(3, "b", "voter"), node(4, "b"), node(5, "a")]
    assert change(nodes) is None


def test_without_labels_the_old_order_by_name_holds():
    plain = [NodeRecord(f"{i:016x}", f"n{i}", f"10.0.0.{i}", 7947, 7946) for i in (3, 1, 2)]
    assert spread_pick(plain, []) is plain[1]
    assert crowded_pick(plain, exclude="10.0.0.1:7947") is plain[0]


def test_zone_breaks_ties_inside_a_region():
    voters = [node(1, "a", "voter", "z1")]
    picked = spread_pick([node(2, "a", zone="z1"), node(3, "a", zone="z2")], voters)
    assert picked is not None and picked.name == "n3"
