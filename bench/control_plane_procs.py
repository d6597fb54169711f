"""Process probes and concurrent proposers for bench/control_plane.py (CPU, RSS, per-thread CPU, clients).

Imported by ``bench/control_plane.py`` (this folder is on ``sys.path`` when it runs).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from p2porch.raft import commands as C
from p2porch.testing.raftprocs import ControlClient

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def thread_cpu_s(pid: int, system_only: bool = False) -> dict[str, float]:
    """CPU seconds of each thread of ``pid`` by thread name (same names summed); ``system_only``: the
    seconds in the kernel alone (on loopback a send runs the receiver's TCP path too)."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            raw = (task / "stat").read_text()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw.rsplit(")", 1)[1].split()
        ticks = int(fields[12]) if system_only else int(fields[11]) + int(fields[12])
        out[name] = out.get(name, 0.0) + ticks / TICKS
    return out


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


class Proposer:
    """Per-thread control connections to one store process; counts command bytes and commands."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._local = threading.local()
        self._lock = threading.Lock()
        self.bytes = 0
        self.commands = 0
        self._clients: list[ControlClient] = []

    def propose(self, cmd: C.Command, timeout_s: float = 60.0) -> dict[str, Any]:
        """Commit ``cmd``; returns the FSM result map (raises if the store refused or failed)."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = ControlClient(self.port, timeout_s=timeout_s + 5)
            with self._lock:
                self._clients.append(client)
        data = cmd.encode()
        answer = client.call(op="propose", cmd=data.hex(), timeout_s=timeout_s)
        result = answer.get("result") or answer
        if not result.get("ok"):
            raise RuntimeError(f"command refused: {result}")
        with self._lock:
            self.bytes += len(data)
            self.commands += 1
        return result  # type: ignore[no-any-return]

    def close(self) -> None:
        for client in self._clients:
            client.close()
