"""Property tests of the history checker: histories generated from the sequential model always pass;
histories mutated so that no linearization can exist always fail; a few thousand operations finish."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from p2porch.testing.history import INF, Op, check_history, check_key, step

KEYS = ("a", "b", "c")


def generate(seed: int, count: int, *, overlap: float, unknown: float = 0.1, keys=KEYS) -> list[Op]:
    """A history whose operations take effect one after another at increasing times (a linearization
    by construction); each op's invocation and completion lie around its point, overlapping others'.
    Writes are unique values; some writes end ``info`` (taken effect, or dropped if refused)."""
    rng = random.Random(seed)
    states: dict[str, str | None] = {k: None for k in keys}
    ops: list[Op] = []
    for i in range(count):
        point = float(i)
        key = rng.choice(keys)
        state = states[key]
        kind = rng.choice(["create", "read", "read", "update", "cas", "delete"])
        if kind == "create" and state is not None:
            kind = "read"
        if kind in ("update", "cas", "delete") and state is None:
            kind = "create"
        value = None if kind == "delete" else f"v{i}"
        expected = state if kind == "cas" else None
        invoke = point - rng.uniform(0, overlap)
        complete = point + rng.uniform(0, overlap)
        status = "ok"
        if kind != "read" and rng.random() < unknown:
            status, complete = "info", INF
        if kind == "read":
            value = state
        candidate = Op(i, f"p{i % 5}", kind, key, value, expected, status, invoke, complete)
        allowed, states[key] = step(state, candidate)
        assert allowed
        ops.append(candidate)
    return ops


def sequential(ops: list[Op]) -> list[Op]:
    """The same history with no two operations overlapping and every outcome known."""
    return [
        Op(o.index, o.process, o.kind, o.key, o.value, o.expected, "ok", 2.0 * o.index, 2.0 * o.index + 1)
        for o in ops
    ]


def final_state(ops: list[Op]) -> dict[str, str | None]:
    states: dict[str, str | None] = {k: None for k in KEYS}
    for o in sorted(ops, key=lambda o: o.index):
        _, states[o.key] = step(states[o.key], o)
    return states


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32), count=st.integers(1, 120), overlap=st.floats(0.0, 6.0))
def test_histories_from_the_sequential_model_are_linearizable(seed: int, count: int, overlap: float) -> None:
    ops = generate(seed, count, overlap=overlap)
    report = check_history(ops, final=final_state(ops))
    assert report.linearizable is True, report.not_linearizable
    assert report.anomalies == 0, report.to_dict()


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32), count=st.integers(2, 80), pick=st.integers(0, 10**6))
def test_a_sequential_history_with_one_wrong_read_is_caught(seed: int, count: int, pick: int) -> None:
    ops = sequential(generate(seed, count, overlap=0.0, unknown=0.0))
    reads = [o for o in ops if o.kind == "read"]
    if not reads:
        ops.append(Op(count, "p0", "read", ops[-1].key, "wrong", None, "ok", 2.0 * count, 2.0 * count + 1))
    else:
        victim = reads[pick % len(reads)]
        wrong = "wrong" if victim.value is not None else None
        if victim.value is None:
            wrong = "never-written"
        ops[victim.index] = Op(
            victim.index,
            victim.process,
            "read",
            victim.key,
            wrong,
            None,
            "ok",
            victim.invoke,
            victim.complete,
        )
    assert check_history(ops).linearizable is False


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32), count=st.integers(4, 80), pick=st.integers(0, 10**6))
def test_an_acknowledged_write_missing_from_a_later_read_is_caught(seed: int, count: int, pick: int) -> None:
    """Mutation: drop the effect of one acknowledged write (a lost write) and re-derive the reads."""
    ops = sequential(generate(seed, count, overlap=0.0, unknown=0.0))
    writes = [o for o in ops if o.kind in ("update", "cas")]
    if not writes:
        return
    lost = writes[pick % len(writes)]
    later_reads = [o for o in ops if o.kind == "read" and o.key == lost.key and o.index > lost.index]
    if not later_reads or later_reads[0].value != lost.value:
        return  # nothing observes the loss before it is overwritten
    # the cluster "lost" it: the first read after it returns what was there before
    before = next(o for o in reversed(ops[: lost.index]) if o.key == lost.key and o.kind != "read")
    previous = None if before.kind == "delete" else before.value
    first = later_reads[0]
    ops[first.index] = Op(
        first.index, first.process, "read", first.key, previous, None, "ok", first.invoke, first.complete
    )
    assert check_history(ops).linearizable is False


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_stale_local_reads_of_generated_histories_pass_and_future_reads_fail(seed: int) -> None:
    ops = generate(seed, 60, overlap=2.0, unknown=0.0)
    rng = random.Random(seed)
    # a local read may return any earlier state of its key: take the value some earlier write left
    stale = []
    for o in ops:
        if o.kind == "read":
            earlier = [
                w
                for w in ops
                if w.key == o.key and w.kind in ("create", "update", "cas") and w.index < o.index
            ]
            value = rng.choice(earlier).value if earlier else None
            o = Op(o.index, o.process, "read", o.key, value, None, "ok", o.invoke, o.complete, stale_ok=True)
        stale.append(o)
    assert check_history(stale).linearizable is True
    # a value first written strictly after the read completed is from the future
    last = max(o.complete for o in stale) + 10
    future = Op(len(stale), "p9", "update", "a", "future", None, "ok", last, last + 1)
    reader = Op(len(stale) + 1, "p8", "read", "a", "future", None, "ok", last - 5, last - 4, stale_ok=True)
    creator = Op(len(stale) + 2, "p7", "create", "a", "base", None, "info", -100.0, INF)
    assert check_history([*stale, creator, future, reader]).linearizable is False


def test_a_few_thousand_operations_finish_within_the_default_budget() -> None:
    ops = generate(7, 3000, overlap=4.0, unknown=0.05, keys=("a", "b", "c", "d", "e", "f"))
    for key in ("a", "b", "c", "d", "e", "f"):
        result = check_key(key, [o for o in ops if o.key == key])
        assert result.valid is True, result.describe()
