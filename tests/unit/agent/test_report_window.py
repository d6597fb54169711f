"""ReportWindow (agent/report_window.py): how long a batch of task reports stays open."""

from __future__ import annotations

import pytest

from p2porch.agent.report_window import ReportWindow, settled
from p2porch.model import TaskState


def test_a_batch_with_a_settled_report_closes_after_settle_s() -> None:
    window = ReportWindow(settle_s=0.1, hold_s=1.0, max_batch=64)
    assert window.due_at(10.0, 3, any_settled=True) == pytest.approx(10.1)


def test_a_batch_of_starts_only_is_held_up_to_hold_s() -> None:
    window = ReportWindow(settle_s=0.1, hold_s=1.0, max_batch=64)
    assert window.due_at(10.0, 3, any_settled=False) == pytest.approx(11.0)
    assert ReportWindow(settle_s=0.2, hold_s=0.0).due_at(10.0, 1, any_settled=False) == pytest.approx(10.2)


def test_a_full_batch_is_due_at_once() -> None:
    window = ReportWindow(settle_s=0.1, hold_s=1.0, max_batch=4)
    assert window.due_at(10.0, 4, any_settled=False) == 10.0
    assert window.due_at(10.0, 5, any_settled=True) == 10.0


def test_only_starting_is_transitional() -> None:
    assert not settled(TaskState.STARTING)
    assert all(settled(s) for s in TaskState if s != TaskState.STARTING)


def test_bad_windows_are_refused() -> None:
    for kwargs in ({"settle_s": -1.0}, {"hold_s": -0.1}, {"max_batch": 0}):
        with pytest.raises(ValueError, match="report window"):
            ReportWindow(**kwargs)  # type: ignore[arg-type]
