"""When a member's gossip pushes/pulls with a Raft member it does not know (``member.seed_plan``): after
a grace, a few members at a time, the leader first, everyone by the cap; at once when alone."""

from __future__ import annotations

import math

from p2porch.gossip.config import GossipConfig
from p2porch.member.seed_plan import SEED_GRACE_ROUNDS, SeedPlan

MEMBERS = [f"n{i}" for i in range(1, 21)]  # n20 is the new node


def plan_of(me: str) -> SeedPlan:
    return SeedPlan(me=me, grace_s=1.0, seeders=2, cap_s=5.0)


def due_at(me: str, now: float, leader: bool = False) -> list[str]:
    plan = plan_of(me)
    plan.due(10.0, ["n20"], MEMBERS, alone=False, leader=leader)  # first seen missing at 10 s
    return plan.due(10.0 + now, ["n20"], MEMBERS, alone=False, leader=leader)[0]


def test_no_member_seeds_a_new_node_within_the_grace() -> None:
    for me in MEMBERS[:-1]:
        plan = plan_of(me)
        due, wait = plan.due(10.0, ["n20"], MEMBERS, alone=False, leader=False)
        assert due == [] and 1.0 <= wait <= 5.0
        assert plan.due(10.9, ["n20"], MEMBERS, alone=False, leader=False)[0] == []


def test_a_few_members_seed_after_the_grace_more_each_step_everyone_by_the_cap() -> None:
    seeding = [sum(1 for me in MEMBERS[:-1] if due_at(me, t)) for t in (1.0, 2.0, 3.0, 4.9, 5.0)]
    assert seeding == [2, 4, 6, 8, 19]


def test_every_member_computes_the_same_order_and_other_nodes_get_other_seeders() -> None:
    first = {me for me in MEMBERS[:-1] if due_at(me, 1.0)}
    assert len(first) == 2
    others = set()
    for new in ("n21", "n22", "n23", "n24"):
        members = [*MEMBERS[:-1], new]
        others |= {
            me
            for me in MEMBERS[:-1]
            if plan_of(me).due(0.0, [new], members, alone=False, leader=False)[1] == 1.0
        }
    assert others - first  # not always the same two members


def test_the_leader_seeds_after_the_grace_whatever_its_rank() -> None:
    late = [me for me in MEMBERS[:-1] if not due_at(me, 1.0)]
    assert all(due_at(me, 1.0, leader=True) == ["n20"] for me in late)


def test_a_member_whose_gossip_knows_no_one_seeds_at_once() -> None:
    plan = plan_of("n20")
    due, wait = plan.due(0.0, ["n1", "n2"], MEMBERS, alone=True, leader=False)
    assert due == ["n1", "n2"] and wait == math.inf


def test_a_node_found_is_forgotten_and_waits_its_grace_again_when_missing_again() -> None:
    plan = plan_of("n1")
    plan.due(0.0, ["n20"], MEMBERS, alone=False, leader=True)
    assert plan.due(0.5, [], MEMBERS, alone=False, leader=True) == ([], math.inf)
    assert plan.first_missing == {}
    due, wait = plan.due(2.0, ["n20"], MEMBERS, alone=False, leader=True)
    assert due == [] and wait == 1.0


def test_the_grace_is_a_few_gossip_rounds_of_the_preset() -> None:
    for preset in (GossipConfig.fast_lan, GossipConfig.lan, GossipConfig.wan, GossipConfig.local):
        interval = preset().gossip_interval_s
        plan = SeedPlan.for_gossip("n1", interval)
        assert plan.grace_s == SEED_GRACE_ROUNDS * interval <= plan.cap_s
