"""`depends_on: {condition: service_completed_successfully}` on a dependency that fails for good: the pure
verdict (``stack/rollout.dependency_failed``) and `stack deploy` over a fake API ending at once with exit 1
naming the service, without sending the dependent's wave (before: it polled until ``--wait-timeout``); and
the daemon's warnings (a relabelled stack network left as it is), answered by each wave, printed once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from p2porch.cli import main
from p2porch.cli import stack as cli_stack
from p2porch.stack.rollout import dependency_failed, dependency_ready

MIGRATE = "shop-migrate"
COMPLETED = "service_completed_successfully"


def task(state: str, message: str = "", **more: Any) -> dict[str, Any]:
    return {
        "service": MIGRATE,
        "name": f"{MIGRATE}.1",
        "slot": 1,
        "state": state,
        "desired_state": "shutdown",
        "message": message,
        "up_to_date": True,
        "state_at": 1.0,
        **more,
    }


GAVE_UP = task(
    "failed",
    "not restarted: restart condition none",
    exit_code=3,
    error="task: non-zero exit (3)",
    state_at=9.0,
)
RETRIED = task("failed", "", exit_code=1, error="task: non-zero exit (1)")  # on-failure: restarted later


def test_a_service_whose_restart_policy_gave_up_has_failed_naming_the_task():
    reason = dependency_failed(MIGRATE, COMPLETED, [RETRIED, GAVE_UP])
    assert reason == (
        "shop-migrate did not complete successfully: 1 of its tasks failed for good (shop-migrate.1: "
        "exit code 3; task: non-zero exit (3); not restarted: restart condition none)"
    )
    assert not dependency_ready(MIGRATE, COMPLETED, [RETRIED, GAVE_UP], 1)


@pytest.mark.parametrize(
    "tasks",
    [
        [],  # not run yet
        [RETRIED],  # failed, and its policy restarts it (on-failure without max_attempts)
        [task("running", desired_state="running")],
        [task("complete", "not restarted: completed (restart condition on-failure)")],  # done: ready
        [{**GAVE_UP, "up_to_date": False}],  # what the spec before the update ran counts for nothing
        [{**GAVE_UP, "service": "shop-other"}],
    ],
)
def test_a_dependency_that_may_still_complete_has_not_failed(tasks):
    assert dependency_failed(MIGRATE, COMPLETED, tasks) == ""


def test_only_completed_successfully_fails_on_a_failure():
    for condition in ("service_started", "service_healthy"):
        assert dependency_failed(MIGRATE, condition, [GAVE_UP]) == ""


def test_a_job_fails_by_its_current_execution_slots_the_scheduler_gave_up_on():
    given_up = task(
        "failed",
        "not restarted: 2 restart attempts used (restart max attempts)",
        job_iteration=2,
        exit_code=1,
    )
    job = {"iteration": 2, "failed": 1, "completed": 0, "total": 1}
    assert dependency_failed(MIGRATE, COMPLETED, [given_up], job).startswith(
        "shop-migrate did not complete successfully: 1 of its tasks failed for good (shop-migrate.1: "
        "exit code 1"
    )
    old = {**given_up, "job_iteration": 1}  # an earlier execution's failure counts for nothing
    assert dependency_failed(MIGRATE, COMPLETED, [old], job) == ""


def test_a_job_slot_a_restart_window_restarts_later_or_the_view_counts_has_not_failed():
    """The view's ``failed`` is a count at one time; a window's give-up restarts once the window holds
    fewer restarts: neither is final (before: the view's count ended ``stack deploy`` with exit 1)."""
    job = {"iteration": 2, "failed": 1, "completed": 0, "total": 1}
    retried = task("failed", "", job_iteration=2, exit_code=1)
    windowed = task("failed", "failed: no more restart attempts", job_iteration=2, exit_code=1)
    assert dependency_failed(MIGRATE, COMPLETED, [retried], job) == ""
    assert dependency_failed(MIGRATE, COMPLETED, [windowed], job) == ""


COMPOSE = """
services:
  migrate:
    image: busybox
    command: ["false"]
    restart: "no"
  web:
    image: busybox
    depends_on:
      migrate: {condition: service_completed_successfully}
"""


class Api:
    """`stack deploy`'s view of the daemon: the first wave is accepted; the migration's task then does
    what ``outcomes`` says, one state per poll."""

    def __init__(self, outcomes: list[dict[str, Any]], warnings: tuple[str, ...] = ()) -> None:
        self.outcomes = outcomes
        self.warnings = list(warnings)
        self.polls = 0
        self.waves: list[list[str]] = []

    def get(self, path: str, **_: Any) -> Any:
        if path == "/stacks/shop/tasks":
            self.polls += 1
            return [self.outcomes[min(self.polls, len(self.outcomes)) - 1]]
        if path.startswith("/objects/"):
            return []
        if path.startswith("/services/"):
            return {"name": path.split("/")[2], "version": 1, "mode": "replicated"}
        raise AssertionError(path)

    def post(self, path: str, body: Any) -> Any:
        assert path == "/stacks/shop"
        names = [s["spec"]["name"] for s in body["services"]]
        self.waves.append(names)
        rows = [{"name": n, "action": "created", "id": n} for n in names]
        return {"stack": "shop", "services": rows, **({"warnings": self.warnings} if self.warnings else {})}


def deploy(tmp_path: Path, api: Api, monkeypatch: pytest.MonkeyPatch) -> int:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE)
    monkeypatch.setattr(cli_stack, "client_for", lambda args: api)
    monkeypatch.setattr(cli_stack.time, "sleep", lambda s: None)  # polls without waiting
    return main(["stack", "deploy", "-d", "-c", str(compose), "--wait-timeout", "300", "shop"])


def test_deploy_fails_at_once_naming_the_failed_dependency(tmp_path, monkeypatch, capsys):
    api = Api([task("running", desired_state="running"), RETRIED, GAVE_UP])
    assert deploy(tmp_path, api, monkeypatch) == 1
    err = capsys.readouterr().err
    assert "depends_on: shop-migrate did not complete successfully" in err and "exit code 3" in err, err
    assert api.polls == 3 and api.waves == [["shop-migrate"]]  # the dependent was never sent


def test_deploy_goes_on_once_a_retried_dependency_completes(tmp_path, monkeypatch):
    done = task("complete", "not restarted: completed (restart condition on-failure)")
    api = Api([RETRIED, RETRIED, done])
    assert deploy(tmp_path, api, monkeypatch) == 0
    assert api.polls == 3 and api.waves == [["shop-migrate"], ["shop-migrate", "shop-web"]]


def test_the_daemons_warnings_are_printed_once_over_the_waves(tmp_path, monkeypatch, capsys):
    warning = "networks.front.labels: network 'shop_front' exists with other labels and is left as it is"
    done = task("complete", "not restarted: completed (restart condition on-failure)")
    api = Api([done], warnings=(warning,))
    assert deploy(tmp_path, api, monkeypatch) == 0
    err = capsys.readouterr().err
    assert len(api.waves) == 2 and err.count(f"warning: {warning}") == 1, err
