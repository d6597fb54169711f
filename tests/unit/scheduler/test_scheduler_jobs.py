"""The job controller (scheduler/jobs.py) through Orchestrator.reconcile: completions, concurrency."""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2porch.errors import ConfigError
from p2porch.model import Node, RestartPolicy, Service, ServiceSpec, Task
from p2porch.model.records import JobStatus
from p2porch.scheduler import Orchestrator
from p2porch.scheduler.jobs import job_history_keep, job_progress

NODES = [Node("n1", "n1"), Node("n2", "n2"), Node("n3", "n3")]


def job(replicas: int = 6, max_concurrent: int = 2, **kw: object) -> ServiceSpec:
    return ServiceSpec(
        name="batch",
        image="busybox:1",
        mode="replicated-job",
        replicas=replicas,
        max_concurrent=max_concurrent,
        **kw,
    )  # type: ignore[arg-type]


def task(slot: int, state: str = "running", node: str | None = "n1", it: int = 1, **kw: object) -> Task:
    fields: dict[str, object] = {
        "task_id": kw.pop("tid", f"t{slot}-{it}-{state}"),
        "service_id": "s1",
        "slot": slot,
        "node_id": node,
        "state": state,
        "state_at": 100.0,
        "created_at": 50.0,
        "job_iteration": it,
        **kw,
    }
    return Task(**fields)  # type: ignore[arg-type]


def reconcile(spec: ServiceSpec, tasks: list[Task], now: float = 200.0, iteration: int = 1, nodes=NODES):
    return Orchestrator(random.Random(1)).reconcile(
        [Service("s1", spec, job=JobStatus(iteration=iteration))], tasks, nodes, now
    )


def test_starts_at_most_max_concurrent_tasks_in_slot_order() -> None:
    r = reconcile(job(), [])
    assert [(c.slot, c.job_iteration) for c in r.creates] == [(1, 1), (2, 1)]
    assert all(c.node_id is None for c in r.creates)


def test_max_concurrent_defaults_to_replicas() -> None:
    r = reconcile(job(replicas=4, max_concurrent=0), [])
    assert [c.slot for c in r.creates] == [1, 2, 3, 4]


def test_a_complete_task_is_never_restarted_and_frees_its_place() -> None:
    r = reconcile(job(), [task(1, "complete"), task(2)])
    assert [c.slot for c in r.creates] == [3]
    assert [(a.task_id, a.reason) for a in r.shutdowns] == [("t1-1-complete", "job task done")]
    # a complete task already told to stop: nothing more for its slot
    r = reconcile(job(), [task(1, "complete", desired_state="shutdown"), task(2), task(3)])
    assert r.actions == []


def test_all_complete_is_a_no_op_and_the_progress_says_finished() -> None:
    spec = job(replicas=3)
    done = [task(s, "complete", desired_state="shutdown") for s in (1, 2, 3)]
    assert reconcile(spec, done).actions == []
    progress = job_progress(spec, 1, done, 200.0)
    assert (progress.completed, progress.total, progress.running, progress.finished) == (3, 3, 0, True)
    assert (progress.tasks_running, progress.tasks_desired) == (0, 2)  # Docker's "0/2 (3/3 completed)"


def test_swarm_s_counts_running_tasks_and_the_tasks_wanted_at_once() -> None:
    """Docker's ``service ls`` numbers of a job: tasks in state running (of this execution), and the
    tasks wanted at once: a replicated-job's concurrency, a global-job's tasks not complete yet."""
    tasks = [task(1, "complete"), task(2), task(3, "starting"), task(4, it=0)]
    progress = job_progress(job(replicas=6, max_concurrent=2), 1, tasks, 200.0)
    assert (progress.tasks_running, progress.tasks_desired, progress.running) == (1, 2, 2)
    everywhere = dataclasses.replace(job(max_concurrent=0), mode="global-job")
    p = job_progress(everywhere, 1, tasks, 200.0)
    assert (p.tasks_running, p.tasks_desired, p.completed, p.total) == (1, 2, 1, 3)


def test_failed_task_is_retried_after_its_delay_with_history() -> None:
    spec = job(replicas=1, max_concurrent=1, restart=RestartPolicy(delay_s=5.0))
    early = reconcile(spec, [task(1, "failed")], now=102.0)
    assert early.actions == [] and early.wake_at == 105.0
    due = reconcile(spec, [task(1, "failed")], now=105.0)
    (new,) = due.creates
    assert (new.slot, new.restart_history, new.reason) == (1, (105.0,), "restart after failed")
    assert [a.task_id for a in due.shutdowns] == ["t1-1-failed"]


def test_restart_condition_none_and_max_attempts_give_up() -> None:
    never = job(replicas=1, max_concurrent=1, restart=RestartPolicy(condition="none"))
    r = reconcile(never, [task(1, "failed")])
    assert r.creates == [] and [a.reason for a in r.shutdowns] == ["not restarted: restart condition none"]
    limited = job(replicas=2, max_concurrent=2, restart=RestartPolicy(max_attempts=2, delay_s=0.0))
    tasks = [task(1, "failed", restart_history=(120.0, 150.0)), task(2, "complete", desired_state="shutdown")]
    r = reconcile(limited, tasks)
    assert r.creates == [] and [a.reason for a in r.shutdowns] == [
        "not restarted: 2 restart attempts used (restart max attempts)"
    ]
    windowed = job(replicas=1, max_concurrent=1, restart=RestartPolicy(max_attempts=2, window_s=100.0))
    r = reconcile(windowed, tasks[:1])  # restarted again once the window holds fewer: not final
    assert [a.reason for a in r.shutdowns] == ["failed: no more restart attempts"]
    assert r.wake_at == 220.0  # then: the attempt at 120 leaves the 100 s window (not the next full round)
    stopped = [dataclasses.replace(tasks[0], desired_state="shutdown")]
    assert [c.slot for c in reconcile(windowed, stopped, now=221.0).creates] == [1]
    progress = job_progress(limited, 1, tasks, 200.0)
    assert (progress.completed, progress.failed, progress.finished) == (1, 1, True)


def test_restart_condition_any_still_never_reruns_a_complete_task() -> None:
    spec = job(replicas=1, max_concurrent=1, restart=RestartPolicy(condition="any"))
    assert reconcile(spec, [task(1, "complete", desired_state="shutdown")]).actions == []


def test_task_on_a_lost_node_is_replaced_at_once_without_counting_an_attempt() -> None:
    spec = job(replicas=2, max_concurrent=2, restart=RestartPolicy(max_attempts=1, delay_s=30.0))
    nodes = [Node("n1", "n1", status="down", status_at=1.0), Node("n2", "n2")]
    r = reconcile(spec, [task(1, node="n1"), task(2, node="n2")], nodes=nodes)
    assert [a.task_id for a in r.shutdowns] == ["t1-1-running"]
    (new,) = r.creates
    assert (new.slot, new.restart_history, new.reason) == (1, (), "replace lost task")


def test_a_stopping_task_still_counts_against_max_concurrent() -> None:
    stopping = task(1, "running", node="n2", desired_state="shutdown")  # drained, its agent not done yet
    r = reconcile(job(replicas=3, max_concurrent=2), [stopping, task(2)])
    assert r.creates == []


def test_new_execution_stops_the_previous_one_unless_cron_allows() -> None:
    old = [task(1, it=1), task(2, it=1, tid="old2")]
    r = reconcile(job(), old, iteration=2)
    assert sorted(a.task_id for a in r.shutdowns) == ["old2", "t1-1-running"]
    assert [(c.slot, c.job_iteration) for c in r.creates] == [(1, 2), (2, 2)]
    cron = dataclasses.replace(job(), schedule=_schedule("allow"))
    r = reconcile(cron, old, iteration=2)
    assert r.shutdowns == [] and len(r.creates) == 2


def test_cron_job_before_its_first_tick_runs_nothing() -> None:
    assert reconcile(dataclasses.replace(job(), schedule=_schedule("forbid")), [], iteration=0).actions == []


def _schedule(policy: str):
    from p2porch.model.jobspec import CronSchedule

    return CronSchedule("* * * * *", concurrency=policy)


def test_global_job_runs_once_per_eligible_node_including_one_that_joins_later() -> None:
    spec = ServiceSpec(name="g", image="busybox:1", mode="global-job")
    r = reconcile(spec, [])
    assert sorted((c.node_id, c.slot) for c in r.creates) == [("n1", 1), ("n2", 2), ("n3", 3)]
    done = [task(i + 1, "complete", node=n.node_id, desired_state="shutdown") for i, n in enumerate(NODES)]
    assert reconcile(spec, done).actions == []
    later = [*NODES, Node("n4", "n4")]
    (new,) = reconcile(spec, done, nodes=later).creates
    assert (new.node_id, new.slot) == ("n4", 4)
    drained = [*NODES[:2], Node("n3", "n3", availability="drain")]
    assert [c.node_id for c in reconcile(spec, [], nodes=drained).creates] == ["n1", "n2"]
    on_n3 = [task(3, "running", node="n3")]
    assert [a.reason for a in reconcile(spec, on_n3, nodes=drained).shutdowns] == ["node drained"]
    paused = [*NODES[:2], Node("n3", "n3", availability="pause")]
    assert reconcile(spec, on_n3, nodes=paused).shutdowns == []  # a paused node's task runs on


def test_history_keeps_the_current_execution_and_the_limit_of_earlier_ones() -> None:
    cron = dataclasses.replace(job(replicas=1, max_concurrent=1), schedule=_schedule("forbid"))
    tasks = [task(1, "complete", it=i, tid=f"it{i}") for i in range(1, 7)]
    tasks += [task(1, "failed", it=6, tid=f"f{k}", created_at=10.0 + k) for k in range(5)]
    keep = job_history_keep(cron, 6, tasks)
    assert keep == {"it6", "f4", "f3", "it5", "it4", "it3"}  # newest 3 of execution 6 (+ complete), 3 before


def test_bad_job_fields_name_the_field() -> None:
    cases = [
        (dict(mode="replicated", max_concurrent=2), "max_concurrent"),
        (dict(mode="global-job", max_concurrent=2), "max_concurrent"),
        (dict(mode="replicated", schedule="* * * * *"), "schedule"),
        (dict(mode="replicated-job", schedule="61 * * * *"), "schedule.cron"),
        (dict(mode="replicated-job", schedule="* * * *"), "schedule.cron"),
        (
            dict(mode="replicated-job", schedule={"cron": "@daily", "timezone": "Mars/Base"}),
            "schedule.timezone",
        ),
        (
            dict(mode="replicated-job", schedule={"cron": "@daily", "concurrency": "maybe"}),
            "schedule.concurrency",
        ),
        (
            dict(mode="replicated-job", schedule={"cron": "@daily", "history_limit": 101}),
            "schedule.history_limit",
        ),
        (dict(mode="replicated-job", schedule={"timezone": "UTC"}), "schedule.cron"),
        (dict(mode="replicated-job", rebalance=True), "rebalance"),
    ]
    for extra, fieldname in cases:
        with pytest.raises(ConfigError) as info:
            ServiceSpec.from_dict({"name": "j", "image": "x", **extra})
        assert info.value.field == fieldname, (extra, info.value)


def test_job_fields_round_trip_and_stay_out_of_the_template_hash() -> None:
    spec = ServiceSpec.from_dict(
        {
            "name": "j",
            "image": "x",
            "mode": "replicated-job",
            "replicas": 6,
            "max_concurrent": 2,
            "schedule": {"cron": "*/5  * * * *", "timezone": "Europe/Paris", "starting_deadline": "90s"},
        }
    )
    assert spec.schedule is not None and spec.schedule.cron == "*/5 * * * *"
    assert spec.schedule.starting_deadline_s == 90.0
    assert ServiceSpec.from_dict(spec.to_dict()) == spec
    assert spec.template_hash() == dataclasses.replace(spec, max_concurrent=3).template_hash()


# --------------------------------------------------------------- a whole job, run by a tiny loop


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    replicas=st.integers(1, 8),
    max_concurrent=st.integers(0, 4),
    fail_rate=st.sampled_from([0.0, 0.3]),
    kill_rate=st.sampled_from([0.0, 0.1]),
)
def test_a_job_completes_each_slot_exactly_once_never_above_max_concurrent(
    seed: int, replicas: int, max_concurrent: int, fail_rate: float, kill_rate: float
) -> None:
    """Apply each round's actions, let live tasks complete, fail or lose their node at random: the job
    ends with exactly `replicas` completions, one per slot, never more than M tasks live at once."""
    rng = random.Random(seed)
    spec = job(replicas=replicas, max_concurrent=max_concurrent, restart=RestartPolicy(delay_s=0.0))
    limit = spec.job_concurrency
    nodes = {f"n{i}": Node(f"n{i}", f"n{i}") for i in range(3)}
    tasks: dict[str, Task] = {}
    orchestrator = Orchestrator(random.Random(seed))
    now = 1000.0
    for _ in range(400):
        now += 1.0
        r = orchestrator.reconcile(
            [Service("s1", spec, job=JobStatus(iteration=1))], list(tasks.values()), list(nodes.values()), now
        )
        for a in r.shutdowns:
            tasks[a.task_id] = dataclasses.replace(tasks[a.task_id], desired_state="shutdown")
        up = sorted(n for n, node in nodes.items() if node.status == "ready")
        for c in r.creates:
            tasks[c.task_id] = Task(
                c.task_id, "s1", c.slot, node_id=rng.choice(up), state="running", state_at=now,
                created_at=now, restart_history=c.restart_history, job_iteration=c.job_iteration,
            )  # fmt: skip
        live = [
            t for t in tasks.values() if t.state == "running" and nodes[t.node_id or ""].status == "ready"
        ]
        assert len(live) <= limit
        for t in live:  # each live task may end this second
            roll = rng.random()
            if roll < 0.3:
                state = "failed" if rng.random() < fail_rate else "complete"
                tasks[t.task_id] = dataclasses.replace(t, state=state, state_at=now)
        if rng.random() < kill_rate:  # a node dies for good and a new one joins
            victim = rng.choice(up)
            nodes[victim] = dataclasses.replace(nodes[victim], status="down", status_at=now)
            fresh = f"n{len(nodes)}"
            nodes[fresh] = Node(fresh, fresh)
        if job_progress(spec, 1, list(tasks.values()), now).finished:
            break
    completes = [t for t in tasks.values() if t.state == "complete"]
    assert sorted(t.slot for t in completes) == list(range(1, replicas + 1))
