"""Progress of service create/update/scale/rollback: when a service has converged, when it failed and
why, and what is printed (terminal redraw vs one line per change; nothing when quiet)."""

from __future__ import annotations

import io

import pytest

from p2porch.cli.progress import (
    MAX_FAILURES,
    ProgressPrinter,
    Watch,
    assess,
    monitor_allowance_s,
    wait_for_services,
)
from p2porch.errors import P2POrchError


def view(**kw):
    base = {
        "name": "web",
        "mode": "replicated",
        "desired": 2,
        "running": 0,
        "version": 7,
        "pending": [],
        "moving": 0,
        "update_paused": False,
        "spec": {"image": "x"},
    }
    return {**base, **kw}


def task(slot, state="running", tid=None, **kw):
    base = {
        "id": tid or f"t{slot}",
        "slot": slot,
        "node": "n1",
        "desired_state": "running",
        "state": state,
        "up_to_date": True,
        "health": "",
        "error": "",
        "message": "",
        "state_at": 0.0,
    }
    return {**base, **kw}


def test_converged_only_when_every_task_runs_on_the_current_spec():
    w = Watch("web", 7)
    assert not assess(w, view(), [task(1, "preparing")], 0).done
    assert not assess(w, view(running=2), [task(1), task(2, health="starting")], 1).done
    old = task(2, tid="old", up_to_date=False)
    assert not assess(w, view(running=2), [task(1), task(2), old], 1).done  # start-first: old still up
    assert not assess(w, view(running=2, pending=[{"count": 1}]), [task(1), task(2)], 1).done
    result = assess(w, view(running=2), [task(1), task(2), task(3, "shutdown", desired_state="shutdown")], 2)
    assert result.done and result.failure is None and result.summary == "web: 2/2 tasks running"


def test_scale_to_zero_and_global_services():
    assert assess(Watch("web", 7), view(desired=0), [], 0).done
    g = Watch("g", 7)
    assert not assess(g, view(mode="global", desired=0), [], 0.5).done  # the scheduler has not run yet
    assert assess(g, view(name="agent", mode="global", desired=0), [], 5).done
    assert assess(g, view(mode="global", desired=1, running=1), [task(1)], 0.5).done


def test_one_shot_tasks_that_completed_count_as_done():
    spec = {"image": "x", "restart": {"condition": "none"}}
    done = [task(1, "complete", desired_state="shutdown"), task(2, "complete", desired_state="shutdown")]
    assert assess(Watch("job", 7), view(spec=spec), done, 1).done


def test_tasks_that_exit_at_once_in_a_service_that_restarts_them_fail_the_wait_with_a_hint():
    # an image without a default command (a `docker import`ed busybox) exits 0 and is restarted forever
    w = Watch("web", 7)
    assert assess(w, view(), [], 0).failure is None
    looping = [task(1, "complete", tid=f"c{i}", desired_state="shutdown") for i in range(MAX_FAILURES)]
    result = assess(w, view(), looping, 3)
    assert result.failure and "3 tasks failed: task exited with code 0" in result.failure
    assert "foreground" in result.failure
    one_shot = view(spec={"image": "x", "restart": {"condition": "on-failure"}})
    assert assess(Watch("web", 7), one_shot, looping, 3).failure is None  # completion is the goal there
    assert assess(Watch("job", 7), view(mode="replicated-job"), looping, 3).failure is None
    scaled_down = [task(3 + i, "complete", tid=f"s{i}", desired_state="shutdown") for i in range(3)]
    assert assess(Watch("web", 7), view(), scaled_down, 3).failure is None  # slots 3.. were removed


def test_failures_paused_updates_and_foreign_changes_stop_the_wait_with_a_reason():
    w = Watch("web", 7)
    history = [task(1, "failed", tid="before", error="old failure")]
    assert assess(w, view(), history, 0).failure is None  # failures from before the change are not ours
    failing = [
        *history,
        *(task(1, "failed", tid=f"f{i}", error="exec: no such file") for i in range(MAX_FAILURES)),
    ]
    result = assess(w, view(), failing, 5)
    assert result.failure and "3 tasks failed: exec: no such file" in result.failure
    paused = assess(Watch("web", 7), view(update_paused=True), [task(1, error="health check failed")], 1)
    assert paused.failure == "update paused: health check failed"
    w2 = Watch("web", 7)
    assess(w2, view(), [task(1)], 0)
    rolled = assess(w2, view(version=9, spec={"image": "old"}), [task(1)], 1)
    assert rolled.failure and "rolled back" in rolled.failure
    w3 = Watch("web", 7)
    assess(w3, view(), [task(1)], 0)
    bookkeeping = view(version=8, running=2, spec={"image": "x", "rebalance_requested": True})
    assert assess(w3, bookkeeping, [task(1), task(2)], 1).done  # leader bookkeeping is not a failure


class FakeClient:
    def __init__(self, polls):
        self.polls = list(polls)
        self.current = None

    def get(self, path, **params):
        if path.endswith("/tasks"):
            return self.current[1]
        self.current = self.polls.pop(0) if len(self.polls) > 1 else self.polls[0]
        return self.current[0]


def test_wait_prints_changes_once_per_line_and_returns_when_converged():
    polls = [
        (view(), [task(1, "preparing"), task(2, "pending", node=None, message="no node fits")]),
        (view(), [task(1, "preparing"), task(2, "pending", node=None, message="no node fits")]),
        (view(running=2), [task(1), task(2)]),
    ]
    out = io.StringIO()
    wait_for_services(
        FakeClient(polls), [Watch("web", 7)], printer=ProgressPrinter(out), sleep=lambda s: None
    )
    text = out.getvalue()
    assert text.count("1/2: preparing") == 1 and "2/2: pending" in text and "no node fits" in text
    assert "1/2: running" in text and text.rstrip().endswith("web: converged")
    quiet = io.StringIO()
    wait_for_services(
        FakeClient(polls), [Watch("web", 7)], printer=ProgressPrinter(quiet, quiet=True), sleep=lambda s: None
    )
    assert quiet.getvalue() == ""


def test_wait_times_out_and_fails_with_the_reason():
    polls = [(view(), [task(1, "pending", node=None, message="no node fits")])]
    now = iter(range(0, 1000, 100))
    with pytest.raises(P2POrchError, match="not converged after 150s"):
        wait_for_services(
            FakeClient(polls),
            [Watch("web", 7)],
            printer=ProgressPrinter(io.StringIO()),
            timeout_s=150,
            clock=lambda: float(next(now)),
            sleep=lambda s: None,
        )
    failing = [(view(update_paused=True), [task(1, error="unhealthy")])]
    with pytest.raises(P2POrchError, match="web: update paused: unhealthy"):
        wait_for_services(
            FakeClient(failing),
            [Watch("web", 7)],
            printer=ProgressPrinter(io.StringIO()),
            sleep=lambda s: None,
        )


def test_on_a_terminal_the_lines_are_redrawn_in_place():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    printer = ProgressPrinter(out)
    w = Watch("web", 7)
    printer.show("web", assess(w, view(), [task(1, "preparing"), task(2, "starting")], 0))
    printer.show("web", assess(w, view(running=2), [task(1), task(2)], 1))
    text = out.getvalue()
    assert text.count("\x1b[3F\x1b[J") == 1  # moved up over the 3 lines drawn before, cleared them
    assert text.endswith(
        "web: 2/2 tasks running\n1/2: running              [n1]\n2/2: running              [n1]\n"
    )


def test_a_stacks_task_lines_follow_their_services_summary():
    """The h49 walk: `stack deploy` of front and back printed `st-front: 0/2`, `st-back: 0/2`, then the
    four task lines of both under st-back's summary (front's summary had not changed, so was not printed
    again): each service's lines now come after its own summary line."""
    out = io.StringIO()
    printer = ProgressPrinter(out)
    front, back = Watch("front", 7), Watch("back", 7)
    printer.show("front", assess(front, view(name="front"), [], 0))
    printer.show("back", assess(back, view(name="back"), [], 0))
    printer.show("front", assess(front, view(name="front"), [task(1, "assigned", node="n2")], 1))
    printer.show("back", assess(back, view(name="back"), [task(1, "assigned", node="n4")], 1))
    printer.show("back", assess(back, view(name="back"), [task(1, "starting", node="n4")], 2))
    printer.finish("back: converged", "back")
    printer.show("front", assess(front, view(name="front"), [task(1, "starting", node="n2")], 2))
    assert out.getvalue().splitlines() == [
        "front: 0/2 tasks running",
        "back: 0/2 tasks running",
        "front: 0/2 tasks running",
        "  1/2: assigned             [n2]",
        "back: 0/2 tasks running",
        "  1/2: assigned             [n4]",
        "  1/2: starting             [n4]",  # the same service's next change: no summary again
        "back: converged",
        "front: 0/2 tasks running",
        "  1/2: starting             [n2]",
    ]


def test_on_a_terminal_every_watched_service_stays_drawn():
    """A stack's services on a terminal: each redraw shows every unfinished service (it showed the
    last one alone, over the other's lines); a finished one stays printed with its converged line."""

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    printer = ProgressPrinter(out)
    front, back = Watch("front", 7), Watch("back", 7)
    printer.show("front", assess(front, view(name="front"), [task(1, "assigned")], 0))
    printer.show("back", assess(back, view(name="back"), [task(1, "assigned")], 0))
    assert out.getvalue().rsplit("\x1b[2F\x1b[J", 1)[1] == (
        "front: 0/2 tasks running\n1/2: assigned             [n1]\n"
        "back: 0/2 tasks running\n1/2: assigned             [n1]\n"
    )
    printer.finish("front: converged", "front")
    printer.show("back", assess(back, view(name="back"), [task(1, "starting")], 1))
    assert out.getvalue().endswith(
        "front: 0/2 tasks running\n1/2: assigned             [n1]\nfront: converged\n"
        "back: 0/2 tasks running\n1/2: assigned             [n1]\n"
        "\x1b[2F\x1b[Jback: 0/2 tasks running\n1/2: starting             [n1]\n"
    )


def test_jobs_and_removed_services_are_not_waited_for():
    from p2porch.cli.progress import waits_for

    assert waits_for(view())
    assert not waits_for(view(mode="replicated-job")) and not waits_for(view(mode="global-job"))
    assert not waits_for({"name": "web", "version": None, "removed": True})


def test_a_start_first_update_counts_slots_not_tasks_and_prints_each_task_once_per_change():
    # 3 replicas, slot 1 has its old task and the new one: lines say "1/3" (not "1/4"), and the two
    # tasks of one slot no longer overwrite each other's "seen" line (each poll printed both again)
    old = task(1, tid="old1", up_to_date=False)
    polls = [
        (
            view(desired=3, running=3),
            [task(1, "starting"), old, task(2, tid="o2", up_to_date=False), task(3)],
        ),
        (
            view(desired=3, running=3),
            [task(1, "starting"), old, task(2, tid="o2", up_to_date=False), task(3)],
        ),
        (view(desired=3, running=3), [task(1), old, task(2, tid="o2", up_to_date=False), task(3)]),
        (view(desired=3, running=3), [task(1), task(2), task(3)]),
    ]
    out = io.StringIO()
    wait_for_services(
        FakeClient(polls), [Watch("web", 7)], printer=ProgressPrinter(out), sleep=lambda s: None
    )
    text = out.getvalue()
    assert "/4:" not in text and "1/3: starting" in text
    assert text.count("1/3: running (old spec)") == 1 and text.count("2/3: running (old spec)") == 1
    assert text.rstrip().endswith("web: converged")


def test_an_automatic_rollback_or_pause_says_why_from_the_update_status():
    """The walk's failing healthcheck printed "the service changed while waiting (version 70, ours 64):
    rolled back after a failure, or updated by someone else"; the leader's reason is in update_status."""
    why = "update failed: 1 of 4 tasks failed within the 4s monitor (max failure ratio 0): task abc unhealthy"
    w = Watch("web", 7)
    assess(w, view(), [task(1)], 0)
    status = {"state": "rollback_started", "reason": why}
    rolling = assess(w, view(version=9, spec={"image": "old"}, update_status=status), [task(1)], 1)
    # as Docker's CLI, the rollback is followed until its tasks converged (the walk's update returned
    # at rollback_started with the service at 1/2); then it fails saying why
    assert rolling.failure is None and not rolling.done and f"(rolling back: {why})" in rolling.summary
    done = {"state": "rollback_completed", "reason": why}
    half = assess(w, view(version=9, running=1, spec={"image": "old"}, update_status=done), [task(1)], 2)
    assert half.failure is None and not half.done
    both = [task(1), task(2)]
    rolled = assess(w, view(version=9, running=2, spec={"image": "old"}, update_status=done), both, 3)
    assert rolled.failure == f"rolled back: {why}" and not rolled.done
    stuck = {"state": "rollback_paused", "reason": "rollback failed: task xyz unhealthy"}
    w2 = Watch("web", 7)
    assess(w2, view(), [task(1)], 0)
    halted = assess(w2, view(version=9, spec={"image": "old"}, update_status=stuck), [task(1)], 1)
    assert halted.failure == "rollback paused: rollback failed: task xyz unhealthy"
    paused = assess(
        Watch("web", 7),
        view(update_paused=True, update_status={"state": "paused", "reason": why}),
        [task(1, health="unhealthy")],
        1,
    )
    assert paused.failure == f"update paused: {why}"


def test_a_scale_down_counts_slots_against_the_new_target():
    w = Watch("web", 7)
    tasks = [task(1), task(2), task(3), task(4, "starting"), task(5, "starting", node="n2")]
    result = assess(w, view(desired=4, running=3), tasks, 0)
    assert result.lines[:4] == (
        "1/4: running              [n1]",
        "2/4: running              [n1]",
        "3/4: running              [n1]",
        "4/4: starting             [n1]",
    )  # was 1/5 .. 5/5 while the target is 4
    assert result.lines[4] == "5: removing             [n2] scaled down to 4"
    assert result.summary == "web: 3/4 tasks running" and not result.done
    # the slot above the target is still up: not converged until it is gone, and not counted
    # (a rollback from 3 to 2 replicas showed "web2: 3/2 tasks running" in the second user walk)
    leaving = assess(w, view(desired=4, running=5), [task(i) for i in range(1, 6)], 1)
    assert not leaving.done and leaving.summary == "web: 4/4 tasks running"
    assert assess(w, view(desired=4, running=4), [task(i) for i in range(1, 5)], 2).done


def test_a_global_service_keeps_counting_its_tasks():
    result = assess(Watch("agent", 7), view(mode="global", desired=2), [task(1), task(2), task(3)], 0)
    assert [line.split(":")[0] for line in result.lines] == ["1/3", "2/3", "3/3"]


def test_a_global_service_with_no_task_yet_never_reads_0_of_0():
    first = assess(Watch("agent", 1), view(name="agent", mode="global", desired=0), [], 0.2)
    assert first.summary == "agent: placing one task on each eligible node" and not first.done
    none_fit = assess(Watch("agent", 1), view(name="agent", mode="global", desired=0), [], 5)
    assert "0/0" not in none_fit.summary and "no node is eligible" in none_fit.summary
    placed = assess(Watch("agent", 1), view(name="agent", mode="global", desired=2), [task(1), task(2)], 0.5)
    assert placed.summary.startswith("agent: ") and "/2 tasks running" in placed.summary


def test_a_slot_its_restart_policy_gave_up_on_fails_the_wait_at_once() -> None:
    """The third user walk: ``service create --restart-condition none`` (or ``--restart-max-attempts 1``)
    on a failing command waited the whole converge timeout (300 s) for a slot the leader will never
    start again; the task's ``not restarted: ...`` message (scheduler/restart.py) ends the wait."""
    spec = {"image": "x", "restart": {"condition": "none"}}
    w = Watch("web", 7)
    assert assess(w, view(desired=1, spec=spec), [], 0).failure is None
    failed = task(1, "failed", error="task exited with code 3", state_at=1.0)
    assert assess(w, view(desired=1, spec=spec), [failed], 1).failure is None  # not yet decided
    over = {**failed, "desired_state": "shutdown", "message": "not restarted: restart condition none"}
    result = assess(w, view(desired=1, spec=spec), [over], 2)
    assert result.failure == "1 tasks failed: task exited with code 3; not restarted: restart condition none"
    scaled_away = {**over, "slot": 2}  # a slot above the target is not waited for
    w2 = Watch("web", 7)
    assert assess(w2, view(desired=1, spec=spec), [], 0).failure is None
    assert assess(w2, view(desired=1, spec=spec), [task(1), scaled_away], 1).failure is None


def test_a_created_services_task_that_exited_before_the_first_poll_is_its_failure():
    """`service create` of a command that exits at once: the first poll may already see the task
    complete; it is the new service's own failure (an update's first poll is its baseline)."""
    looping = [task(1, "complete", tid=f"c{i}", desired_state="shutdown") for i in range(MAX_FAILURES)]
    created = Watch("web", 1, created=True)
    assert assess(created, view(version=1), looping, 0.5).failure  # the first poll: 3 exits of its own
    updated = Watch("web", 1)
    assert assess(updated, view(version=1), looping, 0.5).failure is None  # from before the change


def test_after_a_task_of_ours_exited_a_running_replacement_converges_only_once_it_stays():
    """A replacement caught running between two exits (a command that exits at once, restarted after
    --restart-delay) is not converged: after a failure of ours, convergence must hold for STABLE_S."""
    w = Watch("web", 1, created=True)
    desired1 = view(version=1, desired=1)
    exited = task(1, "complete", tid="c0", desired_state="shutdown")
    assert not assess(w, desired1, [exited], 0.5).done
    running = [exited, task(1, tid="r1")]
    first = assess(w, view(version=1, desired=1, running=1), running, 2.0)
    assert not first.done and "stable" in first.summary
    again = [exited, task(1, "complete", tid="r1", desired_state="shutdown"), task(1, tid="r2")]
    assert not assess(w, view(version=1, desired=1, running=1), again[:2], 3.0).done  # it exited too
    assert not assess(w, view(version=1, desired=1, running=1), again, 4.0).done  # held again from 4.0
    assert not assess(w, view(version=1, desired=1, running=1), again, 8.9).done
    assert assess(w, view(version=1, desired=1, running=1), again, 9.0).done
    clean = Watch("web", 1, created=True)  # no failure of ours: converged at once, as before
    assert assess(clean, view(version=1, desired=1, running=1), [task(1)], 0.5).done


def test_tasks_stopped_unhealthy_count_as_failures_of_the_change():
    """The leader stops a task that fails its health check (state shutdown, message "unhealthy"): when
    that came after the update's monitor, the update completed and the progress waited 300 s, counting
    none of them (a live test's update with --health-cmd 'exit 1' and a 3 s monitor)."""
    w = Watch("web", 7)
    assess(w, view(), [task(1)], 0)
    sick = [
        task(1, "shutdown", tid=f"u{i}", desired_state="shutdown", message="unhealthy", state_at=float(i))
        for i in range(3)
    ]
    result = assess(w, view(running=0), [*sick, task(1, health="starting", tid="u3")], 1)
    assert result.failure == "3 tasks failed: task unhealthy (its health check failed)"
    final = task(2, "shutdown", tid="v", desired_state="shutdown", message="not restarted: unhealthy; 3 of 3")
    w2 = Watch("web", 7)
    assess(w2, view(), [task(1)], 0)
    over = assess(w2, view(running=1), [task(1), final], 1)
    assert over.failure is not None and over.failure.startswith("1 tasks failed: task unhealthy")


def test_a_task_on_a_node_that_does_not_report_it_is_not_counted_running():
    """As ``service ls`` (task_liveness.py): a task kept on a down node reads running but is only its
    node's last report; the wait showed ``2/2 tasks running`` while the view said 1 running."""
    kept = task(2, node="n3", last_report=True, message="node n3 down: its last report (unreachable)")
    result = assess(Watch("web", 7), view(running=1), [task(1), kept], 1)
    assert not result.done and result.summary == "web: 1/2 tasks running"


def test_an_update_converges_only_once_the_leader_judged_it_past_its_monitor():
    """The h48 walk: `service update --image ... app` printed `app: converged` (exit 0) with every task
    running while the leader still monitored them (`service inspect`: `Update: updating`): a task failing
    in that window rolls the service back after the CLI said it was fine. As Docker's CLI ("verify:
    Waiting 5 seconds to verify that tasks are stable"), it waits until the rollout is completed."""
    w = Watch("web", 7)
    both = [task(1), task(2)]
    started = {"state": "updating", "started_at": 1.0, "reason": ""}
    running = assess(w, view(running=2, update_status=started), both, 1)
    assert not running.done and running.failure is None and "verifying" in running.summary
    completed = {**started, "state": "completed"}  # the leader's bookkeeping write: a new version
    assert assess(w, view(version=8, running=2, update_status=completed), both, 6).done
    rollback = {"state": "rollback_started", "started_at": 1.0, "reason": "service rollback"}
    w2 = Watch("web", 7)
    assert not assess(w2, view(running=2, update_status=rollback), both, 1).done
    back = {**rollback, "state": "rollback_completed"}
    assert assess(w2, view(version=8, running=2, update_status=back), both, 6).done
    assert assess(Watch("web", 7, created=True), view(running=2), both, 1).done  # created: no rollout


class _PollClock:
    """Time that moves 50 s per poll (each sleep between polls), however often it is read."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, _s: float) -> None:
        self.t += 50.0


def _waited_out(polls: list) -> str:
    """What ``wait_for_services`` prints for ``web`` over ``polls``, 50 s apart, at the default 300 s."""
    out = io.StringIO()
    clock = _PollClock()
    wait_for_services(
        FakeClient(polls),
        [Watch("web", 7)],
        printer=ProgressPrinter(out),
        timeout_s=300,
        clock=clock.now,
        sleep=clock.sleep,
    )
    return out.getvalue()


def _slow_monitor(state: str = "updating", version: int = 7) -> dict:
    spec = {"image": "x", "update": {"monitor_s": 600.0, "delay_s": 0.0, "parallelism": 1}}
    return view(version=version, running=2, spec=spec, update_status={"state": state, "started_at": 1.0})


def test_a_long_update_monitor_extends_the_converge_timeout_instead_of_failing_a_healthy_update():
    """Convergence waits for the leader's ``completed``, which comes only after ``--update-monitor``: with
    ``--update-monitor 10m`` the default 300 s timeout failed an update whose tasks were all fine."""
    both = [task(1), task(2)]
    # two batches of one (parallelism 1, 2 replicas), each monitored 600 s: ~1,200 s for a healthy update
    polls = [(_slow_monitor(), both)] * 24 + [(_slow_monitor("completed", version=8), both)]
    assert _waited_out(polls).rstrip().endswith("web: converged")
    now = iter(range(0, 10_000, 50))  # a monitor that never ends: the timeout plus the monitor, said so
    with pytest.raises(
        P2POrchError, match="not converged after 1500s; its rollout's monitor was still running"
    ):
        wait_for_services(
            FakeClient([(_slow_monitor(), both)]),
            [Watch("web", 7)],
            printer=ProgressPrinter(io.StringIO()),
            timeout_s=300,
            clock=lambda: float(next(now)),
            sleep=lambda s: None,
        )


def test_the_allowance_is_kept_for_the_polls_after_the_leader_judged_the_rollout():
    """The allowance drops to 0 once the rollout is completed; convergence may need a poll more then (a
    replacement starting): the watch keeps the largest allowance it saw instead of timing out at once."""
    both, one = [task(1), task(2)], [task(1)]
    done = _slow_monitor("completed", version=8)
    polls = [(_slow_monitor(), both)] * 20 + [(done, one), (done, one), (done, both)]
    assert _waited_out(polls).rstrip().endswith("web: converged")


def test_the_monitor_allowance_is_the_judged_policy_s_monitor_and_its_delays():
    spec = {
        "update": {"monitor_s": 60.0, "delay_s": 10.0, "parallelism": 2},
        "rollback": {"monitor_s": 5.0, "delay_s": 0.0, "parallelism": 0},
    }
    assert monitor_allowance_s(view(desired=5, spec=spec, update_status={"state": "updating"})) == 210.0
    assert monitor_allowance_s(view(desired=5, spec=spec, update_status={"state": "rollback_started"})) == 5.0
    assert monitor_allowance_s(view(desired=5, spec=spec, update_status={"state": "completed"})) == 0.0
    assert monitor_allowance_s(view(desired=5, spec=spec)) == 0.0  # created, or no rollout


def test_wait_reads_the_nodes_own_copy_and_polls_again_when_a_read_is_refused():
    # the change was applied on the node it went through before it was acknowledged: no read barrier
    # (a Raft entry per poll); a refusal (StaleReadRefused, 503) is one more poll, not a failed wait
    from p2porch.errors import StaleReadRefused

    class Client(FakeClient):
        def __init__(self, polls):
            super().__init__(polls)
            self.params, self.refuse = [], 1

        def get(self, path, **params):
            self.params.append(params.get("stale"))
            if self.refuse:
                self.refuse -= 1
                raise StaleReadRefused("no barrier round finished in time")
            return super().get(path, **params)

    client = Client([(view(), [task(1, "preparing")]), (view(running=2), [task(1), task(2)])])
    out = io.StringIO()
    wait_for_services(client, [Watch("web", 7)], printer=ProgressPrinter(out), sleep=lambda s: None)
    assert out.getvalue().rstrip().endswith("web: converged")
    assert set(client.params) == {"true"}
