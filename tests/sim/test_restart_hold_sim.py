"""A daemon restart on the deterministic cluster simulator (p2porch.testing.cluster_sim).

A daemon stopped with SIGTERM announces in gossip that it restarts (``ClusterSim.stop_daemon``); the
simulated leader runs the real hold (``leader/restart_hold.RestartHolds``): its node stays ready with its
tasks, takes none, and is released when gossip sees it back at a newer incarnation, or goes down when the
announced deadline passes. Mirrors tests/integration/test_daemon_restart.py at 20 nodes. Reproduce a
failure with P2PORCH_SIM_SEED=<seed printed in the message>.
"""

import os

from p2porch.config import load_config
from p2porch.testing.cluster_sim import ClusterSim, settle

SEED = int(os.environ.get("P2PORCH_SIM_SEED", "4711"))
AWAY_S = 6.0  # gossip calls a stopped daemon dead within ~2-3 s (fast_lan)


def cluster(nodes, **overrides):
    sim = ClusterSim(SEED, config=load_config(overrides=overrides) if overrides else None)
    sim.add_nodes(nodes)
    return sim


def task_places(sim, service):
    """task id -> node name of every task that should run (what must not move)."""
    return {t.task_id: sim.name_of(t.node_id) for t in sim.tasks(service)}


def held(sim, name):
    record = sim.recorded(name)
    return record.status == "ready" and record.restart_until > 0


def released(sim, name):
    record = sim.recorded(name)
    return record.status == "ready" and record.restart_until == 0 and sim.node(name).running


def test_a_rolling_restart_of_every_daemon_of_20_nodes_moves_no_task():
    """Each daemon in turn (the leader's too, where it sits): SIGTERM, away 6 s (gossip calls it dead),
    started again; held meanwhile, released once back. Every task stays on its node, none is replaced
    and none fails; the engines run exactly what the state says throughout."""
    sim = cluster(20)
    sim.create_service("web", replicas=40)
    sim.create_service("api", replicas=20)
    settle(sim, ["web", "api"], within_s=30)
    before = {s: task_places(sim, s) for s in ("web", "api")}
    leaders = set()
    for name in sorted(sim.nodes, key=lambda n: sim.node(n).index):
        leaders.add(sim.leader_name())
        sim.stop_daemon(name)
        sim.wait_for(lambda n=name: held(sim, n), within_s=5, what=f"{name} held")
        stopped_at = sim.t
        sim.run_until(stopped_at + AWAY_S)
        assert any(
            sim.gossip_states(sim.node(other)).get(sim.node(name).node_id) == "dead"
            for other in sim.nodes
            if sim.node(other).running
        ), sim.timeline()
        assert held(sim, name), sim.timeline()  # not down, though gossip called it dead
        sim.restart(name)
        sim.wait_for(lambda n=name: released(sim, n), within_s=10, what=f"{name} released")
        for service, places in before.items():
            assert task_places(sim, service) == places, f"a task of {service} moved\n{sim.timeline()}"
    assert len(leaders) > 1  # leadership moved with the leader's restart
    for service, places in before.items():
        assert task_places(sim, service) == places
        assert len(sim.running(service)) == len(places)
        assert len(sim.tasks(service, desired=None)) == len(places)  # none replaced, none failed
    assert sim.containers("web") == sim.placement("web") and sim.containers("api") == sim.placement("api")
    assert all(sim.recorded(n).status == "ready" for n in sim.nodes)


def test_a_crash_during_a_hold_is_a_node_failure_and_the_hold_survives_the_leader():
    """A replica's daemon restarts; meanwhile the leader is killed -9: a new leader keeps n3's hold (it is in
    the committed state) and replaces the crashed leader's tasks, on nodes other than the held one;
    the restarted node, back, is released with its tasks."""
    sim = cluster(5)
    sim.create_service("web", replicas=10)
    settle(sim, ["web"])
    # a replica's daemon (a voter's as well would leave 1 of 3 voters: no quorum, no new leader)
    restarting = next(
        n for n in sorted(sim.nodes) if sim.recorded(n).role == "replica" and n in sim.placement("web")
    )
    kept = {t for t, node in task_places(sim, "web").items() if node == restarting}
    sim.stop_daemon(restarting)
    sim.wait_for(lambda: held(sim, restarting), within_s=5, what="held")
    crashed = sim.leader_name()
    lost = {t for t, node in task_places(sim, "web").items() if node == crashed}
    assert crashed is not None and lost
    sim.kill(crashed)
    sim.wait_for(lambda: sim.leader_name() not in (None, crashed), within_s=5, what="a new leader")
    sim.wait_for(
        lambda: len(sim.running("web")) == 10 and crashed not in sim.placement("web"),
        within_s=15,
        what="the crashed leader's tasks run elsewhere",
    )
    assert sim.recorded(crashed).status == "down"
    assert held(sim, restarting), sim.timeline()
    places = task_places(sim, "web")
    assert {t for t, node in places.items() if node == restarting} == kept  # its tasks stayed
    assert not lost & set(places)  # the crashed node's were replaced ...
    replaced = [t for t in sim.running("web") if t.task_id not in kept and places[t.task_id] == restarting]
    assert replaced == []  # ... not on the held node
    sim.restart(restarting)
    sim.wait_for(lambda: released(sim, restarting), within_s=10, what="released by the new leader")
    assert {t for t, node in task_places(sim, "web").items() if node == restarting} == kept


def test_a_restart_that_never_comes_back_is_down_at_the_announced_deadline_and_its_tasks_move():
    """``restart_grace_s = 8``: held ready (restarting) until the deadline it announced, then down and its
    tasks replaced on the others."""
    sim = cluster(3, **{"scheduler.restart_grace_s": 8})
    sim.create_service("web", replicas=6)
    settle(sim, ["web"])
    victim = next(n for n in sorted(sim.nodes) if n != sim.leader_name() and n in sim.placement("web"))
    stopped_at = sim.now
    sim.stop_daemon(victim)
    sim.wait_for(lambda: held(sim, victim), within_s=5, what="held")
    until = sim.recorded(victim).restart_until
    assert stopped_at + 8 <= until <= stopped_at + 9
    sim.holds_for(lambda: held(sim, victim), seconds=until - sim.now - 0.1, what="held until the deadline")
    sim.wait_for(lambda: sim.recorded(victim).status == "down", within_s=1, what="down at the deadline")
    assert until <= sim.recorded(victim).status_at <= until + 0.2, sim.timeline()
    sim.wait_for(
        lambda: len(sim.running("web")) == 6 and victim not in sim.placement("web"),
        within_s=10,
        what="its tasks run elsewhere",
    )


def test_without_the_announcement_a_stopped_daemon_is_a_node_failure():
    """``restart_grace_s = 0``: a SIGTERM announces nothing; gossip's verdict moves its tasks at once."""
    sim = cluster(3, **{"scheduler.restart_grace_s": 0})
    sim.create_service("web", replicas=6)
    settle(sim, ["web"])
    victim = next(n for n in sorted(sim.nodes) if n != sim.leader_name() and n in sim.placement("web"))
    sim.stop_daemon(victim)
    took = sim.wait_for(lambda: sim.recorded(victim).status == "down", within_s=8, what="down")
    assert sim.recorded(victim).restart_until == 0
    assert took < 5
