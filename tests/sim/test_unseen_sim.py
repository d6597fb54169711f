"""The leader's never-seen rule in the cluster simulator (leader/unseen.py through testing/sim_leader.py).

A node admitted ready whose gossip never starts is marked down once the leader's gossip has not seen it
for ``UNSEEN_DOWN_S``; one whose gossip starts late, within the grace, stays ready; one that starts after
the grace was marked down and gossip makes it ready again. Reproduce with P2PORCH_SIM_SEED.
"""

from __future__ import annotations

import os

import pytest

from p2porch.leader.unseen import UNSEEN_DOWN_S
from p2porch.model import NodeStatus
from p2porch.testing.cluster_sim import ClusterSim

SEED = int(os.environ.get("P2PORCH_SIM_SEED", "4011"))


def cluster() -> ClusterSim:
    sim = ClusterSim(SEED)
    sim.add_nodes(3)
    return sim


def status(sim: ClusterSim, name: str) -> str:
    return sim.recorded(name).status


def test_a_node_that_never_gossips_is_marked_down_after_the_grace():
    sim = cluster()
    sim.add_node("n4", gossip_after_s=None)
    sim.holds_for(lambda: status(sim, "n4") == NodeStatus.READY, seconds=UNSEEN_DOWN_S - 1.0, what="n4 ready")
    took = sim.wait_for(lambda: status(sim, "n4") == NodeStatus.DOWN, within_s=3.0, what="n4 marked down")
    assert UNSEEN_DOWN_S - 1.0 + took >= UNSEEN_DOWN_S  # not before the grace
    assert any(what == "n4 is down (never seen by gossip)" for _, what in sim.log), sim.timeline()
    sim.holds_for(lambda: status(sim, "n4") == NodeStatus.DOWN, seconds=30.0, what="n4 stays down")


def test_a_node_that_gossips_at_20s_is_not_marked_down():
    sim = cluster()
    sim.add_node("n5", gossip_after_s=20.0)
    sim.holds_for(lambda: status(sim, "n5") == NodeStatus.READY, seconds=90.0, what="n5 ready")
    leader = sim.node(sim.leader_name() or "")
    assert sim.gossip_states(leader)[sim.node("n5").node_id] == "alive"
    assert not any(what.startswith("n5 is down") for _, what in sim.log), sim.timeline()


@pytest.mark.parametrize("late_s", [UNSEEN_DOWN_S + 10.0])
def test_a_node_that_gossips_after_the_grace_is_down_then_ready_again(late_s):
    sim = cluster()
    sim.add_node("n6", gossip_after_s=late_s)
    sim.wait_for(lambda: status(sim, "n6") == NodeStatus.DOWN, within_s=UNSEEN_DOWN_S + 2.0, what="n6 down")
    sim.wait_for(lambda: status(sim, "n6") == NodeStatus.READY, within_s=late_s, what="n6 ready again")
    assert any(what == "n6 is ready (gossip)" for _, what in sim.log), sim.timeline()
