"""The history checker on hand-made histories: linearizable ones pass, non-linearizable ones are caught."""

from __future__ import annotations

from itertools import count

import pytest

from p2porch.testing.history import INF, HistoryRecorder, Op, check_history, check_key, load_history

_ids = count()


def op(kind: str, value: str | None, start: float, end: float | None, **kw) -> Op:
    """An operation on key ``k``; ``end=None`` means outcome unknown (info)."""
    status = kw.pop("status", "ok" if end is not None else "info")
    return Op(
        next(_ids),
        kw.pop("process", "p"),
        kind,
        kw.pop("key", "k"),
        value,
        kw.pop("expected", None),
        status,
        start,
        INF if end is None else end,
        **kw,
    )


def valid(*ops: Op, initial: str | None = None) -> bool | None:
    return check_key("k", list(ops), initial).valid


def test_sequential_register_is_linearizable() -> None:
    assert valid(
        op("create", "a", 0, 1),
        op("read", "a", 2, 3),
        op("update", "b", 4, 5),
        op("cas", "c", 6, 7, expected="b"),
        op("read", "c", 8, 9),
        op("delete", None, 10, 11),
        op("read", None, 12, 13),
    )


def test_concurrent_writes_may_be_seen_in_either_order() -> None:
    first = [op("create", "a", 0, 1), op("update", "b", 2, 6), op("update", "c", 3, 5)]
    assert valid(*first, op("read", "b", 7, 8))
    assert valid(*first, op("read", "c", 7, 8))
    # but once a read saw c after b, b cannot come back
    assert not valid(*first, op("read", "c", 7, 8), op("read", "b", 9, 10))


def test_stale_read_after_acknowledged_write_is_caught() -> None:
    assert not valid(op("create", "a", 0, 1), op("update", "b", 2, 3), op("read", "a", 4, 5))


def test_stale_read_is_allowed_when_served_from_a_local_copy() -> None:
    assert valid(op("create", "a", 0, 1), op("update", "b", 2, 3), op("read", "a", 4, 5, stale_ok=True))


def test_a_local_read_never_sees_the_future() -> None:
    assert not valid(op("create", "a", 0, 1), op("read", "b", 2, 3, stale_ok=True), op("update", "b", 4, 5))


def test_read_of_a_value_never_written_is_caught() -> None:
    assert not valid(op("create", "a", 0, 1), op("read", "zzz", 2, 3))


def test_cas_must_see_its_expected_value() -> None:
    base = [op("create", "a", 0, 1), op("update", "b", 2, 3)]
    assert not valid(*base, op("cas", "c", 4, 5, expected="a"))
    assert valid(*base, op("cas", "c", 4, 5, expected="b"), op("read", "c", 6, 7))


def test_two_cas_from_the_same_value_cannot_both_succeed() -> None:
    assert not valid(
        op("create", "a", 0, 1),
        op("cas", "b", 2, 5, expected="a"),
        op("cas", "c", 3, 6, expected="a"),
    )


def test_double_create_is_caught() -> None:
    assert not valid(op("create", "a", 0, 1), op("create", "b", 2, 3))
    assert valid(op("create", "a", 0, 1), op("delete", None, 2, 3), op("create", "b", 4, 5))


def test_unknown_outcome_may_have_taken_effect_or_not() -> None:
    base = [op("create", "a", 0, 1), op("update", "b", 2, None)]
    assert valid(*base, op("read", "a", 5, 6))
    assert valid(*base, op("read", "b", 5, 6))
    assert valid(*base, op("read", "b", 5, 6), op("read", "b", 7, 8))
    # it takes effect at most once: after b was seen and overwritten it cannot reappear
    assert not valid(*base, op("read", "b", 5, 6), op("update", "c", 7, 8), op("read", "b", 9, 10))


def test_unknown_outcome_cannot_take_effect_before_it_was_invoked() -> None:
    assert not valid(op("create", "a", 0, 1), op("read", "b", 2, 3), op("update", "b", 4, None))


def test_unknown_create_can_explain_a_later_update() -> None:
    assert valid(op("create", "a", 0, None), op("update", "b", 2, 3), op("read", "b", 4, 5))
    assert not valid(op("create", "a", 0, 1, status="fail"), op("update", "b", 2, 3))


def test_definite_failures_never_take_effect() -> None:
    assert not valid(op("create", "a", 0, 1), op("update", "b", 2, 3, status="fail"), op("read", "b", 4, 5))


def test_failure_names_the_operation_and_state() -> None:
    result = check_key("k", [op("create", "a", 0, 1), op("read", "b", 2, 3, process="p7", node="n2")])
    assert result.valid is False
    assert result.failed_op is not None and result.failed_op.process == "p7"
    assert "NOT linearizable" in result.describe() and "'a'" in result.describe()


def test_budget_exhaustion_is_unknown_not_valid() -> None:
    ops = [op("create", "a", 0, 1)] + [op("update", f"v{i}", 2, 50) for i in range(12)]
    ops.append(op("read", "v3", 60, 61))
    ops.append(op("read", "nope", 62, 63))
    result = check_key("k", ops, budget=50)
    assert result.valid is None
    assert check_key("k", ops).valid is False


def test_history_report_counts_lost_phantom_duplicated_and_monotonic() -> None:
    ops = [
        op("create", "a", 0, 1, key="x"),
        op("update", "b", 2, 3, key="x"),  # acknowledged, last write of x: final must be b
        op("create", "s1", 0, 1, key="set-1"),
        op("read", "ghost", 4, 5, key="y"),  # nobody wrote y
        op("create", "c", 0, 1, key="z"),
        op("update", "d", 2, None, key="z"),  # outcome unknown
        op("read", "c", 2, 3, key="z", version=7, node="n1"),
        op("read", "d", 3, 4, key="z", version=8, node="n2"),
        op("read", "c", 4, 5, key="z", version=9, node="n1"),  # c again after d: applied twice
        op("read", "c", 6, 7, key="z", version=7, node="n1"),  # and back in time on n1
    ]
    report = check_history(ops, final={"x": "a", "set-1": "s1", "y": None, "z": "c", "w": "boo"})
    assert len(report.lost) == 1 and "'b'" in report.lost[0]
    assert len(report.phantom) == 2  # the ghost read and the final value of w
    assert len(report.duplicated) == 1
    assert len(report.non_monotonic_reads) == 1
    assert report.linearizable is False  # the ghost read
    assert report.anomalies == len(report.not_linearizable) + 5


def test_a_version_bump_that_keeps_the_value_is_not_a_duplicated_write() -> None:
    """The leader's own bookkeeping writes (a rollout marked completed) bump the version, not the value."""
    ops = [
        op("create", "c", 0, 1, key="z"),
        op("read", "c", 2, 3, key="z", version=7),
        op("read", "c", 4, 5, key="z", version=9),
    ]
    assert check_history(ops, final={"z": "c"}).duplicated == []


def test_reads_back_in_time_across_a_restart_are_listed_apart() -> None:
    ops = [
        op("create", "c", 0, 1),
        op("read", "c", 2, 3, version=9, node="n1"),
        op("read", "c", 6, 7, version=4, node="n1"),
    ]
    plain = check_history(ops)
    assert len(plain.non_monotonic_reads) == 1 and not plain.reads_back_after_restart
    killed = check_history(ops, kills={"n1": [4.0]})
    assert not killed.non_monotonic_reads and len(killed.reads_back_after_restart) == 1
    assert killed.anomalies == plain.anomalies - 1
    assert check_history(ops, kills={"n2": [4.0], "n1": [8.0]}).non_monotonic_reads


def test_clean_history_has_no_anomalies() -> None:
    ops = [
        op("create", "a", 0, 1),
        op("update", "b", 2, None),  # unknown, overwritten later
        op("update", "c", 3, 4),
        op("read", "c", 5, 6, version=3, node="n1"),
        op("cas", "d", 5, 7, expected="c"),
        op("update", "e", 6.5, 8, status="fail"),
    ]
    report = check_history(ops, final={"k": "d"})
    assert report.linearizable is True
    assert report.anomalies == 0, report.to_dict()
    assert report.by_status == {"ok": 4, "info": 1, "fail": 1}


def test_recorder_pairs_events_and_dumps_round_trip() -> None:
    ticks = iter(range(100))
    rec = HistoryRecorder(clock=lambda: float(next(ticks)))
    w = rec.invoke("c1", "create", "k", "a", node="n1")
    r = rec.invoke("c2", "read", "k", node="n2", stale_ok=True)
    rec.ok(w)
    rec.ok(r, "a", version=4)
    lost = rec.invoke("c1", "update", "k", "b")
    refused = rec.invoke("c1", "cas", "k", "c", expected="zz")
    rec.fail(refused, "409 conflict")
    ops = rec.ops()
    assert [o.status for o in ops] == ["ok", "ok", "info", "fail"]
    assert ops[1].value == "a" and ops[1].version == 4 and ops[1].stale_ok
    assert ops[lost].complete == INF
    assert load_history(rec.dump()) == ops
    assert check_history(ops, final={"k": "a"}).anomalies == 0


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        Op(0, "p", "append", "k")


def test_a_read_through_another_node_after_an_acknowledged_write_must_see_it() -> None:
    """Reads pass the read barrier (control/read_barrier.py), so they are checked as linearizable: a
    follower's older copy read after the write through another node was acknowledged is an anomaly."""
    write = op("update", "b", 2, 3, process="c1", node="n1")
    first = op("create", "a", 0, 1, process="c1", node="n1")
    assert not valid(first, write, op("read", "a", 3.5, 4, process="c2", node="n2"))
    assert valid(first, write, op("read", "b", 3.5, 4, process="c2", node="n2"))
    # overlapping the write, either value is linearizable
    assert valid(first, write, op("read", "a", 2.5, 4, process="c2", node="n2"))
    # a read refused by the barrier (503, outcome info) constrains nothing
    assert valid(first, write, op("read", "a", 3.5, None, process="c2", node="n2"))
