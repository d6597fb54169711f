"""UsageBook: a bounded window of samples per task and the report a node answers ``usage`` with."""

from __future__ import annotations

from p2porch.agent import usage as usage_mod
from p2porch.agent.cgroups import TaskUsage
from p2porch.agent.usage import UsageBook


def use(cores: float, memory: int = 1000) -> TaskUsage:
    return TaskUsage(cores, memory, None, None)


def test_a_task_reports_a_full_window_only_after_one_window_and_means_its_samples() -> None:
    book = UsageBook(window_s=30, sample_s=5)
    book.seen("t1", "s1", 0.0)
    for i in range(1, 6):
        book.record("t1", 5.0 * i, use(0.1 * i, 1000 * i))
    (row,) = book.report(25.0)["tasks"]
    assert row["full"] is False and row["covered_s"] == 25.0
    book.record("t1", 30.0, use(0.6, 6000))
    (row,) = book.report(30.0)["tasks"]
    assert row["full"] is True and row["samples"] == 6
    assert row["cpu_cores"] == 0.35  # mean of 0.1 .. 0.6
    assert row["memory_bytes"] == 3500


def test_old_samples_leave_the_window_and_a_silent_task_is_not_full() -> None:
    book = UsageBook(window_s=10, sample_s=1)
    book.seen("t1", "s1", 0.0)
    for at in range(1, 21):
        book.record("t1", float(at), use(1.0 if at <= 10 else 0.0))
    (row,) = book.report(20.0)["tasks"]
    assert row["cpu_cores"] < 0.1  # the busy first half left the window
    (row,) = book.report(40.0)["tasks"]  # no sample for 20 s
    assert row["full"] is False and row["cpu_cores"] is None


def test_restart_and_forget_bound_what_the_book_keeps(monkeypatch) -> None:
    monkeypatch.setattr(usage_mod, "MAX_TASKS", 2)
    book = UsageBook(window_s=10, sample_s=1)
    for task in ("t1", "t2", "t3"):
        book.seen(task, "s1", 0.0)
    assert book.dropped == 1 and [r["task_id"] for r in book.report(1.0)["tasks"]] == ["t1", "t2"]
    book.record("t1", 11.0, use(0.5))
    book.restart("t1")  # a restarted container: its window starts over
    book.seen("t1", "s1", 12.0)
    rows = {r["task_id"]: r for r in book.report(12.0)["tasks"]}
    assert rows["t1"]["covered_s"] == 0.0 and rows["t1"]["cpu_cores"] is None
    book.forget_except({"t2"})
    assert [r["task_id"] for r in book.report(13.0)["tasks"]] == ["t2"]
    samples = UsageBook(window_s=10, sample_s=1)
    samples.seen("t", "s", 0.0)
    for at in range(1, 1000):
        samples.record("t", float(at), use(0.1))
    assert len(samples._tasks["t"].samples) <= 12  # bounded per task
