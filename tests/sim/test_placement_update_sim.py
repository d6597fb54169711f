"""Placement changes of a running service on the deterministic cluster simulator, as Swarm rolls them:
constraints no node meets (stop-first: the old task stops, its replacement waits for a node) and a new
placement preference (every task rolled, the replacements placed by it). Reproduce with
P2PORCH_SIM_SEED=<seed>."""

import os

from p2porch.config import load_config
from p2porch.model import DesiredState, TaskState
from p2porch.testing.cluster_sim import ClusterSim, settle
from p2porch.testing.fake_engine import Behaviour

SEED = int(os.environ.get("P2PORCH_SIM_SEED", "4101"))


def test_constraints_no_node_meets_stop_the_old_task_and_leave_its_replacement_pending():
    """Swarm's default update order, stop-first: the first slot's task is shut down and its replacement
    stays pending with the reason; parallelism 1 holds the other slot's task (its update in flight)."""
    sim = ClusterSim(SEED, config=load_config())
    sim.add_nodes(3)
    sim.create_service("web", replicas=2, update={"parallelism": 1, "monitor_s": 1.0})
    settle(sim, ["web"])
    sim.update_service("web", constraints=["node.labels.ssd==true"])

    def pending_one() -> bool:
        tasks = sim.tasks("web")
        return [t.state for t in tasks].count(TaskState.PENDING) == 1 and len(sim.running("web")) == 1

    sim.wait_for(pending_one, within_s=30, what="one slot stopped, its replacement pending")
    sim.holds_for(pending_one, seconds=20, what="parallelism 1 holds the other slot")
    (pending,) = [t for t in sim.tasks("web") if t.state == TaskState.PENDING]
    assert pending.node_id is None
    assert pending.message == "3 nodes: 3 constraint node.labels.ssd==true", pending.message
    stopped = [t for t in sim.tasks("web", desired=None) if t.desired_state == DesiredState.SHUTDOWN]
    assert [t.message for t in stopped] == ["constraints no longer met"]
    assert sum(sim.containers("web").values()) == 1


def test_constraints_no_node_meets_keep_the_old_task_start_first():
    """start-first: the replacement never starts, so the old task keeps serving (as Swarm's)."""
    sim = ClusterSim(SEED, config=load_config())
    sim.add_nodes(2)
    sim.create_service("web", replicas=2, update={"parallelism": 0, "order": "start-first"})
    settle(sim, ["web"])
    sim.update_service("web", constraints=["node.labels.ssd==true"])
    sim.wait_for(
        lambda: [t.state for t in sim.tasks("web")].count(TaskState.PENDING) == 2,
        within_s=30,
        what="both replacements pending",
    )
    sim.holds_for(lambda: len(sim.running("web")) == 2, seconds=20, what="the old tasks keep serving")


def test_a_new_placement_preference_rolls_the_tasks_and_spreads_them():
    """Two nodes of zone a hold all four tasks; two nodes of zone b join (no rebalance). Spreading over
    the zone label is an update: every task is replaced, two at a time, onto two per zone."""
    sim = ClusterSim(SEED, config=load_config())
    for name in ("n1", "n2"):
        sim.add_node(name, labels={"zone": "a"})
    sim.create_service("web", replicas=4, update={"parallelism": 2, "monitor_s": 1.0})
    settle(sim, ["web"])
    for name in ("n3", "n4"):
        sim.add_node(name, labels={"zone": "b"})
    sim.wait_for(lambda: sim.gossip.converged(), within_s=30, what="gossip converges")
    sim.run_for(10)
    assert set(sim.placement("web")) == {"n1", "n2"}
    sim.update_service("web", placement_preferences=["spread=node.labels.zone"])
    current = sim.service("web").spec.template_hash()

    def spread() -> bool:
        running = sim.running("web")
        zones = [sim.recorded(sim.name_of(t.node_id) or "").labels.get("zone") for t in running]
        return (
            len(running) == 4
            and {t.template_hash for t in running} == {current}
            and sorted(zones) == ["a", "a", "b", "b"]
        )

    sim.wait_for(spread, within_s=60, what="two tasks per zone after the update")
    assert sim.service("web").rollout is not None
    sim.wait_for(
        lambda: sim.service("web").rollout.status()["state"] == "completed",  # type: ignore[union-attr]
        within_s=30,
        what="the update completes",
    )


def test_an_old_task_under_a_paused_update_restarts_by_its_own_policy():
    """The update to app:2 (which crashes) also sets a 60 s restart delay and pauses on its first
    failure; the old task (app:1, 1 s delay) that then crashes is replaced after its own 1 s, as
    swarmkit's restart supervisor reads the task's spec (before: after the new spec's 60 s)."""
    sim = ClusterSim(SEED, config=load_config())
    sim.add_nodes(2)
    sim.behave("app:2", Behaviour(exit_code=1, exit_after_s=0.3))
    restart = {"delay": "1s", "max_delay": "1s"}
    sim.create_service("web", replicas=2, restart=restart, update={"parallelism": 1, "monitor_s": 5.0})
    settle(sim, ["web"])
    sim.update_service("web", image="app:2", restart={"delay": "60s", "max_delay": "60s"})
    sim.wait_for(lambda: sim.service("web").update_paused, within_s=60, what="the update paused")
    old_hash = sim.service("web").previous_spec.template_hash()  # type: ignore[union-attr]
    (old,) = [t for t in sim.running("web") if t.template_hash == old_hash]
    sim.crash_task(old)
    crashed_at = sim.t
    sim.wait_for(
        lambda: any(t.slot == old.slot and t.task_id != old.task_id for t in sim.tasks("web")),
        within_s=20,
        what="the old task's slot restarted",
    )
    assert sim.t - crashed_at < 5.0, sim.t - crashed_at
