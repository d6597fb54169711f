"""Recorded client histories and their checks: linearizability, lost, duplicated and phantom writes (pure).

Owns the history vocabulary of a Jepsen-style test on a key-value model (a service spec by name): the
operations ``create``, ``read``, ``update``, ``cas`` (compare-and-set) and ``delete``, each an invocation
followed by ``ok``, ``fail`` (definitely not applied) or ``info`` (outcome unknown: timeout, crash, lost
connection), and the checks run over it afterwards. It never talks to a cluster; tests record with
:class:`HistoryRecorder` and call :func:`check_history`. Nothing in p2porch imports it.

The linearizability check is the Wing-Gong algorithm with Lowe's memoisation (as in Knossos and
Porcupine), run per key (P-compositionality): a depth-first search over which pending operation takes
effect next, remembering every (set of linearized operations, model state) already explored. Pruning:
reads are linearized as soon as they match (taking a matching read early never hurts), ``info`` updates
and compare-and-sets whose value nobody ever observed are dropped (taking effect could only make later
observations harder to explain), and an ``info`` operation is total (it does nothing when its
precondition fails) and may take effect any time after its invocation, or never (it can always come last).
Reads are linearizable unless marked ``stale_ok``: a read that starts after a write was acknowledged
sees it or a later value (the API's reads pass a read barrier, ``control/read_barrier.py``). A read
marked ``stale_ok`` (served from a node's own copy, ``stale=true``) may return any state of the
linearization up to its response (a committed prefix), so its invocation is moved to the start.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

INF = math.inf
KINDS = ("create", "read", "update", "cas", "delete")
WRITES = ("create", "update", "cas", "delete")
STATUSES = ("ok", "fail", "info")
DEFAULT_BUDGET = 10_000_000  # search steps per key before the answer is "unknown"


@dataclass(frozen=True)
class Op:
    """One operation: its invocation and completion. ``value`` is what a write writes or what a read
    returned (None: the key is absent); ``expected`` is a compare-and-set's precondition value;
    ``version`` the object version a read saw (duplicate and monotonic-read checks)."""

    index: int
    process: str
    kind: str
    key: str
    value: str | None = None
    expected: str | None = None
    status: str = "ok"
    invoke: float = 0.0
    complete: float = INF
    node: str = ""
    version: int | None = None
    stale_ok: bool = False
    error: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown operation kind {self.kind!r}")
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")
        if self.complete < self.invoke:
            raise ValueError(f"operation {self.index} completes before it is invoked")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["complete"] = None if self.complete == INF else self.complete
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Op:
        values = dict(data)
        values["complete"] = INF if values.get("complete") is None else values["complete"]
        return cls(**values)


class HistoryRecorder:
    """Thread-safe recorder of invocations and completions; an operation never completed is ``info``.

    ``clock`` (default ``time.monotonic``) stamps every event; it must be one clock for all threads.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._ops: list[Op] = []

    def invoke(
        self,
        process: str,
        kind: str,
        key: str,
        value: str | None = None,
        *,
        expected: str | None = None,
        node: str = "",
        stale_ok: bool = False,
    ) -> int:
        with self._lock:
            index = len(self._ops)
            op = Op(
                index, process, kind, key, value, expected, "info", self._clock(), INF, node, None, stale_ok
            )
            self._ops.append(op)
            return index

    def ok(self, index: int, value: str | None = None, *, version: int | None = None) -> None:
        """Completed and applied; for a read, ``value`` is what it returned."""
        with self._lock:
            op = self._ops[index]
            new_value = value if op.kind == "read" else op.value
            self._ops[index] = replace(
                op, status="ok", complete=self._clock(), value=new_value, version=version
            )

    def fail(self, index: int, error: str = "") -> None:
        """Completed and definitely not applied (refused: conflict, not found, invalid)."""
        self._finish(index, "fail", error)

    def info(self, index: int, error: str = "") -> None:
        """Outcome unknown (timeout, crash, connection lost): it may take effect at any later time."""
        self._finish(index, "info", error)

    def _finish(self, index: int, status: str, error: str) -> None:
        with self._lock:
            op = self._ops[index]
            complete = self._clock() if status == "fail" else INF
            self._ops[index] = replace(op, status=status, complete=complete, error=error[:200])

    def ops(self) -> list[Op]:
        with self._lock:
            return list(self._ops)

    def dump(self) -> str:
        """The history as JSON lines (one operation per line), for saving next to a failed run."""
        return "\n".join(json.dumps(op.to_dict()) for op in self.ops())


def load_history(text: str) -> list[Op]:
    return [Op.from_dict(json.loads(line)) for line in text.splitlines() if line.strip()]


# ----------------------------------------------------------------------------- the model
def step(state: str | None, op: Op) -> tuple[bool, str | None]:
    """The sequential model of one key: (whether ``op`` can take effect in ``state``, the new state).

    An ``info`` operation is total: when its precondition fails it takes effect as a refusal.
    """
    kind = op.kind
    if kind == "read":
        return state == op.value, state
    if kind == "create":
        allowed = state is None
    elif kind == "update":
        allowed = state is not None
    elif kind == "cas":
        allowed = state is not None and state == op.expected
    else:  # delete
        allowed = state is not None
    if allowed:
        return True, None if kind == "delete" else op.value
    return op.status == "info", state


# ----------------------------------------------------------------------------- linearizability
@dataclass(frozen=True)
class KeyResult:
    """The verdict for one key: True, False, or None (search budget exhausted)."""

    key: str
    valid: bool | None
    ops: int
    steps: int
    failed_op: Op | None = None  # the operation the deepest search could not linearize
    state_then: str | None = None  # the model state at that point

    def describe(self) -> str:
        if self.valid:
            return f"{self.key}: linearizable ({self.ops} ops)"
        if self.valid is None:
            return f"{self.key}: unknown after {self.steps} search steps ({self.ops} ops)"
        op = self.failed_op
        assert op is not None
        return (
            f"{self.key}: NOT linearizable: op {op.index} {op.kind} value={op.value!r} "
            f"expected={op.expected!r} by {op.process}@{op.node} [{op.invoke:.3f}, {op.complete:.3f}] "
            f"cannot take effect; the state was {self.state_then!r}"
        )


def _observed_values(ops: Iterable[Op]) -> set[str]:
    seen: set[str] = set()
    for op in ops:
        if op.kind == "read" and op.status == "ok" and op.value is not None:
            seen.add(op.value)
        if op.kind == "cas" and op.status != "fail" and op.expected is not None:
            seen.add(op.expected)  # an unknown CAS may need the write it expects
    return seen


def prune(ops: Sequence[Op]) -> list[Op]:
    """The operations the search needs: no failures, no unknown reads, no unobserved unknown overwrites."""
    observed = _observed_values(ops)
    kept = []
    for op in ops:
        if op.status == "fail":
            continue
        if op.status == "info" and op.kind == "read":
            continue
        if op.status == "info" and op.kind in ("update", "cas") and op.value not in observed:
            continue
        kept.append(op)
    return kept


def check_key(
    key: str, ops: Sequence[Op], initial: str | None = None, budget: int = DEFAULT_BUDGET
) -> KeyResult:
    """Wing-Gong search with memoisation over one key's operations (already pruned or not)."""
    ops = prune(ops)
    n = len(ops)
    if n == 0:
        return KeyResult(key, True, 0, 0)
    events: list[tuple[float, int, int]] = []  # (time, 0 call | 1 return, op position)
    for i, op in enumerate(ops):
        call_at = -INF if (op.kind == "read" and op.stale_ok) else op.invoke
        return_at = op.complete if op.status == "ok" else INF
        events.append((call_at, 0, i))
        events.append((return_at, 1, i))
    events.sort(key=lambda e: (e[0], e[1], e[2]))  # ties: calls first (overlap, the lenient reading)
    size = len(events)
    head = size
    nxt = [i + 1 for i in range(size)] + [0]
    nxt[size - 1] = -1
    prv = [head] + [i for i in range(size - 1)] + [-1]
    call_pos = [0] * n
    ret_pos = [0] * n
    for pos, (_, is_return, i) in enumerate(events):
        if is_return:
            ret_pos[i] = pos
        else:
            call_pos[i] = pos

    def unlink(pos: int) -> None:
        nxt[prv[pos]] = nxt[pos]
        if nxt[pos] != -1:
            prv[nxt[pos]] = prv[pos]

    def relink(pos: int) -> None:
        nxt[prv[pos]] = pos
        if nxt[pos] != -1:
            prv[nxt[pos]] = pos

    state = initial
    linearized = 0
    stack: list[tuple[int, str | None]] = []
    cache: set[tuple[int, str | None]] = set()
    entry = nxt[head]
    steps = 0
    deepest = (-1, 0, initial)  # (depth, op position, state)
    while nxt[head] != -1:
        steps += 1
        if steps > budget:
            return KeyResult(key, None, n, steps)
        _, is_return, i = events[entry]
        if not is_return:
            allowed, new_state = step(state, ops[i])
            if allowed:
                marked = linearized | (1 << i)
                if (marked, new_state) not in cache:
                    cache.add((marked, new_state))
                    stack.append((i, state))
                    state, linearized = new_state, marked
                    unlink(call_pos[i])
                    unlink(ret_pos[i])
                    entry = nxt[head]
                    continue
            entry = nxt[entry]
            continue
        # the earliest pending return: op i must have taken effect by now and could not; backtrack
        if len(stack) > deepest[0]:
            deepest = (len(stack), i, state)
        while True:
            if not stack:
                _, failed, then = deepest
                return KeyResult(key, False, n, steps, ops[failed], then)
            i, state = stack.pop()
            linearized &= ~(1 << i)
            relink(ret_pos[i])
            relink(call_pos[i])
            if ops[i].kind != "read":
                break  # a read taken as soon as it matched has no better alternative
        entry = nxt[call_pos[i]]
    return KeyResult(key, True, n, steps)


# ----------------------------------------------------------------------------- the whole history
@dataclass
class HistoryReport:
    """Everything the checks found; ``anomalies`` is the number a test asserts to be 0."""

    ops: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_kind: dict[str, int] = field(default_factory=dict)
    keys: int = 0
    linearizable: bool | None = True
    not_linearizable: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    phantom: list[str] = field(default_factory=list)
    non_monotonic_reads: list[str] = field(default_factory=list)
    reads_back_after_restart: list[str] = field(default_factory=list)  # reported, not an anomaly
    search_steps: int = 0

    @property
    def anomalies(self) -> int:
        return (
            len(self.not_linearizable)
            + len(self.lost)
            + len(self.duplicated)
            + len(self.phantom)
            + len(self.non_monotonic_reads)
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["anomalies"] = self.anomalies
        return data


def check_history(
    ops: Sequence[Op],
    final: Mapping[str, str | None] | None = None,
    *,
    initial: Mapping[str, str | None] | None = None,
    budget: int = DEFAULT_BUDGET,
    kills: Mapping[str, Sequence[float]] | None = None,
) -> HistoryReport:
    """Check a whole history: linearizability per key, plus lost, duplicated and phantom writes against
    ``final`` (the agreed state of every key at the end, if known) and monotonic reads per node.

    ``kills`` (node -> times its daemon was killed): reads that went back in time across a restart are
    listed apart in ``reads_back_after_restart`` (a restarted node serves what it replayed from disk
    until the leader tells it more), not counted as anomalies."""
    initial = initial or {}
    report = HistoryReport(ops=len(ops))
    for op in ops:
        report.by_status[op.status] = report.by_status.get(op.status, 0) + 1
        report.by_kind[op.kind] = report.by_kind.get(op.kind, 0) + 1
    per_key: dict[str, list[Op]] = defaultdict(list)
    for op in ops:
        per_key[op.key].append(op)
    report.keys = len(per_key)
    for key in sorted(per_key):
        result = check_key(key, per_key[key], initial.get(key), budget)
        report.search_steps += result.steps
        if result.valid is False:
            report.not_linearizable.append(result.describe())
        elif result.valid is None:
            report.unknown.append(result.describe())
    if report.not_linearizable:
        report.linearizable = False
    elif report.unknown:
        report.linearizable = None
    report.lost = lost_writes(per_key, final) if final is not None else []
    report.phantom = phantom_values(per_key, final, initial)
    report.duplicated = duplicated_writes(per_key)
    report.non_monotonic_reads, report.reads_back_after_restart = non_monotonic_reads(ops, kills or {})
    return report


def lost_writes(per_key: Mapping[str, Sequence[Op]], final: Mapping[str, str | None]) -> list[str]:
    """Acknowledged writes that nothing can have overwritten, yet the final state does not show.

    A write counts as lost when the final value of its key differs from what it left and no other
    write on that key that may have taken effect (not a definite failure) was still running or started
    after it was invoked.
    """
    lost = []
    for key, ops in per_key.items():
        if key not in final:
            continue
        writes = [op for op in ops if op.kind in WRITES and op.status != "fail"]
        for op in writes:
            if op.status != "ok":
                continue
            left = None if op.kind == "delete" else op.value
            if final[key] == left:
                continue
            if any(other is not op and other.complete > op.invoke for other in writes):
                continue
            lost.append(
                f"{key}: {op.kind} {op.value!r} acknowledged at {op.complete:.3f}, final {final[key]!r}"
            )
    return lost


def phantom_values(
    per_key: Mapping[str, Sequence[Op]],
    final: Mapping[str, str | None] | None,
    initial: Mapping[str, str | None],
) -> list[str]:
    """Values read or present at the end that no write which may have taken effect ever wrote."""
    phantoms = []
    for key, ops in per_key.items():
        written = {
            op.value for op in ops if op.kind in WRITES and op.kind != "delete" and op.status != "fail"
        }
        written.add(initial.get(key))
        seen = [
            (op.value, f"read by {op.process}@{op.node}")
            for op in ops
            if op.kind == "read" and op.status == "ok"
        ]
        if final is not None and key in final:
            seen.append((final[key], "final state"))
        for value, where in seen:
            if value is not None and value not in written:
                phantoms.append(f"{key}: {value!r} ({where}) was never written")
    for key, value in (final or {}).items():
        if key not in per_key and value is not None and value != initial.get(key):
            phantoms.append(f"{key}: {value!r} (final state) on a key nobody wrote")
    return phantoms


def duplicated_writes(per_key: Mapping[str, Sequence[Op]]) -> list[str]:
    """Values that come back after another value replaced them: one write applied twice (every write's
    value is unique). Ordered by the record's version, a value seen at versions a < c with a different
    value at a version between them was applied again; the same value at two versions with nothing else
    between is a bookkeeping write of the cluster itself (the leader marking a rollout completed, an
    autoscale or cron step), which bumps the version and leaves the value alone."""
    duplicated = []
    for key, ops in per_key.items():
        by_version: dict[int, set[str]] = defaultdict(set)
        for op in ops:
            if op.kind == "read" and op.status == "ok" and op.value is not None and op.version is not None:
                by_version[op.version].add(op.value)
        runs: list[str] = []  # values in version order, consecutive repeats collapsed
        versions: dict[str, list[int]] = defaultdict(list)
        for version in sorted(by_version):
            for value in sorted(by_version[version]):
                versions[value].append(version)
                if not runs or runs[-1] != value:
                    runs.append(value)
        for value in sorted(versions):
            if runs.count(value) > 1:
                duplicated.append(f"{key}: {value!r} seen with versions {sorted(set(versions[value]))}")
    return duplicated


def non_monotonic_reads(
    ops: Sequence[Op], kills: Mapping[str, Sequence[float]] | None = None
) -> tuple[list[str], list[str]]:
    """Reads on one node that went back in time: a later read (invoked after an earlier one completed)
    returned an older version of the same key. Returns (within one daemon life, across a kill)."""
    kills = kills or {}
    found: list[str] = []
    across: list[str] = []
    reads: dict[tuple[str, str], list[Op]] = defaultdict(list)
    for op in ops:
        if op.kind == "read" and op.status == "ok" and op.version is not None and op.node:
            reads[(op.node, op.key)].append(op)
    for (node, key), seq in reads.items():
        seq.sort(key=lambda op: op.invoke)
        for position, op in enumerate(seq):
            assert op.version is not None
            before = [r for r in seq[:position] if r.complete < op.invoke]
            newest = max(before, key=lambda r: r.version or 0, default=None)
            if newest is not None and op.version < (newest.version or 0):
                restarted = any(newest.complete < t < op.invoke for t in kills.get(node, ()))
                (across if restarted else found).append(
                    f"{key}@{node}: read {op.index} saw version {op.version} after read {newest.index} "
                    f"saw {newest.version}" + (" (the daemon was restarted in between)" if restarted else "")
                )
    return found, across
