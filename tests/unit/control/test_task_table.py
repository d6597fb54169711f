"""`service ps` and `stack ps` print one table: every task row has a cell for every column."""

from __future__ import annotations

from p2porch.cli.service_rows import TASK_COLUMNS, task_row
from p2porch.cli.util import table

TASK = {
    "id": "0123456789abcdef",
    "name": "web.1",
    "node": "n1",
    "desired_state": "running",
    "state": "running",
    "health": "healthy",
    "state_at": 0,
    "error": "",
    "message": "started",
}


def test_a_task_row_fills_every_column_with_or_without_usage() -> None:
    for task in (TASK, {**TASK, "usage": {"cpu_cores": 0.125, "cpu_percent": 12.5, "memory_bytes": 3 << 20}}):
        row = task_row(task)
        assert len(row) == len(TASK_COLUMNS)
        assert "web.1" in table(TASK_COLUMNS, [row])


def test_a_job_task_row_names_its_execution() -> None:
    """``service ps`` of a cron job lists ``tick.1`` once per tick: the execution tells them apart."""
    done = {
        **TASK,
        "desired_state": "shutdown",
        "state": "complete",
        "message": "job task done",
        "job_iteration": 3,
    }
    assert task_row(done)[-1] == "job task done (execution 3)"
    failed = {**done, "state": "failed", "error": "task exited with code 3", "job_iteration": 1}
    assert task_row(failed)[-1] == "task exited with code 3 (execution 1)"
    assert task_row({**done, "message": "", "job_iteration": 2})[-1] == "execution 2"
    assert task_row({**TASK, "job_iteration": 0})[-1] == "started"  # a service's task: as before
