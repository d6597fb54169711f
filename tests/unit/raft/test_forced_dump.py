"""A forced log compaction is kept until a dump covers it, and pysyncobj is asked only when a tick can
start one (raft/forced_dump.py)."""

from __future__ import annotations

from p2porch.raft.forced_dump import ForcedDump


def test_nothing_asked_nothing_forced() -> None:
    forced = ForcedDump()
    assert not forced.pending
    assert not forced.step(applied=17, log_first=1, dumping=False, last_dumped=None)


def test_a_request_made_before_anything_was_applied_waits_for_entries_then_forces() -> None:
    """The control-plane bench's stuck follower: asked while it had applied only the log's first entry
    (the leader had not reached it yet), pysyncobj cleared its flag and wrote nothing."""
    forced = ForcedDump()
    forced.ask()
    assert forced.pending
    assert not forced.step(applied=1, log_first=1, dumping=False, last_dumped=None)  # pysyncobj would drop it
    assert forced.pending
    # the leader's snapshot arrived: applied 17, the log now starts at 16
    assert forced.step(applied=17, log_first=16, dumping=False, last_dumped=None)
    assert forced.step(applied=17, log_first=16, dumping=False, last_dumped=None)  # not taken yet: again
    assert not forced.step(applied=17, log_first=16, dumping=True, last_dumped=None)  # the child runs
    assert forced.pending
    assert not forced.step(applied=17, log_first=17, dumping=False, last_dumped=16)  # covers 17: done
    assert not forced.pending
    assert not forced.step(applied=18, log_first=17, dumping=False, last_dumped=16)


def test_a_failed_dump_is_asked_for_again() -> None:
    forced = ForcedDump()
    forced.ask()
    assert forced.step(applied=9, log_first=1, dumping=False, last_dumped=None)
    assert not forced.step(applied=9, log_first=1, dumping=True, last_dumped=None)
    # the child failed: no dump, nothing in progress; pysyncobj would not ask again below its thresholds
    assert forced.step(applied=9, log_first=1, dumping=False, last_dumped=None)
    assert forced.pending


def test_a_dump_older_than_the_request_does_not_count() -> None:
    forced = ForcedDump()
    forced.ask()
    assert not forced.step(applied=30, log_first=1, dumping=True, last_dumped=None)  # an older one runs
    assert forced.step(applied=30, log_first=21, dumping=False, last_dumped=20)  # it covered 21 only
    assert not forced.step(applied=31, log_first=30, dumping=False, last_dumped=29)  # covers 30: done
    assert not forced.pending


def test_a_dump_already_at_the_applied_entry_is_enough() -> None:
    """pysyncobj writes nothing when its last dump is at the entry before the applied one (it would be the
    same dump): the request is done, not forced every tick for ever."""
    forced = ForcedDump()
    forced.ask()
    assert not forced.step(applied=12, log_first=11, dumping=False, last_dumped=11)
    assert not forced.pending


def test_a_request_made_while_one_is_pending_covers_what_is_applied_then() -> None:
    forced = ForcedDump()
    forced.ask()
    assert forced.step(applied=5, log_first=1, dumping=False, last_dumped=None)
    forced.ask()
    assert forced.step(applied=8, log_first=1, dumping=False, last_dumped=None)
    assert forced.step(applied=8, log_first=5, dumping=False, last_dumped=4)  # covers 5, not 8
    assert not forced.step(applied=8, log_first=8, dumping=False, last_dumped=7)
    assert not forced.pending
