"""Read a container's CPU and memory usage from its cgroup files, and turn samples into percentages.

``cgroup_files(pid)`` finds the cgroup of a container's init process from ``/proc/<pid>/cgroup`` (the
pid comes from the engine: ``docker inspect`` ``State.Pid``), which is the same under the cgroupfs and
the systemd cgroup driver and under any ``--cgroup-parent``, so nothing guesses the engine's layout.
On a unified (v2) hierarchy it reads ``cpu.stat`` ``usage_usec`` and ``memory.current``; on a v1 or
hybrid host (as this project's CI machine) ``cpuacct.usage`` (ns) and ``memory.usage_in_bytes``.
When neither is readable (another mount namespace, a rootless engine) the caller falls back to the
engine's stats API. ``UsageMeter`` keeps the last counter per task and returns usage as percent of
the task's limit. This module reads files only; it never talks to the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["CgroupFiles", "Sample", "UsageMeter", "cgroup_files", "parse_proc_cgroup", "read_sample"]

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True, slots=True)
class CgroupFiles:
    """Where one container's counters live: ``cpu`` (``usage_usec`` line or ns counter) and ``memory``."""

    cpu: Path
    memory: Path
    v2: bool


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading: cumulative CPU time (µs) and current memory (bytes) at ``at`` (monotonic s)."""

    at: float
    cpu_usec: int
    memory_bytes: int


def add_samples(a: Sample, b: Sample) -> Sample:
    """Two containers' readings as one (a task group's usage is its containers' sum), at the later time."""
    return Sample(max(a.at, b.at), a.cpu_usec + b.cpu_usec, a.memory_bytes + b.memory_bytes)


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """``/proc/<pid>/cgroup`` as {controller: path}; the v2 entry is under ``""``."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        for name in controllers.split(",") if controllers else [""]:
            out[name] = path
    return out


def cgroup_files(pid: int, root: Path = CGROUP_ROOT, proc: Path = Path("/proc")) -> CgroupFiles | None:
    """The counter files of the cgroup ``pid`` runs in, or None when they cannot be read here."""
    try:
        paths = parse_proc_cgroup((proc / str(pid) / "cgroup").read_text())
    except OSError:
        return None
    v1_cpu, v1_mem = paths.get("cpuacct"), paths.get("memory")
    if v1_cpu is not None and v1_mem is not None:
        files = CgroupFiles(
            root / "cpuacct" / v1_cpu.lstrip("/") / "cpuacct.usage",
            root / "memory" / v1_mem.lstrip("/") / "memory.usage_in_bytes",
            v2=False,
        )
    elif "" in paths:
        base = root / paths[""].lstrip("/")
        files = CgroupFiles(base / "cpu.stat", base / "memory.current", v2=True)
    else:
        return None
    return files if files.cpu.exists() and files.memory.exists() else None


def read_sample(files: CgroupFiles, at: float) -> Sample:
    """Read both counters once (raises OSError when the container went away)."""
    if files.v2:
        cpu_usec = 0
        for line in files.cpu.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec":
                cpu_usec = int(value)
                break
    else:
        cpu_usec = int(files.cpu.read_text()) // 1000
    return Sample(at, cpu_usec, int(files.memory.read_text()))


@dataclass(frozen=True, slots=True)
class TaskUsage:
    """A task's usage between its last two samples: CPU as cores and percent of its CPU limit, memory."""

    cpu_cores: float
    memory_bytes: int
    cpu_percent: float | None
    memory_percent: float | None


class UsageMeter:
    """The last sample per task; ``update`` turns a new one into :class:`TaskUsage` (None on the first).

    Owns nothing but the previous sample of each task key; never reads files itself."""

    def __init__(self) -> None:
        self._last: dict[str, Sample] = {}

    def update(
        self, key: str, sample: Sample, *, cpu_limit: float | None, memory_limit: int | None
    ) -> TaskUsage | None:
        previous = self._last.get(key)
        self._last[key] = sample
        if previous is None or sample.at <= previous.at or sample.cpu_usec < previous.cpu_usec:
            return None
        cores = (sample.cpu_usec - previous.cpu_usec) / 1e6 / (sample.at - previous.at)
        return TaskUsage(
            cores,
            sample.memory_bytes,
            100.0 * cores / cpu_limit if cpu_limit else None,
            100.0 * sample.memory_bytes / memory_limit if memory_limit else None,
        )

    def forget_except(self, keys: set[str]) -> None:
        """Drop the samples of tasks no longer on this node (bounded memory)."""
        for key in set(self._last) - keys:
            del self._last[key]
