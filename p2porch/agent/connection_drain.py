"""Waits until a draining container's open TCP connections have ended (shell over ``tcp_table``).

Reads ``/proc/<pid>/net/tcp`` and ``tcp6`` (the container's network namespace, seen from the host: the
daemon runs as root next to its engine) every ``POLL_S`` while one drain lasts, in a worker thread (a
read costs milliseconds of kernel time whatever the namespace holds), and hands the counts to
``tcp_table.connection_verdict``. A container whose process is gone (the tables cannot be read) does not
wait. Logs and counts each wait's outcome; never decides anything itself, never enters a namespace.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from pathlib import Path

import trio

from .tcp_table import (
    BOUND,
    ConnectionVerdict,
    TcpSocket,
    connection_verdict,
    open_connections,
    parse_tcp_table,
    served_ports,
)

log = logging.getLogger(__name__)

POLL_S = 0.1
PROC = Path("/proc")


def read_tcp_tables(pid: int, proc: Path = PROC) -> list[TcpSocket] | None:
    """Every TCP socket of ``pid``'s network namespace (IPv4 and IPv6); None when ``pid`` is gone."""
    sockets: list[TcpSocket] = []
    try:
        for name in ("tcp", "tcp6"):
            path = proc / str(pid) / "net" / name
            if name == "tcp6" and not path.exists():  # a kernel without IPv6
                continue
            sockets.extend(parse_tcp_table(path.read_text()))
    except OSError:
        return None
    return sockets


class ConnectionDrain:
    """Owns the polling of one container's TCP tables during a drain; bounded by ``max_s`` from the
    drain's start (the node's ``overlay.drain_max_s``). ``count(outcome)``: ended | bound."""

    def __init__(
        self,
        max_s: float,
        count: Callable[[str], None] = lambda outcome: None,
        proc: Path = PROC,
        poll_s: float = POLL_S,
    ) -> None:
        self.max_s = max_s
        self.count = count
        self.proc = proc
        self.poll_s = poll_s

    async def __call__(
        self, task_id: str, pid: int, ports: Collection[int], listeners: bool, started: float
    ) -> None:
        """Return once ``pid``'s namespace has no open connection on the served ports, or ``max_s``
        after ``started`` (trio time), or at once when ``pid`` is gone."""
        deadline = started + max(0.0, self.max_s)
        begun = trio.current_time()
        counts: list[int] = []  # open connections at each look

        def judge(sockets: list[TcpSocket], now: float) -> ConnectionVerdict:
            counts.append(open_connections(sockets, served_ports(ports, sockets, listeners)))
            return connection_verdict(now, deadline, counts[-1])

        ended = await poll_tables(pid, self.proc, self.poll_s, deadline, judge)
        if ended is None:
            log.info("drain of task %s: its process %d is gone; no connection to wait for", task_id, pid)
            return
        verdict, now = ended
        self.count(verdict.reason)
        if verdict.reason == BOUND:
            log.warning(
                "drain of task %s: %d connections still open %.1f s after the drain began; stopping it",
                task_id,
                counts[-1],
                now - started,
            )
        else:
            log.info(
                "drain of task %s: connections ended after %.3f s (%d open when the wait began)",
                task_id,
                now - begun,
                counts[0],
            )


async def poll_tables(
    pid: int,
    proc: Path,
    poll_s: float,
    deadline: float,
    judge: Callable[[list[TcpSocket], float], ConnectionVerdict],
) -> tuple[ConnectionVerdict, float] | None:
    """Read ``pid``'s TCP tables every ``poll_s`` until ``judge(sockets, now)`` is done (it ends by
    ``deadline``, trio time): that verdict and when; None once ``pid`` is gone."""
    while True:
        # in a thread: the kernel walks its global socket hash for every namespace's table (3.5 ms of
        # CPU per read here even for a namespace with ten sockets, more under load)
        sockets = await trio.to_thread.run_sync(read_tcp_tables, pid, proc)
        if sockets is None:
            return None
        now = trio.current_time()
        verdict = judge(sockets, now)
        if verdict.done:
            return verdict, now
        await trio.sleep(max(0.0, min(poll_s, deadline - now)))
