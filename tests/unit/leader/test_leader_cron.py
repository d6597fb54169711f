"""The cron controller (leader/cron.py) on states built by the real FSM: ticks, policies, leader changes."""

import random
from datetime import UTC, datetime

import msgpack
import pytest

from p2porch.errors import ConfigError
from p2porch.leader.cron import MISSED, RUN, SKIP, plan_cron
from p2porch.leader.scheduling import plan_round
from p2porch.model import Node, ServiceSpec
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE, ClusterState
from p2porch.scheduler import Orchestrator

T0 = datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC).timestamp()  # a Thursday, midnight UTC


def run(state: ClusterState, command: bytes) -> ClusterState:
    new, result, _ = apply(state, command)
    assert result["ok"], result
    return new


def cluster_with_cron(schedule: object, created: float = T0 + 5.0, **spec: object) -> ClusterState:
    state = run(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c").encode())
    for i in (1, 2):
        node = Node(f"id{i}", f"n{i}", f"10.0.0.{i}", 7947, 7946)
        state = run(state, C.AddNode(at=1.0, node=node).encode())
    full = ServiceSpec.from_dict(
        {"name": "tick", "image": "busybox", "mode": "replicated-job", "schedule": schedule, **spec}
    )
    return run(state, C.CreateService(at=created, service_id="s1", spec=full).encode())


def commit(state: ClusterState, now: float) -> tuple[ClusterState, list]:
    plan = plan_cron(state, now)
    for d in plan.decisions:
        state = run(state, d.command.encode())
    return state, plan.decisions


def test_nothing_before_the_first_tick_and_the_wake_up_is_the_tick() -> None:
    state = cluster_with_cron("* * * * *")
    plan = plan_cron(state, T0 + 30.0)
    assert plan.decisions == [] and plan.wake_at == T0 + 60.0


def test_a_tick_runs_once_and_planning_again_never_doubles_it() -> None:
    state = cluster_with_cron("* * * * *")
    state, decisions = commit(state, T0 + 60.2)
    (d,) = decisions
    assert (d.action, d.tick, d.missed) == (RUN, T0 + 60.0, 0)
    job = state.services["s1"].job
    assert (job.iteration, job.cron_last_tick) == (1, T0 + 60.0)
    for later in (T0 + 60.3, T0 + 90.0, T0 + 119.9):
        assert plan_cron(state, later).decisions == []
    assert plan_cron(state, T0 + 90.0).wake_at == T0 + 120.0


def test_a_leader_that_dies_before_its_commit_leaves_the_tick_to_its_successor() -> None:
    state = cluster_with_cron("* * * * *")
    lost = plan_cron(state, T0 + 60.1)  # decided, never committed (the leader died)
    assert [d.action for d in lost.decisions] == [RUN]
    state, decisions = commit(state, T0 + 68.0)  # the next leader, 8 s later
    assert [(d.action, d.tick) for d in decisions] == [(RUN, T0 + 60.0)]
    assert state.services["s1"].job_iteration == 1


def test_the_stale_leaders_write_loses_against_the_committed_tick() -> None:
    state = cluster_with_cron("* * * * *")
    plan_a = plan_cron(state, T0 + 60.1)
    state, _ = commit(state, T0 + 60.2)
    (d,) = plan_a.decisions
    _, result, _ = apply(state, d.command.encode())
    assert not result["ok"] and result["error"] == "ConflictError"


def test_a_long_gap_runs_the_latest_tick_once_and_counts_the_others_missed() -> None:
    state = cluster_with_cron("* * * * *")
    state, decisions = commit(state, T0 + 5 * 60 + 10)
    (d,) = decisions
    assert (d.action, d.tick, d.missed) == (RUN, T0 + 300.0, 4)
    job = state.services["s1"].job
    assert (job.iteration, job.cron_missed) == (1, 4)


def test_a_tick_past_the_starting_deadline_is_missed_not_run() -> None:
    state = cluster_with_cron({"cron": "* * * * *", "starting_deadline": "20s"})
    state, decisions = commit(state, T0 + 60 + 25)
    assert [d.action for d in decisions] == [MISSED]
    job = state.services["s1"].job
    assert job.iteration == 0 and job.cron_missed == 1
    state, decisions = commit(state, T0 + 120 + 5)  # within the deadline: runs
    assert [d.action for d in decisions] == [RUN]


def _with_running_execution(policy: str) -> ClusterState:
    state = cluster_with_cron({"cron": "* * * * *", "concurrency": policy}, replicas=1)
    state, _ = commit(state, T0 + 60.0)
    plan = plan_round(state, T0 + 60.5, Orchestrator(random.Random(1)))
    state = run(
        state, C.PutTasks(at=T0 + 60.5, items=tuple(plan.items), expected_version=state.version).encode()
    )
    (task,) = state.tasks.values()
    assert task.job_iteration == 1 and task.desired_state == "running"
    return state


def test_forbid_skips_a_tick_while_the_execution_runs_allow_and_replace_start_another() -> None:
    state = _with_running_execution("forbid")
    state, decisions = commit(state, T0 + 120.0)
    assert [d.action for d in decisions] == [SKIP]
    assert state.services["s1"].job.cron_skipped == 1 and state.services["s1"].job_iteration == 1
    for policy in ("allow", "replace"):
        state = _with_running_execution(policy)
        state, decisions = commit(state, T0 + 120.0)
        assert [d.action for d in decisions] == [RUN]
        assert state.services["s1"].job_iteration == 2
        plan = plan_round(state, T0 + 120.5, Orchestrator(random.Random(1)))
        stopped = [i for i in plan.items if isinstance(i, C.TaskPut) and i.task.desired_state == "shutdown"]
        assert len(stopped) == (1 if policy == "replace" else 0)


def test_ticks_follow_the_schedule_time_zone() -> None:
    state = cluster_with_cron({"cron": "0 9 * * *", "timezone": "Europe/Paris"})
    assert plan_cron(state, T0 + 60).wake_at == T0 + 8 * 3600  # 09:00 in Paris is 08:00 UTC in winter


def test_job_status_round_trips_through_the_codec_and_garbage_is_refused_naming_the_field() -> None:
    state = cluster_with_cron("* * * * *")
    state, (d,) = commit(state, T0 + 60.5)
    assert C.decode_command(d.command.encode()) == d.command
    assert state.services["s1"].to_dict()["job"]["cron_last_tick"] == T0 + 60.0
    body = {**d.command.body(), "at": T0 + 61, "job": {"iteration": -1}}
    raw = msgpack.packb({"t": "update_service", "v": 1, "b": body})
    with pytest.raises(ConfigError) as info:
        C.decode_command(raw)
    assert info.value.field == "job.iteration"
