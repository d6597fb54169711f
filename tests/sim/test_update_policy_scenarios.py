"""Update/rollback policy on the deterministic cluster simulator: the real leader round, FSM, API
operations and agent planner in simulated time (reproduce with P2PORCH_SIM_SEED=<seed>)."""

import os

from p2porch.config import load_config
from p2porch.testing.cluster_sim import ClusterSim, settle
from p2porch.testing.fake_engine import Behaviour

SEED = int(os.environ.get("P2PORCH_SIM_SEED", "2207"))


def cluster(replicas: int, **spec):
    sim = ClusterSim(SEED, config=load_config())
    sim.add_nodes(3)
    sim.behave("app:2", Behaviour(exit_code=1, exit_after_s=0.3))
    sim.create_service("web", replicas=replicas, **spec)
    settle(sim, ["web"])
    return sim


def rollout(sim):
    record = sim.service("web").rollout
    return {} if record is None else {**record.status(), "policy": record.policy}


def test_max_failure_ratio_tolerates_failures_then_rolls_back_with_rollback_config():
    update = {"parallelism": 1, "monitor_s": 2.0, "failure_action": "rollback", "max_failure_ratio": 0.5}
    sim = cluster(4, update=update, rollback={"parallelism": 0, "order": "start-first", "monitor_s": 1.0})
    old_hash = {t.template_hash for t in sim.running("web")}
    sim.update_service("web", image="app:2")
    sim.wait_for(
        lambda: rollout(sim).get("state") == "rollback_started", within_s=60, what="automatic rollback"
    )
    record = rollout(sim)
    # 1 and 2 failed slots of 4 are within 0.5; the third goes beyond it
    assert record["reason"].startswith("update failed: 3 of 4 tasks failed within the 2s monitor"), record
    assert record["policy"].parallelism == 0 and record["policy"].order == "start-first"
    sim.wait_for(
        lambda: (
            rollout(sim).get("state") == "rollback_completed"
            and {t.template_hash for t in sim.running("web")} == old_hash
            and len(sim.running("web")) == 4
        ),
        within_s=30,
        what="rollback completed on every slot",
    )
    assert sim.service("web").spec.image == "app:1"


def test_a_successful_update_completes_and_a_later_crash_loop_is_only_restarted():
    update = {"parallelism": 2, "monitor_s": 1.0, "failure_action": "rollback"}
    sim = cluster(3, update=update)
    sim.behave("app:3", Behaviour())
    sim.update_service("web", image="app:3")
    sim.wait_for(lambda: rollout(sim).get("state") == "completed", within_s=30, what="update completed")
    assert {t.template_hash for t in sim.running("web")} == {sim.tasks("web")[0].template_hash}
    # after completion a crashing task is the restart policy's business: no rollback, no pause
    sim.crash_task(sim.running("web")[0])
    sim.holds_for(
        lambda: sim.service("web").spec.image == "app:3" and not sim.service("web").update_paused,
        seconds=15,
        what="a completed update stays",
    )
    settle(sim, ["web"])


def test_manual_rollback_uses_the_rollback_config_of_the_spec_it_leaves():
    sim = cluster(4, update={"parallelism": 1, "monitor_s": 1.0, "failure_action": "pause"})
    sim.update_service("web", image="app:2", rollback={"parallelism": 4, "monitor_s": 1.0})
    sim.wait_for(lambda: rollout(sim).get("state") == "paused", within_s=30, what="update paused")
    assert "1 of 4 tasks failed" in rollout(sim)["reason"]
    sim.rollback("web")
    assert rollout(sim)["state"] == "rollback_started" and rollout(sim)["policy"].parallelism == 4
    sim.wait_for(lambda: rollout(sim).get("state") == "rollback_completed", within_s=30, what="rollback done")
    assert len(sim.running("web")) == 4 and sim.service("web").spec.image == "app:1"


def test_a_refused_rollback_pauses_the_service_and_the_rest_is_still_placed():
    """The rollback point publishes a port another service was given since: the FSM refuses the
    rollback (``--publish``), and the simulated leader does what the real loop does
    (``leader/bookkeeping.py``): it pauses the failing service with the refusal in its reason and goes
    on to the round's placements, instead of asking for the same rollback at every round."""
    update = {"parallelism": 1, "monitor_s": 1.0, "failure_action": "rollback"}
    sim = cluster(2, update=update, publish=["30000:80"])  # a chosen port in the dynamic range
    sim.update_service("web", image="app:2", publish=["9081:80"])
    sim.create_service("api", publish=["80"])  # assigned 30000: the port web would roll back to
    assert sim.service("api").assigned_ports == (("tcp", 80, 30000),)
    sim.wait_for(lambda: sim.service("web").update_paused, within_s=60, what="web paused")
    reason = rollout(sim)["reason"]
    assert reason.startswith("update failed: ") and "(not rolled back: " in reason, reason
    assert "port '30000' (tcp) is already in use by service 'api'" in reason, reason
    assert sim.service("web").spec.image == "app:2"  # not rolled back
    sim.create_service("other", replicas=2)
    sim.wait_for(lambda: len(sim.running("other")) == 2, within_s=30, what="an unrelated service placed")
