"""Whole-machine CPU attribution between two moments: per process (by pid) and per thread of chosen ones.

    before = snapshot(threads_of=[pid, ...]); ...; after = snapshot(threads_of=[...])
    spent = attribute(before, after, roles={pid: "daemon n1", ...})

A snapshot reads ``/proc/PID/stat`` of every process (utime+stime: all its threads; cutime+cstime: its
reaped children) and, for the pids named, ``/proc/PID/task/TID/stat`` of each thread with its name. The
difference is charged to a *role*: a pid named in ``roles``, else a process whose parent is a named pid
("ROLE child: COMM"), else its command name (``comm``). A process that started in between is charged its
whole CPU; one that exited in between is lost except through its parent's reaped-children figure (so the
reaped children of each process are charged to it as "ROLE (reaped)"). Pure functions over the snapshots,
besides :func:`snapshot` itself, which only reads /proc.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Proc:
    """One process's figures from /proc/PID/stat at one moment (ticks)."""

    comm: str
    ppid: int
    start: int  # start time since boot (ticks): tells a reused pid apart
    own: int
    reaped: int


def parse_stat(text: str) -> Proc:
    """A /proc/PID/stat line (the command name may hold spaces and parentheses)."""
    head, _, rest = text.rpartition(")")
    fields = rest.split()
    return Proc(
        comm=head.partition("(")[2],
        ppid=int(fields[1]),
        start=int(fields[19]),
        own=int(fields[11]) + int(fields[12]),
        reaped=int(fields[13]) + int(fields[14]),
    )


def _read(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None


def snapshot(threads_of: Iterable[int] = ()) -> dict[str, dict[int, Proc]]:
    """Every process now; and the threads (by tid, ``comm`` = the thread's name) of ``threads_of``;
    ``at``: the time since boot (ticks) of the snapshot, as ``{0: Proc}`` (its ``start``)."""
    with open("/proc/uptime") as handle:
        at = int(float(handle.read().split()[0]) * TICK)
    procs: dict[int, Proc] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (text := _read(f"/proc/{entry}/stat")) is not None:
            procs[int(entry)] = parse_stat(text)
    threads: dict[int, Proc] = {}
    for pid in threads_of:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            if (text := _read(f"/proc/{pid}/task/{tid}/stat")) is not None:
                threads[int(tid)] = parse_stat(text)
    return {"procs": procs, "threads": threads, "at": {0: Proc("", 0, at, 0, 0)}}


def _delta(before: Mapping[int, Proc], pid: int, now: Proc, since: int) -> tuple[int, int]:
    was = before.get(pid)
    if was is not None and was.start == now.start:
        return now.own - was.own, now.reaped - was.reaped
    if now.start >= since:  # started in between: all of it is in the window
        return now.own, now.reaped
    return 0, 0  # older than the first snapshot but not read in it (a transient read failure): unknown


def attribute(
    before: Mapping[str, Mapping[int, Proc]],
    after: Mapping[str, Mapping[int, Proc]],
    roles: Mapping[int, str],
) -> dict[str, float]:
    """CPU seconds per role between the snapshots, largest first (see the module's docstring)."""
    ticks: dict[str, int] = {}

    def charge(role: str, amount: int) -> None:
        if amount > 0:
            ticks[role] = ticks.get(role, 0) + amount

    procs_before, since = before["procs"], before["at"][0].start
    for pid, now in after["procs"].items():
        own, reaped = _delta(procs_before, pid, now, since)
        role = roles.get(pid) or (f"{roles[now.ppid]} child: {now.comm}" if now.ppid in roles else now.comm)
        charge(role, own)
        charge(f"{role} (reaped)", reaped)
    return {k: round(v / TICK, 2) for k, v in sorted(ticks.items(), key=lambda kv: -kv[1])}


def thread_cpu(
    before: Mapping[str, Mapping[int, Proc]], after: Mapping[str, Mapping[int, Proc]]
) -> dict[str, float]:
    """CPU seconds per thread name, summed over the processes whose threads were read."""
    ticks: dict[str, int] = {}
    for tid, now in after["threads"].items():
        own, _ = _delta(before["threads"], tid, now, before["at"][0].start)
        if own > 0:
            ticks[now.comm] = ticks.get(now.comm, 0) + own
    return {k: round(v / TICK, 2) for k, v in sorted(ticks.items(), key=lambda kv: -kv[1])}


class Sampler:
    """Owns a thread that reads the own CPU ticks of some pids every ``period_s`` between enter and exit
    (``series[name]``: (wall time, ticks) pairs); for splitting a process's CPU by time windows."""

    def __init__(self, pids: Mapping[str, int], period_s: float = 0.05) -> None:
        import threading

        self.pids, self.period_s = dict(pids), period_s
        self.series: dict[str, list[tuple[float, int]]] = {name: [] for name in self.pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="proc-cpu-sampler", daemon=True)

    def _run(self) -> None:
        import time

        while True:
            now = time.time()
            for name, pid in self.pids.items():
                if (text := _read(f"/proc/{pid}/stat")) is not None:
                    self.series[name].append((now, parse_stat(text).own))
            if self._stop.wait(self.period_s):
                return

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._run()  # one last sample (the event is set: it returns after it)


def ticks_between(series: list[tuple[float, int]], start: float, end: float) -> int:
    """Ticks spent between two wall times, from the samples nearest them (at or before ``start``, at or
    after ``end``; the first/last sample when none is)."""
    if not series or end <= start:
        return 0
    first = max((s for s in series if s[0] <= start), default=series[0], key=lambda s: s[0])
    last = min((s for s in series if s[0] >= end), default=series[-1], key=lambda s: s[0])
    return max(0, last[1] - first[1])


def split_by_join(
    series: Mapping[str, list[tuple[float, int]]], windows: Mapping[str, tuple[float, float]], end: float
) -> dict[str, dict[str, float]]:
    """Per node, CPU seconds before its own join, during it (as the joiner) and after it until ``end``
    (as a member of the others' joins); a node with no window (the first) is all "member"."""
    out: dict[str, dict[str, float]] = {}
    for name, samples in series.items():
        if not samples:
            continue
        begin = samples[0][0]
        if name in windows:
            joined_from, joined_to = windows[name]
            parts = {
                "before": ticks_between(samples, begin, joined_from),
                "joining": ticks_between(samples, joined_from, joined_to),
                "member": ticks_between(samples, joined_to, end),
            }
        else:
            parts = {"before": 0, "joining": 0, "member": ticks_between(samples, begin, end)}
        out[name] = {k: round(v / TICK, 3) for k, v in parts.items()}
    return out
