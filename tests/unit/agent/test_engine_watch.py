"""The agent's view of its engine and the record writes it asks for: one when the engine goes away (after
``confirm_s`` of failures), one when it is back, none per retry (pure: agent/engine_watch.py)."""

from __future__ import annotations

from p2porch.agent.engine_watch import EngineMark, EngineWatch
from p2porch.model.records import MAX_ENGINE_ERROR

REACHABLE = EngineMark()


def test_nothing_is_written_before_the_engine_was_tried() -> None:
    watch = EngineWatch()
    assert watch.mark(5.0) is None
    assert watch.update(EngineMark(3.0, "old"), 5.0) is None


def test_failures_become_an_outage_after_the_confirm_time_from_the_first_one() -> None:
    watch = EngineWatch(confirm_s=1.0)
    watch.seen(False, "cannot reach the Docker engine: refused", 10.0)
    assert watch.update(REACHABLE, 10.5) is None and watch.wake_at(10.5) == 11.0
    watch.seen(False, "another error", 10.8)
    down = watch.update(REACHABLE, 11.0)
    assert down == EngineMark(10.0, "cannot reach the Docker engine: refused")
    assert watch.wake_at(11.0) is None  # nothing more to wait for
    for t in (12.0, 13.0, 60.0):  # every retry fails: the record already says so
        watch.seen(False, f"refused at {t}", t)
        assert watch.update(down, t) is None


def test_a_failure_followed_by_an_answer_within_the_confirm_time_writes_nothing() -> None:
    watch = EngineWatch(confirm_s=1.0)
    watch.seen(True, "", 1.0)
    assert watch.update(REACHABLE, 1.0) is None
    watch.seen(False, "stream broke off", 2.0)
    watch.seen(True, "", 2.5)
    assert watch.update(REACHABLE, 5.0) is None and watch.wake_at(5.0) is None


def test_the_engine_back_clears_the_record_once() -> None:
    watch = EngineWatch(confirm_s=1.0)
    recorded = EngineMark(10.0, "refused")
    watch.seen(False, "refused", 20.0)  # a restarted daemon whose engine is still away: already recorded
    assert watch.update(recorded, 25.0) is None
    watch.seen(True, "", 30.0)
    assert watch.update(recorded, 30.0) == REACHABLE
    assert watch.update(REACHABLE, 31.0) is None


def test_a_long_error_is_cut_to_what_the_record_takes() -> None:
    watch = EngineWatch(confirm_s=0.0)
    watch.seen(False, "x" * 1000, 1.0)
    mark = watch.update(REACHABLE, 1.0)
    assert mark is not None and len(mark.error) == MAX_ENGINE_ERROR


def test_the_confirm_time_is_measured_on_the_monotonic_clock_and_the_record_shows_the_wall_time() -> None:
    """A wall clock stepped an hour back or forward between two failures neither delays nor hastens the
    outage; the mark shows the wall time of the first failure (for ``node inspect``)."""
    for step in (-3600.0, 3600.0):
        watch = EngineWatch(confirm_s=1.0)
        watch.seen(False, "refused", 100.0, wall=1_700_000_000.0)
        watch.seen(False, "refused", 100.5, wall=1_700_000_000.5 + step)
        assert watch.update(REACHABLE, 100.9) is None and watch.wake_at(100.9) == 101.0
        assert watch.update(REACHABLE, 101.0) == EngineMark(1_700_000_000.0, "refused")
