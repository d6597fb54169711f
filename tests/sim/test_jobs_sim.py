"""Jobs and cron jobs on the deterministic cluster simulator: the real leader round, cron controller,
FSM and agent planner, in simulated time (reproduce a failure with P2PORCH_SIM_SEED=<seed>)."""

import os

from p2porch.config import load_config
from p2porch.testing.cluster_sim import ClusterSim
from p2porch.testing.fake_engine import Behaviour

SEED = int(os.environ.get("P2PORCH_SIM_SEED", "2107"))


def cluster(nodes: int) -> ClusterSim:
    sim = ClusterSim(SEED, config=load_config())
    sim.add_nodes(nodes)
    return sim


def completions(sim: ClusterSim, service: str) -> list[int]:
    return sorted(t.slot for t in sim.tasks(service, desired=None) if t.state == "complete")


def test_replicated_job_completes_six_times_never_more_than_two_at_once_across_a_node_death():
    sim = cluster(4)
    sim.behave("batch:1", Behaviour(exit_code=0, exit_after_s=3.0))
    sim.create_service("batch", image="batch:1", mode="replicated-job", replicas=6, max_concurrent=2)
    peak = 0

    def observe(done: int) -> bool:
        nonlocal peak
        peak = max(peak, sum(sim.containers("batch").values()))
        return len(completions(sim, "batch")) >= done

    def elsewhere() -> list[str]:
        names = (sim.name_of(t.node_id) for t in sim.running("batch"))
        return [n for n in names if n is not None and n != sim.leader_name()]

    sim.wait_for(lambda: observe(2) and bool(elsewhere()), within_s=30, what="two completions, one running")
    busy = elsewhere()[0]
    sim.kill(busy)  # one of the running tasks dies with its node and must run again elsewhere
    sim.wait_for(lambda: observe(6), within_s=90, what="six completions")
    sim.holds_for(lambda: observe(7) is False, seconds=15, what="no seventh completion")
    assert completions(sim, "batch") == [1, 2, 3, 4, 5, 6], sim.timeline()
    assert 1 <= peak <= 2, f"{peak} job containers ran at once\n{sim.timeline()}"
    assert sim.tasks("batch") == []  # nothing left desired running


def test_failed_job_task_is_retried_up_to_max_attempts_then_reported_failed():
    sim = cluster(3)
    sim.behave("flaky:1", Behaviour(exit_code=3, exit_after_s=1.0))
    sim.create_service(
        "flaky",
        image="flaky:1",
        mode="replicated-job",
        replicas=1,
        restart={"condition": "on-failure", "max_attempts": 2, "delay": "1s"},
    )
    sim.wait_for(
        lambda: sum(1 for t in sim.tasks("flaky", desired=None) if t.state == "failed") == 3,
        within_s=60,
        what="the first run and two retries fail",
    )
    sim.holds_for(
        lambda: sum(1 for t in sim.tasks("flaky", desired=None) if t.state != "failed") == 0,
        seconds=20,
        what="no fourth attempt",
    )


def test_global_job_runs_once_per_node_and_on_a_node_that_joins_later():
    sim = cluster(3)
    sim.behave("once:1", Behaviour(exit_code=0, exit_after_s=1.0))
    sim.create_service("once", image="once:1", mode="global-job")

    def nodes_done() -> list[str]:
        return sorted(
            sim.name_of(t.node_id) or "?" for t in sim.tasks("once", desired=None) if t.state == "complete"
        )

    sim.wait_for(lambda: nodes_done() == ["n1", "n2", "n3"], within_s=30, what="once on each node")
    sim.holds_for(lambda: len(nodes_done()) == 3, seconds=10, what="never twice on a node")
    sim.add_nodes(1)
    sim.behave("once:1", Behaviour(exit_code=0, exit_after_s=1.0))  # the new engine too
    sim.wait_for(lambda: nodes_done() == ["n1", "n2", "n3", "n4"], within_s=30, what="the new node runs it")


def test_update_force_reruns_a_finished_job():
    sim = cluster(3)
    sim.behave("batch:1", Behaviour(exit_code=0, exit_after_s=1.0))
    sim.create_service("batch", image="batch:1", mode="replicated-job", replicas=2)
    sim.wait_for(lambda: len(completions(sim, "batch")) == 2, within_s=30, what="first execution")
    sim.update_service("batch", force=True)

    def second() -> list[int]:
        return sorted(
            t.slot for t in sim.tasks("batch", desired=None) if t.state == "complete" and t.job_iteration == 2
        )

    sim.wait_for(lambda: second() == [1, 2], within_s=30, what="second execution")


def test_cron_job_runs_every_tick_once_across_leader_kills():
    """Every minute for five minutes; the leader is killed just before two ticks: each tick runs exactly
    once (execution numbers follow the ticks one for one), late by at most the election time."""
    sim = cluster(5)
    sim.behave("tick:1", Behaviour(exit_code=0, exit_after_s=5.0))
    sim.create_service("tick", image="tick:1", mode="replicated-job", replicas=1, schedule="* * * * *")
    runs: dict[int, float] = {}  # execution -> its tick
    started: dict[int, float] = {}  # execution -> when its task was created

    def observe() -> bool:
        service = sim.service("tick")
        iteration = service.job_iteration
        if iteration and iteration not in runs:
            runs[iteration] = service.job.cron_last_tick
        for t in sim.tasks("tick", desired=None):
            started.setdefault(t.job_iteration, t.created_at)
        return False

    first_tick = (int(sim.now // 60) + 1) * 60
    for minute in range(5):
        tick = first_tick + 60 * minute
        sim.run_until(sim.t + (tick - 1.0 - sim.now), observe)
        if minute in (1, 3):
            sim.kill(sim.leader_name())
        sim.run_until(sim.t + 30.0, observe)
    assert sorted(runs) == [1, 2, 3, 4, 5], sim.timeline()
    assert [runs[i] - first_tick for i in sorted(runs)] == [0, 60, 120, 180, 240]
    for iteration, tick in runs.items():
        assert 0 <= started[iteration] - tick < 15, (iteration, started[iteration] - tick, sim.timeline())
    job = sim.service("tick").job
    assert job.cron_missed == 0 and job.cron_skipped == 0
