"""Constructs of the nineteenth real-world sample (docs/stack.md, "Nineteenth sample"), and the redeploy of a
stack whose services wait for a dependency (``depends_on`` conditions): only the tasks of the dependency's
current spec count. On a redeploy that updated a migration job, its previous run completed long ago and used
to satisfy ``service_completed_successfully`` at once, so the app rolled out before the new migration ran
(``docker compose up`` waits for the recreated container)."""

from __future__ import annotations

from p2porch.stack.rollout import dependency_ready

DONE = {
    "service": "s-migrate",
    "desired_state": "shutdown",
    "state": "complete",
    "exit_code": 0,
    "up_to_date": True,
}
OLD_DONE = {**DONE, "up_to_date": False}
NEW_RUNNING = {**DONE, "desired_state": "running", "state": "running", "exit_code": None}
OLD_RUNNING = {**NEW_RUNNING, "up_to_date": False}


def test_a_redeploy_waits_for_the_updated_dependencys_own_run_not_its_previous_one() -> None:
    # the migration's image changed: its old task completed, the new one runs (or is not created yet)
    for condition in ("service_completed_successfully", "service_started"):
        assert not dependency_ready("s-migrate", condition, [OLD_DONE], 1), condition
    assert not dependency_ready("s-migrate", "service_completed_successfully", [OLD_DONE, NEW_RUNNING], 1)
    assert dependency_ready("s-migrate", "service_completed_successfully", [OLD_DONE, DONE], 1)
    assert dependency_ready("s-migrate", "service_started", [OLD_DONE, NEW_RUNNING], 1)


def test_a_replaced_task_still_running_or_healthy_satisfies_nothing() -> None:
    healthy = {**OLD_RUNNING, "health": "healthy"}
    assert not dependency_ready("s-migrate", "service_healthy", [healthy], 1)
    assert not dependency_ready("s-migrate", "service_started", [OLD_RUNNING], 1)
    starting = {**NEW_RUNNING, "health": "starting"}
    assert not dependency_ready("s-migrate", "service_healthy", [healthy, starting], 1)
    assert dependency_ready("s-migrate", "service_healthy", [healthy, {**starting, "health": "healthy"}], 1)


def test_an_unchanged_dependencys_earlier_run_still_holds() -> None:
    # not rewritten by the redeploy: its tasks are of the current spec, and a done job is not run again
    assert dependency_ready("s-migrate", "service_completed_successfully", [DONE], 1)
    row = {k: v for k, v in DONE.items() if k != "up_to_date"}  # a daemon whose rows do not say
    assert dependency_ready("s-migrate", "service_completed_successfully", [row], 1)


def test_a_jobs_earlier_execution_counts_for_nothing() -> None:
    first = {**DONE, "job_iteration": 1}
    assert dependency_ready("s-migrate", "service_completed_successfully", [first], 1, iteration=1)
    # an update that reran the job without changing its template: execution 2 is what the app waits for
    assert not dependency_ready("s-migrate", "service_completed_successfully", [first], 1, iteration=2)
    second = {**first, "job_iteration": 2}
    assert dependency_ready("s-migrate", "service_completed_successfully", [first, second], 1, iteration=2)
