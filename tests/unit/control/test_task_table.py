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
