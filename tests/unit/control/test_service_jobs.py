"""Jobs through the CLI (exit 2 naming the flag before anything is sent) and ServiceOps over the real FSM:
execution numbers on create, update and --force; refusals that keep the stored spec unchanged."""

from __future__ import annotations

import pytest

from p2porch.cli import build_parser, main
from p2porch.cli.cluster import render_status
from p2porch.cli.service_rows import job_progress_text, service_row
from p2porch.cli.service_spec_flags import spec_changes
from p2porch.cli.service_spec_flags import validated_spec as _validated
from p2porch.errors import ConfigError, NotAllowedError
from p2porch.model import ServiceSpec, Task
from p2porch.raft import commands as C


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--max-concurrent", "2"], "--max-concurrent"),
        (["--mode", "global-job", "--max-concurrent", "2"], "--max-concurrent"),
        (["--schedule", "*/5 * * * *"], "--schedule"),
        (["--mode", "replicated-job", "--schedule", "0 0 31 2 *"], "--schedule"),
        (["--mode", "replicated-job", "--schedule", "* * * *"], "--schedule"),
        (
            ["--mode", "replicated-job", "--schedule", "@daily", "--schedule-timezone", "Nowhere/X"],
            "--schedule-timezone",
        ),
        (["--mode", "replicated-job", "--schedule", "@daily", "--history-limit", "1000"], "--history-limit"),
        (
            ["--mode", "replicated-job", "--schedule", "@daily", "--starting-deadline", "soon"],
            "--starting-deadline",
        ),
        (["--mode", "replicated-job", "--schedule-timezone", "UTC"], "--schedule"),
        (["--mode", "sometimes"], "--mode"),
    ],
)
def test_bad_job_flags_exit_2_naming_the_flag(capsys, argv, flag):
    try:
        code = main(
            ["--host", "unix:///nonexistent/p2porch.sock", "service", "create", "--name", "j", *argv, "x"]
        )
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert flag in err
    assert "daemon" not in err.lower()  # refused before any request


def test_job_flags_reach_the_spec():
    argv = [
        "service", "create", "--name", "j", "--mode", "replicated-job", "--replicas", "6",
        "--max-concurrent", "2", "--schedule", "*/5 * * * *", "--schedule-timezone", "Europe/Paris",
        "--concurrency", "replace",
        "--history-limit", "5", "--starting-deadline", "2m", "busybox", "true",
    ]  # fmt: skip
    spec = _validated(spec_changes(build_parser().parse_args(argv)))
    assert (spec["mode"], spec["replicas"], spec["max_concurrent"]) == ("replicated-job", 6, 2)
    assert spec["schedule"] == {
        "cron": "*/5 * * * *",
        "timezone": "Europe/Paris",
        "concurrency": "replace",
        "history_limit": 5,
        "starting_deadline_s": 120.0,
    }


def test_progress_text_is_docker_s_replicas_column_of_a_job():
    """Docker's ``service ls`` of a job: ``running/desired (completed/total completed)`` (its docs:
    ``2/2 (0/4 completed)`` for ``--replicas 4 --max-concurrent 2``); slots that gave up are added."""
    job = {"iteration": 1, "completed": 0, "total": 4, "running": 2, "failed": 0}
    assert job_progress_text({**job, "tasks_running": 2, "tasks_desired": 2}) == "2/2 (0/4 completed)"
    done = {**job, "completed": 3, "total": 3, "running": 0, "tasks_running": 0, "tasks_desired": 3}
    assert job_progress_text(done) == "0/3 (3/3 completed)"
    failed = {**done, "completed": 2, "failed": 1}
    assert job_progress_text(failed) == "0/3 (2/3 completed, 1 failed)"


def test_a_cron_jobs_progress_says_its_next_tick_also_after_its_first_execution():
    """``service ls`` of a cron job that ran: when it runs next (it said so only before its first tick)."""
    tick = 1_796_537_400.0  # 2026-12-06 06:10:00 UTC
    cron = {"schedule": "* * * * *", "next_tick": tick, "completed": 0, "total": 0, "running": 0, "failed": 0}
    assert job_progress_text({**cron, "iteration": 0}) == "0/0 (next 06:10:00 UTC)"
    done = {**cron, "iteration": 3, "completed": 1, "total": 1, "tasks_running": 0, "tasks_desired": 1}
    assert job_progress_text(done) == "0/1 (1/1 completed, next 06:10:00 UTC)"
    running = {**done, "completed": 0, "running": 1, "tasks_running": 1}
    assert job_progress_text(running) == "1/1 (0/1 completed, next 06:10:00 UTC)"


async def put(manager, *tasks: Task) -> None:
    await manager.write(C.PutTasks(at=3.0, items=tuple(C.TaskPut(t, task_version=0) for t in tasks)).encode())


async def test_job_tasks_show_swarm_s_desired_state_and_ls_swarm_s_counts(ops, manager):
    """``service ps`` of a job as Docker's: DESIRED STATE ``complete`` for its tasks, running or done;
    ``shutdown`` for one told to stop before it completed. ``service ls``: ``running/max concurrent
    (completed/total completed)``. A service's tasks keep ``running``."""
    created = await ops.create(
        {"name": "j", "image": "busybox", "mode": "replicated-job", "replicas": 4, "max_concurrent": 2}
    )
    sid = created["id"]
    await put(
        manager,
        Task("done", sid, 1, None, "shutdown", "complete", 10.0, job_iteration=1),
        Task("runs", sid, 2, None, "running", "running", 11.0, job_iteration=1),
        Task("stopped", sid, 3, None, "shutdown", "shutdown", 12.0, job_iteration=1),
        Task("starts", sid, 3, None, "running", "pending", 13.0, job_iteration=1),
    )
    desired = {t["id"]: t["desired_state"] for t in ops.tasks("j")}
    assert desired == {"done": "complete", "runs": "complete", "stopped": "shutdown", "starts": "complete"}
    assert [t["id"] for t in ops.tasks("j", include_history=False)] == ["runs", "starts"]
    (view,) = ops.list_all()
    assert service_row(view)[3] == "1/2 (1/4 completed)"
    # the API's top-level counts are service ls's (they were completed/total, 1/4), status says as ls
    status = render_status(
        {
            "node": {"name": "n1", "advertise_addr": "10.0.0.1"},
            "daemon": {"pid": 1, "version": "0", "uptime_s": 1},
            "cluster": {"cluster_id": "c", "has_quorum": True, "voters": []},
            "services": [view],
        }
    )
    assert "service:  j 1/2 (1/4 completed)" in status, status
    assert (
        (view["running"], view["desired"])
        == (1, 2)
        == (view["job"]["tasks_running"], view["job"]["tasks_desired"])
    )
    await ops.create({"name": "web", "image": "busybox"})
    web = manager.state.service_by_name("web")
    assert web is not None
    await put(manager, Task("w1", web.service_id, 1, None, "running", "running", 14.0))
    assert [t["desired_state"] for t in ops.tasks("web")] == ["running"]


async def test_plain_job_starts_execution_one_and_every_update_or_force_starts_the_next(ops, manager):
    created = await ops.create({"name": "j", "image": "busybox", "mode": "replicated-job", "replicas": 2})
    assert created["job"]["iteration"] == 1 and created["job"]["total"] == 2
    assert "job_iteration" not in created["spec"]  # bookkeeping stays out of the user's spec
    assert manager.state.services[created["id"]].job_iteration == 1
    forced = await ops.update("j", {"force": True})
    assert forced["job"]["iteration"] == 2
    assert forced["changed"] == ["execution"]  # written: the CLI must not say "nothing changed"
    changed = await ops.update("j", {"replicas": 3})
    assert changed["job"]["iteration"] == 3 and changed["job"]["total"] == 3
    assert changed["desired"] == 2  # at once: its replicas at create (r52g: max_concurrent stored)
    # any change of a plain job runs it again: the answer says so, as --force's (h52a: `service scale
    # batch=3` of a done job started execution 3 and the CLI said only "batch scaled to 3")
    assert changed["changed"] == ["replicas", "execution"]
    scaled = await ops.scale("j", 4)
    assert scaled["job"]["iteration"] == 4 and "execution" in scaled["changed"]


async def test_a_jobs_template_change_is_no_rollout_left_updating(ops, manager):
    """h52a: ``service update --env-add X=1 batch`` wrote a rollout (``updating``) no one completes (jobs
    are not rolled: the change starts an execution), so ``service inspect`` and the web UI said
    ``updating`` for ever; a job's change writes none, and a record already stuck shows none."""
    created = await ops.create({"name": "j", "image": "busybox", "mode": "replicated-job"})
    updated = await ops.update("j", {"env": {"X": "1"}})
    assert updated["changed"] == ["env", "execution"]
    assert manager.state.services[created["id"]].rollout is None
    assert updated["update_status"] is None


async def test_cron_job_waits_for_its_tick_and_only_force_starts_an_execution(ops, manager):
    ops.clock = _FixedClock(1_767_225_605.0)
    created = await ops.create(
        {"name": "c", "image": "busybox", "mode": "replicated-job", "schedule": "* * * * *"}
    )
    stored = manager.state.services[created["id"]]
    assert (stored.job_iteration, stored.cron_last_tick) == (0, 1_767_225_605.0)
    assert created["job"]["next_tick"] == 1_767_225_660.0
    updated = await ops.update("c", {"schedule": {"timezone": "Europe/Paris"}})
    stored = manager.state.services[updated["id"]]
    assert stored.job_iteration == 0 and stored.spec.schedule is not None
    assert "execution" not in updated["changed"]  # a cron job's change waits for its next tick
    assert (stored.spec.schedule.cron, stored.spec.schedule.timezone) == ("* * * * *", "Europe/Paris")
    forced = await ops.update("c", {"force": True})
    assert forced["job"]["iteration"] == 1
    assert manager.state.services[forced["id"]].cron_last_tick == 1_767_225_605.0


async def test_refusals_write_nothing(ops, manager):
    await ops.create({"name": "svc", "image": "busybox"})
    await ops.create({"name": "j", "image": "busybox", "mode": "global-job"})
    before = manager.writes
    for ref, mode in [("svc", "replicated-job"), ("j", "global")]:
        with pytest.raises(NotAllowedError) as refused:
            await ops.update(ref, {"mode": mode})
        assert refused.value.field == "mode"
    for ref, changes, fieldname in [
        ("svc", {"schedule": "@daily"}, "schedule"),
        ("j", {"max_concurrent": 2}, "max_concurrent"),
    ]:
        with pytest.raises(ConfigError) as info:
            await ops.update(ref, changes)
        assert info.value.field == fieldname, (ref, changes, info.value)
    with pytest.raises(NotAllowedError):  # refused operations: exit 1 from the CLI, as Docker's
        await ops.rollback("j")
    with pytest.raises(NotAllowedError, match="^scale can only be used with replicated or replicated-job"):
        await ops.scale("j", 3)  # not starting with the name: the CLI puts the SERVICE as given first
    assert manager.writes == before


async def test_force_on_a_service_rolls_every_task_as_dockers_force_update(ops, manager):
    """``service update --force`` of a service (not a job) was refused (exit 2); as Docker's
    ``ForceUpdate`` counter it now gives the tasks a new template, so the leader replaces each by the
    update policy, and records a rollback point like any update."""
    created = await ops.create({"name": "svc", "image": "busybox"})
    before = manager.state.services[created["id"]]
    forced = await ops.update("svc", {"force": True})
    after = manager.state.services[created["id"]]
    assert forced["changed"] == ["force_update"]
    assert after.spec.force_update == 1 and after.spec.template_hash() != before.spec.template_hash()
    assert after.previous_spec == before.spec and after.rollout is not None
    again = await ops.update("svc", {"force": True, "image": "busybox:2"})
    assert again["changed"] == ["force_update", "image"]
    assert manager.state.services[created["id"]].spec.force_update == 2


def test_force_update_keeps_older_specs_stored_form_and_hash():
    from p2porch.model import ServiceSpec

    plain = ServiceSpec.from_dict({"name": "s", "image": "i"})
    assert "force_update" not in plain.to_dict() and "force_update" not in plain.template_dict()
    forced = ServiceSpec.from_dict({"name": "s", "image": "i", "force_update": 3})
    assert ServiceSpec.from_dict(forced.to_dict()) == forced
    assert forced.template_hash() != plain.template_hash()


class _FixedClock:
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return 0.0


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (
            {"mode": "replicated-job", "changed": ["execution"], "job": {"iteration": 2}},
            "batch: execution 2 started",
        ),
        ({"mode": "replicated", "changed": ["resumed"]}, "batch: update resumed"),
    ],
)
def test_cli_update_that_wrote_without_a_spec_change_says_what_it_did_not_nothing_changed(
    monkeypatch, capsys, answer, said
):
    """The h41 user walk: README's ``service update batch --force  # run a job again`` started the
    execution but printed ``batch: nothing changed (no rollback point recorded)``; so did an update
    that resumed a paused rollout (and it did not wait for it)."""
    from p2porch.cli import service as cli_service

    posted: list[dict] = []
    waited: list[list] = []

    class Api:
        def post(self, path, body=None):
            posted.append(body)
            return {"id": "0123456789abcdef", "name": "batch", "version": 5, **answer}

    monkeypatch.setattr(cli_service, "client_for", lambda args: Api())
    monkeypatch.setattr(cli_service, "wait_after", lambda args, client, watches: waited.append(watches))
    assert main(["service", "update", "batch", "--force"]) == 0
    out = capsys.readouterr()
    assert posted == [{"force": True}] and out.out == "batch\n"
    assert said in out.err and "nothing changed" not in out.err
    assert len(waited) == 1  # then waited for as any update (a job: nothing to wait for)


def test_cli_scale_of_a_job_says_the_execution_it_started(monkeypatch, capsys):
    """h52a: ``service scale batch=3`` of a job that had completed ran it again (a new execution) and
    said only ``batch scaled to 3``; it says ``batch: execution 3 started`` as ``update --force`` does."""
    from p2porch.cli import service as cli_service

    answers = {
        "batch": {"mode": "replicated-job", "changed": ["replicas", "execution"], "job": {"iteration": 3}},
        "web": {"mode": "replicated", "changed": ["replicas"]},
    }

    class Api:
        def post(self, path, body=None):
            name = path.split("/")[2]
            return {"id": "0123456789abcdef", "name": name, "version": 5, **answers[name]}

    monkeypatch.setattr(cli_service, "client_for", lambda args: Api())
    monkeypatch.setattr(cli_service, "wait_after", lambda args, client, watches: None)
    assert main(["service", "scale", "batch=3", "web=2"]) == 0
    out = capsys.readouterr()
    assert out.out == "batch scaled to 3\nweb scaled to 2\n"
    assert out.err == "batch: execution 3 started\n"


async def test_a_job_created_without_max_concurrent_keeps_its_count_at_once_when_scaled(ops, manager):
    """r52g: ``max_concurrent`` 0 followed ``replicas``, so ``service scale batch=10`` of a job created with
    ``--replicas 2`` ran 10 tasks at once; Swarm's scale changes the completions (docker/cli stores
    MaxConcurrent = replicas at create). A create stores it; one given, another mode or a stored 0 keep
    theirs."""
    created = await ops.create({"name": "j", "image": "busybox", "mode": "replicated-job", "replicas": 2})
    assert manager.state.services[created["id"]].spec.max_concurrent == 2
    await ops.scale("j", 10)
    spec = manager.state.services[created["id"]].spec
    assert (spec.replicas, spec.job_concurrency) == (10, 2)
    given = await ops.create(
        {"name": "g", "image": "busybox", "mode": "replicated-job", "replicas": 4, "max_concurrent": 3}
    )
    assert manager.state.services[given["id"]].spec.max_concurrent == 3
    for mode in ("replicated", "global-job"):
        other = await ops.create({"name": mode, "image": "busybox", "mode": mode})
        assert manager.state.services[other["id"]].spec.max_concurrent == 0
    # a record stored before keeps following its replicas
    old = ServiceSpec.from_dict({"name": "old", "image": "busybox", "mode": "replicated-job", "replicas": 2})
    await manager.write(C.CreateService(at=0.0, service_id="o1", spec=old).encode())
    await ops.scale("old", 5)
    assert manager.state.services["o1"].spec.max_concurrent == 0
    assert manager.state.services["o1"].spec.job_concurrency == 5


async def test_a_scale_of_a_job_to_its_count_runs_it_again_as_swarm_a_cron_jobs_waits(ops, manager):
    """r52g: Swarm's scale always bumps a job's JobIteration; ``service scale batch=2`` of a done job at 2
    answered ``already_at`` and wrote nothing. A plain job's scale runs a new execution at any count; a
    cron job's change waits for its tick, so at its count nothing is written."""
    created = await ops.create({"name": "j", "image": "busybox", "mode": "replicated-job", "replicas": 2})
    assert created["job"]["iteration"] == 1
    again = await ops.scale("j", 2)
    assert "already_at" not in again and again["job"]["iteration"] == 2
    assert "execution" in again["changed"]
    assert manager.state.services[created["id"]].spec.replicas == 2
    await ops.create({"name": "c", "image": "busybox", "mode": "replicated-job", "schedule": "* * * * *"})
    writes = manager.writes
    waits = await ops.scale("c", 1)
    assert waits["already_at"] == 1 and manager.writes == writes


def test_a_stack_replicated_job_stores_its_replicas_as_max_concurrent():
    """As docker/cli's stack deploy: a replicated-job without ``max_concurrent`` gets its replicas (the
    daemon's reading of the stack's specs, so a redeploy compares with what the create stored)."""
    from p2porch.control.stack_ops import parse_deploy_body

    labels = {"p2porch.stack": "st", "p2porch.stack.service": "j"}
    spec = {"name": "st-j", "image": "busybox", "mode": "replicated-job", "replicas": 3, "labels": labels}
    definition, _ = parse_deploy_body("st", {"services": [{"short": "j", "spec": spec}]})
    assert definition.services[0].spec["max_concurrent"] == 3
