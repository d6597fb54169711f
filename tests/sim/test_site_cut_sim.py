"""A whole site cut off and healed on the deterministic cluster simulator (issue 20).

Six nodes in two regions; ``web`` keeps a lost site's tasks (``on_site_loss: keep``, the default),
``api`` has them replaced. The site with fewer voters is isolated: the majority marks it down,
replaces ``api``'s task there and leaves ``web``'s alone while the cut site's engines keep running
both; after the heal exactly the desired containers run. Mirrors
tests/integration/test_multisite_cut.py in simulated time (P2PORCH_SIM_SEED reproduces a run).
"""

from __future__ import annotations

import os

from p2porch.config import load_config
from p2porch.testing.cluster_sim import ClusterSim, settle

SEED = int(os.environ.get("P2PORCH_SIM_SEED", "2020"))
SPREAD = {"replicas": 2, "placement_preferences": ["spread=node.labels.region"]}


def test_a_cut_site_keeps_or_replaces_its_tasks_per_service_and_the_heal_leaves_the_desired_ones():
    sim = ClusterSim(SEED, config=load_config())
    for i in range(1, 7):
        sim.add_node(f"n{i}", labels={"region": "s1" if i <= 3 else "s2"})
    sim.wait_for(lambda: sim.gossip.converged(), within_s=30, what="gossip converges")
    sim.create_service("web", **SPREAD)
    sim.create_service("api", on_site_loss="replace", **SPREAD)
    settle(sim, ["web", "api"])
    sites = {"s1": ["n1", "n2", "n3"], "s2": ["n4", "n5", "n6"]}
    voters = set(sim.voters())
    cut = min(sites, key=lambda s: (len(voters & set(sites[s])), s))
    minority = sites[cut]
    web_before = {t.task_id for t in sim.running("web")}
    web_out = sim.containers("web")
    assert any(n in minority for n in sim.placement("web")) and any(
        n in minority for n in sim.placement("api")
    )

    for name in minority:
        sim.isolate(name)
    sim.wait_for(
        lambda: all(sim.recorded(n).status == "down" for n in minority), within_s=15, what="site down"
    )
    sim.wait_for(
        lambda: len(sim.running("api")) == 2 and not set(sim.placement("api")) & set(minority),
        within_s=15,
        what="api replaced on the majority's site",
    )
    grace = load_config().scheduler.site_grace_s
    sim.run_for(grace + 5.0)  # past any site grace: the keep decision is final, not pending
    assert {t.task_id for t in sim.running("web")} == web_before, sim.timeline()
    assert sim.containers("web") == web_out  # the cut site's web container still runs
    assert any(n in minority for n in sim.containers("api"))  # and so does its superseded api one

    sim.heal()
    sim.wait_for(
        lambda: not set(sim.containers("api")) & set(minority) and sum(sim.containers("api").values()) == 2,
        within_s=20,
        what="the superseded api container stopped",
    )
    settle(sim, ["web", "api"])
    assert sim.containers("web") == web_out and {t.task_id for t in sim.running("web")} == web_before
    assert sim.containers("api") == sim.placement("api")
