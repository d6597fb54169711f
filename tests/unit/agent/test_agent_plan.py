"""The agent's pure reconcile core: what to start, stop, remove, adopt and report."""

from __future__ import annotations

import random
import signal

from hypothesis import given, settings
from hypothesis import strategies as st

from p2porch.agent.model import ObservedContainer, TaskAssignment, TaskReport
from p2porch.agent.plan import (
    VANISHED_ERROR,
    RemoveContainer,
    StartOutcome,
    StartTask,
    outcome_report,
    plan_node,
    ready_pid,
    report_from_container,
)
from p2porch.model import TERMINAL_STATES, TaskHealth, TaskState

NODE = "n1"
NOW = 1000.0


def assignment(task_id: str = "t1", **kw: object) -> TaskAssignment:
    base: dict[str, object] = dict(
        task_id=task_id, service_name="web", service_id="s1", slot=1, node_name=NODE, image="busybox"
    )
    base.update(kw)
    return TaskAssignment(**base)  # type: ignore[arg-type]


def container(
    task_id: str = "t1", cid: str = "c1", status: str = "running", **kw: object
) -> ObservedContainer:
    base: dict[str, object] = dict(
        container_id=cid, name=f"web.1.{task_id}", task_id=task_id, node_name=NODE, status=status
    )
    base.update(kw)
    return ObservedContainer(**base)  # type: ignore[arg-type]


def report(task_id: str = "t1", state: str = TaskState.RUNNING, **kw: object) -> TaskReport:
    return TaskReport(task_id, state, NOW - 1, **kw)  # type: ignore[arg-type]


def test_new_assignment_is_started_and_reported_starting() -> None:
    plan = plan_node(NODE, [assignment()], [], {}, NOW)
    assert plan.actions == (StartTask(assignment()),)
    assert [(r.task_id, r.state, r.at) for r in plan.reports] == [("t1", TaskState.STARTING, NOW)]


def test_busy_task_is_left_alone() -> None:
    plan = plan_node(NODE, [assignment()], [], {}, NOW, busy_tasks={"t1"})
    assert plan.actions == () and plan.reports == ()


def test_assignments_for_other_nodes_are_ignored() -> None:
    plan = plan_node(NODE, [assignment(node_name="n2")], [], {}, NOW)
    assert plan.actions == () and plan.reports == ()


def test_running_container_is_adopted_not_restarted() -> None:
    running = container(address="10.0.0.5", health=TaskHealth.HEALTHY)
    plan = plan_node(NODE, [assignment(state=TaskState.RUNNING)], [running], {}, NOW)
    assert plan.actions == ()
    assert plan.reports == (
        TaskReport(
            "t1", TaskState.RUNNING, NOW, container_id="c1", address="10.0.0.5", health=TaskHealth.HEALTHY
        ),
    )
    # Once reported, nothing more to say while nothing changes.
    again = plan_node(
        NODE, [assignment(state=TaskState.RUNNING)], [running], {"t1": plan.reports[0]}, NOW + 5
    )
    assert again.actions == () and again.reports == ()


def test_health_changes_are_reported() -> None:
    known = {"t1": report(container_id="c1", health=TaskHealth.STARTING)}
    for health in (TaskHealth.HEALTHY, TaskHealth.UNHEALTHY):
        plan = plan_node(NODE, [assignment()], [container(health=health)], known, NOW)
        assert [(r.state, r.health) for r in plan.reports] == [(TaskState.RUNNING, health)]
        assert plan.actions == ()
        known = {"t1": plan.reports[0]}


def test_exit_zero_is_complete_and_nonzero_is_failed_with_code() -> None:
    known = {"t1": report(container_id="c1")}
    done = plan_node(NODE, [assignment()], [container(status="exited", exit_code=0)], known, NOW)
    assert [(r.state, r.exit_code, r.error) for r in done.reports] == [(TaskState.COMPLETE, 0, "")]
    failed = plan_node(NODE, [assignment()], [container(status="exited", exit_code=3)], known, NOW)
    assert [(r.state, r.exit_code) for r in failed.reports] == [(TaskState.FAILED, 3)]
    assert "code 3" in failed.reports[0].error
    assert failed.actions == ()  # never restarted in place
    after = plan_node(
        NODE, [assignment()], [container(status="exited", exit_code=3)], {"t1": failed.reports[0]}, NOW
    )
    assert after.actions == () and after.reports == ()


def test_oom_kill_is_named_in_the_error() -> None:
    oom = container(status="exited", exit_code=137, oom_killed=True)
    got = report_from_container(oom, NOW)
    assert got is not None and got.state == TaskState.FAILED and "out of memory" in got.error


def test_bad_command_is_failed_with_docker_error_text() -> None:
    text = 'exec: "nosuchcmd": executable file not found in $PATH'
    bad = container(status="created", exit_code=127, error=text)
    plan = plan_node(NODE, [assignment()], [bad], {"t1": report(state=TaskState.STARTING)}, NOW)
    assert [(r.state, r.error, r.exit_code) for r in plan.reports] == [(TaskState.FAILED, text, 127)]
    assert plan.actions == ()


def test_created_but_never_started_container_is_started() -> None:
    plan = plan_node(NODE, [assignment()], [container(status="created")], {}, NOW)
    assert plan.actions == (StartTask(assignment(), "c1"),)
    assert [r.state for r in plan.reports] == [TaskState.STARTING]


def test_vanished_container_is_failed_once_and_never_restarted() -> None:
    plan = plan_node(NODE, [assignment()], [], {"t1": report(container_id="c1")}, NOW)
    assert plan.actions == ()
    assert [(r.state, r.error, r.container_id) for r in plan.reports] == [
        (TaskState.FAILED, VANISHED_ERROR, "c1")
    ]
    again = plan_node(NODE, [assignment()], [], {"t1": plan.reports[0]}, NOW)
    assert again.actions == () and again.reports == ()


def test_after_restart_committed_running_without_container_is_failed_not_restarted() -> None:
    plan = plan_node(NODE, [assignment(state=TaskState.RUNNING)], [], {}, NOW)
    assert plan.actions == ()
    assert [r.state for r in plan.reports] == [TaskState.FAILED]


def test_after_restart_terminal_task_without_container_is_not_started() -> None:
    for state in sorted(TERMINAL_STATES):
        plan = plan_node(NODE, [assignment(state=state)], [], {}, NOW)
        assert plan.actions == () and plan.reports == (), state


def test_leader_terminal_state_overrides_our_running_and_stops_the_container() -> None:
    plan = plan_node(
        NODE, [assignment(state="orphaned")], [container()], {"t1": report(container_id="c1")}, NOW
    )
    assert plan.reports == ()
    assert [(type(a), a.container_id) for a in plan.actions] == [(RemoveContainer, "c1")]


def test_desired_shutdown_stops_running_container_and_reports_shutdown_after() -> None:
    a = assignment(desired_state="shutdown", stop_grace_s=3.0)
    plan = plan_node(NODE, [a], [container()], {"t1": report(container_id="c1")}, NOW)
    assert plan.reports == ()
    assert plan.actions == (RemoveContainer("t1", "c1", 3.0, "desired shutdown", report_shutdown=True),)


def test_desired_shutdown_before_start_reports_shutdown() -> None:
    plan = plan_node(NODE, [assignment(desired_state="shutdown", state=TaskState.ASSIGNED)], [], {}, NOW)
    assert plan.actions == ()
    assert [r.state for r in plan.reports] == [TaskState.SHUTDOWN]


def test_desired_shutdown_of_exited_container_reports_how_it_ended_and_keeps_it() -> None:
    a = assignment(desired_state="shutdown")
    plan = plan_node(
        NODE, [a], [container(status="exited", exit_code=2)], {"t1": report(container_id="c1")}, NOW
    )
    assert [(r.state, r.exit_code) for r in plan.reports] == [(TaskState.FAILED, 2)]
    assert plan.actions == ()  # its logs stay readable (`service logs`) while the task's record exists


def test_desired_shutdown_of_finished_task_keeps_its_exited_container_until_the_record_goes() -> None:
    """A finished job task (or a crashed one) keeps its container and so its logs: `service logs` of a
    batch job printed nothing once its tasks were done. The container goes with the task's record."""
    for state, code in ((TaskState.COMPLETE, 0), (TaskState.FAILED, 1)):
        a = assignment(desired_state="shutdown", state=state)
        exited = container(status="exited", exit_code=code)
        plan = plan_node(NODE, [a], [exited], {}, NOW)
        assert (plan.reports, plan.actions) == ((), ())
        gone = plan_node(NODE, [], [exited], {}, NOW, orphan_grace_s=2.0)
        assert gone.actions == (RemoveContainer("t1", "c1", 2.0, "task not assigned"),)


def test_a_container_the_agent_stopped_goes_even_if_its_removal_was_interrupted() -> None:
    """Stopped by the agent (the task reported shutdown), then the remove failed: no logs to keep."""
    a = assignment(desired_state="shutdown", state=TaskState.SHUTDOWN)
    plan = plan_node(NODE, [a], [container(status="exited", exit_code=143)], {}, NOW)
    assert plan.actions == (RemoveContainer("t1", "c1", 10.0, "desired shutdown"),)


def test_a_stop_an_agent_restart_interrupted_is_a_shutdown_not_a_failure() -> None:
    """The h48 walk: n3's daemon killed, its tasks replaced; back, its agent began stopping them, a key
    switch restarted the agent mid-stop, dockerd SIGKILLed them after the grace, and the fresh agent
    reported `failed: task exited with code 137` and kept them. A stop signal's code is a shutdown."""
    for options, code in (
        ({}, 137),
        ({}, 143),
        ({"stop_signal": "SIGQUIT"}, 131),
        ({"stop_signal": "2"}, 130),
    ):
        a = assignment(desired_state="shutdown", options=options)
        plan = plan_node(
            NODE, [a], [container(status="exited", exit_code=code)], {"t1": report(container_id="c1")}, NOW
        )
        assert [(r.state, r.exit_code, r.error) for r in plan.reports] == [(TaskState.SHUTDOWN, code, "")]
        assert plan.actions == (RemoveContainer("t1", "c1", 10.0, "desired shutdown"),)
    running = plan_node(NODE, [assignment()], [container(status="exited", exit_code=137)], {}, NOW)
    assert [r.state for r in running.reports] == [TaskState.FAILED]  # not asked to stop: it failed
    oom = container(status="exited", exit_code=137, oom_killed=True)
    plan = plan_node(
        NODE, [assignment(desired_state="shutdown")], [oom], {"t1": report(container_id="c1")}, NOW
    )
    assert [r.state for r in plan.reports] == [TaskState.FAILED] and plan.actions == ()


def test_a_stop_by_the_image_s_own_stopsignal_is_a_shutdown_not_a_failure() -> None:
    """nginx's STOPSIGNAL SIGQUIT (131), systemd images' SIGRTMIN+3: with no --stop-signal on the service,
    Docker stops the container with the image's signal; an interrupted stop was reported failed."""
    for stop_signal, code in (("SIGQUIT", 131), ("WINCH", 156), ("SIGRTMIN+3", 128 + signal.SIGRTMIN + 3)):
        stopped = container(status="exited", exit_code=code, stop_signal=stop_signal)
        a = assignment(desired_state="shutdown")
        plan = plan_node(NODE, [a], [stopped], {"t1": report(container_id="c1")}, NOW)
        assert [(r.state, r.exit_code, r.error) for r in plan.reports] == [(TaskState.SHUTDOWN, code, "")]
    other = container(status="exited", exit_code=131, stop_signal="SIGUSR1")  # not its stop signal
    plan = plan_node(
        NODE, [assignment(desired_state="shutdown")], [other], {"t1": report(container_id="c1")}, NOW
    )
    assert [r.state for r in plan.reports] == [TaskState.FAILED]


def test_desired_shutdown_of_dead_container_removes_it() -> None:
    a = assignment(desired_state="shutdown", state=TaskState.FAILED)
    plan = plan_node(NODE, [a], [container(status="dead", exit_code=1)], {}, NOW)
    assert plan.reports == ()
    assert [type(x) for x in plan.actions] == [RemoveContainer]


def test_container_of_unknown_task_is_removed_and_other_nodes_containers_are_not() -> None:
    orphan = container(task_id="gone", cid="c9")
    foreign = container(task_id="other", cid="c8", node_name="n2")
    plan = plan_node(NODE, [], [orphan, foreign], {}, NOW, orphan_grace_s=2.0)
    assert plan.actions == (RemoveContainer("gone", "c9", 2.0, "task not assigned"),)
    assert plan.reports == ()


def test_busy_container_is_not_removed_twice() -> None:
    plan = plan_node(NODE, [], [container(task_id="gone", cid="c9")], {}, NOW, busy_containers={"c9"})
    assert plan.actions == ()


def test_duplicate_containers_keep_the_running_one() -> None:
    running = container(cid="c2")
    exited = container(cid="c1", status="exited", exit_code=0)
    plan = plan_node(NODE, [assignment()], [exited, running], {}, NOW)
    assert [(type(a), a.container_id) for a in plan.actions] == [(RemoveContainer, "c1")]
    assert [(r.state, r.container_id) for r in plan.reports] == [(TaskState.RUNNING, "c2")]


def test_tasks_no_longer_assigned_are_forgotten() -> None:
    plan = plan_node(
        NODE, [assignment("t1")], [container()], {"t1": report(container_id="c1"), "t0": report("t0")}, NOW
    )
    assert plan.forget == ("t0",)


def test_outcome_report_carries_docker_error_or_container_state() -> None:
    a = assignment()
    pulled = outcome_report(a, StartOutcome(None, "pull access denied for nope"), NOW)
    assert (pulled.state, pulled.error, pulled.container_id) == (
        TaskState.FAILED,
        "pull access denied for nope",
        "",
    )
    bad = container(status="created", exit_code=127, error="exec failed")
    started = outcome_report(a, StartOutcome(bad, "exec failed"), NOW)
    assert (started.state, started.error, started.exit_code, started.container_id) == (
        TaskState.FAILED,
        "exec failed",
        127,
        "c1",
    )
    ok = outcome_report(a, StartOutcome(container(address="10.0.0.2"), ""), NOW)
    assert (ok.state, ok.address) == (TaskState.RUNNING, "10.0.0.2")
    none = outcome_report(a, StartOutcome(None, ""), NOW)
    assert none.state == TaskState.FAILED and none.error


# ----- properties over random situations

STATUSES = ["created", "running", "paused", "exited", "dead", "removing"]
STATES = [
    TaskState.ASSIGNED,
    TaskState.STARTING,
    TaskState.RUNNING,
    TaskState.COMPLETE,
    TaskState.FAILED,
    TaskState.SHUTDOWN,
    "orphaned",
]


@st.composite
def situations(
    draw: st.DrawFn,
) -> tuple[list[TaskAssignment], list[ObservedContainer], dict[str, TaskReport]]:
    task_ids = [f"t{i}" for i in range(draw(st.integers(0, 6)))]
    assignments = [
        assignment(
            t,
            desired_state=draw(st.sampled_from(["running", "shutdown"])),
            state=draw(st.sampled_from(STATES)),
            node_name=draw(st.sampled_from([NODE, NODE, "n2"])),
        )
        for t in task_ids
        if draw(st.booleans())
    ]
    containers = []
    for i in range(draw(st.integers(0, 6))):
        status = draw(st.sampled_from(STATUSES))
        containers.append(
            container(
                draw(st.sampled_from([*task_ids, "ghost"])),
                f"c{i}",
                status,
                exit_code=draw(st.sampled_from([None, 0, 1]))
                if status in ("exited", "dead", "created")
                else None,
                error=draw(st.sampled_from(["", "boom"])) if status != "running" else "",
                node_name=draw(st.sampled_from([NODE, NODE, "n2"])),
            )
        )
    known = {
        t: report(t, draw(st.sampled_from(STATES)), container_id=draw(st.sampled_from(["", "c0", "c1"])))
        for t in task_ids
        if draw(st.booleans())
    }
    return assignments, containers, known


@settings(max_examples=300, deadline=None)
@given(situations(), st.randoms(use_true_random=False))
def test_plan_invariants(situation, rnd: random.Random) -> None:  # type: ignore[no-untyped-def]
    assignments, containers, known = situation
    plan = plan_node(NODE, assignments, containers, known, NOW)
    mine = {a.task_id: a for a in assignments if a.node_name == NODE}
    live = {c.task_id for c in containers if c.node_name == NODE and c.status in ("running", "paused")}
    own_ids = {c.container_id for c in containers if c.node_name == NODE}

    def effective(task_id: str) -> str:
        a = mine[task_id]
        return a.state if a.state in TERMINAL_STATES or task_id not in known else known[task_id].state

    acted: list[str] = []
    for action in plan.actions:
        if isinstance(action, StartTask):
            state = effective(action.task_id)
            assert mine[action.task_id].desired_state == "running"
            assert state not in TERMINAL_STATES  # never started again once over
            assert action.task_id not in live  # never a second live container
            if not action.container_id:
                assert state not in (
                    TaskState.STARTING,
                    TaskState.RUNNING,
                )  # a started task is never created again
            acted.append(action.task_id)
        else:
            assert action.container_id in own_ids  # only our own containers, on our node
    assert len(acted) == len(set(acted))
    removed = {a.container_id for a in plan.actions if isinstance(a, RemoveContainer)}
    for c in containers:
        a = mine.get(c.task_id)
        if c.node_name != NODE or c.container_id in removed:
            continue
        assert a is not None  # a container of a task not assigned here always goes
        if a.desired_state == "shutdown":
            # what a shut-down task leaves is an exited container (kept for its logs), and only when the
            # task ended by itself: the agent removes what it stops
            assert c.status == "exited" and effective(c.task_id) != TaskState.SHUTDOWN, (c, a)
    for rep in plan.reports:
        assert rep.task_id in mine
        assert effective(rep.task_id) not in TERMINAL_STATES  # never reported out of a terminal state
        assert not rep.same_as(known.get(rep.task_id))  # only news is reported
    # Deterministic regardless of input order.
    shuffled_a, shuffled_c = list(assignments), list(containers)
    rnd.shuffle(shuffled_a)
    rnd.shuffle(shuffled_c)
    assert plan_node(NODE, shuffled_a, shuffled_c, known, NOW) == plan


def test_a_serving_task_drains_before_it_is_stopped_and_others_do_not() -> None:
    a = assignment(desired_state="shutdown", stop_grace_s=3.0)
    served = plan_node(NODE, [a], [container()], {"t1": report(container_id="c1")}, NOW, drain_s=1.5)
    assert served.actions == (
        RemoveContainer("t1", "c1", 3.0, "desired shutdown", report_shutdown=True, drain_s=1.5),
    )
    # never reported running (it was never in DNS): stopped at once
    starting = plan_node(
        NODE,
        [a],
        [container()],
        {"t1": report(state=TaskState.STARTING, container_id="c1")},
        NOW,
        drain_s=1.5,
    )
    assert [x.drain_s for x in starting.actions if isinstance(x, RemoveContainer)] == [0.0]


def test_a_load_balanced_task_carries_its_stop_commit_while_its_container_is_live() -> None:
    a = assignment(desired_state="shutdown", stop_grace_s=3.0, drain_index=23)
    live = plan_node(NODE, [a], [container()], {"t1": report(container_id="c1")}, NOW)
    assert [(x.drain_index, x.drain_s) for x in live.actions if isinstance(x, RemoveContainer)] == [(23, 0.0)]
    created = plan_node(NODE, [a], [container(status="created")], {}, NOW)  # never served: no drain
    assert [(x.drain_index, x.drain_s) for x in created.actions if isinstance(x, RemoveContainer)] == [
        (0, 0.0)
    ]


def test_a_load_balanced_stop_carries_the_namespace_and_ports_its_connections_are_watched_on() -> None:
    a = assignment(desired_state="shutdown", drain_index=23, drain_ports=(80, 443), drain_listeners=True)
    live = plan_node(NODE, [a], [container(pid=4242)], {"t1": report(container_id="c1")}, NOW)
    assert [
        (x.drain_pid, x.drain_ports, x.drain_listeners)
        for x in live.actions
        if isinstance(x, RemoveContainer)
    ] == [(4242, (80, 443), True)]
    plain = assignment(desired_state="shutdown", drain_ports=(80,))  # not load-balanced: nothing watched
    none = plan_node(NODE, [plain], [container(pid=4242)], {"t1": report(container_id="c1")}, NOW)
    assert [(x.drain_pid, x.drain_ports) for x in none.actions if isinstance(x, RemoveContainer)] == [(0, ())]


def test_a_started_load_balanced_task_waits_for_its_listeners_only_when_it_runs() -> None:
    served = assignment(ready_ports=(80,))
    running = container(pid=4242)
    assert ready_pid(served, StartOutcome(running)) == 4242
    assert ready_pid(assignment(), StartOutcome(running)) == 0  # publishes no TCP ingress port
    assert ready_pid(served, StartOutcome(running, "OCI runtime create failed")) == 0
    assert ready_pid(served, StartOutcome(None, "no such image")) == 0
    assert ready_pid(served, StartOutcome(container(status="exited", exit_code=1, pid=0))) == 0
    assert ready_pid(served, StartOutcome(container(pid=0))) == 0  # pid unknown: nothing to read
