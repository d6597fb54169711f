"""bench/idle.py's pure parts: figures by thread name and by Raft role, and the steady writer."""

from __future__ import annotations

import threading
from typing import Any

from p2porch.testing.bench_module import load_bench

idle = load_bench("idle")


def daemon(role: str, cpu: float, raft: float, raft_wakeups: float) -> dict[str, Any]:
    return {
        "role": role,
        "cpu_pct_of_core": cpu,
        "wakeups_per_s": raft_wakeups + 8.0,
        "rss_mb": 50.0 + cpu,
        "cpu_pct_by_name": {"RaftStore from": raft, "python": cpu - raft},
        "wakeups_per_s_by_name": {"python": 8.0, "RaftStore from": raft_wakeups},
    }


def test_threads_of_one_name_are_summed() -> None:
    names = {"1": "python", "2": "Trio thread 0", "3": "Trio thread 0", "4": "RaftStore from"}
    assert idle.by_name({"1": 0.3, "2": 0.01, "3": 0.02, "4": 0.2}, names) == {
        "python": 0.3,
        "RaftStore from": 0.2,
        "Trio thread 0": 0.03,
    }


def test_roles_are_summarised_apart_with_their_raft_thread() -> None:
    per = {
        "n1": daemon("leader", 0.8, 0.4, 9.0),
        "n2": daemon("voter", 0.5, 0.15, 5.0),
        "n3": daemon("voter", 0.6, 0.17, 5.2),
        "n4": daemon("replica", 0.4, 0.02, 0.3),
        "n5": {**daemon("replica", 0.4, 0.02, 0.3), "role": None},
    }
    roles = idle.by_role(per)
    assert sorted(roles) == ["leader", "replica", "unknown", "voter"]
    assert roles["leader"]["raft_thread_cpu_pct_mean"] == 0.4
    assert roles["leader"]["raft_thread_wakeups_per_s_mean"] == 9.0
    voter = roles["voter"]
    assert (voter["processes"], voter["cpu_pct_min"], voter["cpu_pct_max"], voter["cpu_pct_mean"]) == (
        2,
        0.5,
        0.6,
        0.55,
    )
    assert voter["raft_thread_cpu_pct_mean"] == 0.16
    assert voter["rss_mb_max"] == 50.6


def test_the_steady_writer_writes_until_stopped_and_counts_failures() -> None:
    stop = threading.Event()
    calls: list[str] = []

    def call(**req: Any) -> dict[str, Any]:
        calls.append(req["id"])
        if len(calls) == 5:
            stop.set()
        if len(calls) == 3:
            raise TimeoutError("no answer")  # an OSError: the control connection's timeout
        return {"ok": len(calls) != 2}

    out = idle.write_steadily(call, 0.0, stop)
    assert calls == [f"idle-w{i}" for i in range(5)]  # distinct ids, failures included
    assert (out["writes"], out["failed"], out["every_ms"]) == (3, 2, 0.0)
    assert out["p50_ms"] is not None


def test_strace_lines_count_calls_and_the_ones_a_timeout_ended() -> None:
    lines = [
        "17462 poll([{fd=5, events=POLLIN}], 3, 199) = 0 (Timeout)",
        "17462 poll([{fd=5, events=POLLIN}], 3, 199 <unfinished ...>",
        "14440 epoll_wait(4,  <unfinished ...>",
        "17462 <... poll resumed>) = 1 ([{fd=5, revents=POLLIN}])",
        "14440 <... epoll_wait resumed>[], 3, 250) = 0",  # no "(Timeout)" for epoll
        "17585 futex(0x7f, FUTEX_WAIT_BITSET_PRIVATE, 0, NULL, FUTEX_BITSET_MATCH_ANY) = 0",  # woken
        "17462 poll([{fd=5, events=POLLIN}], 3, 199 <unfinished ...>",
        "17462 <... poll resumed>) = 0 (Timeout)",
        '17585 prctl(PR_SET_NAME, "Trio thread 2") = 0',
        '17462 recvfrom(7, "...", 65536, 0, NULL, NULL) = 120',
    ]
    counts, timeouts, jobs = idle.count_strace(lines)
    assert counts == {
        "17462:poll": 3,
        "14440:epoll_wait": 1,
        "17585:futex": 1,
        "17585:prctl": 1,
        "17462:recvfrom": 1,
    }
    assert timeouts == {"17462:poll": 2, "14440:epoll_wait": 1}
    assert jobs == {"17585:Trio thread 2": 1}
