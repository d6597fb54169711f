"""Waits until a started container listens on its TCP ingress target ports (shell over ``tcp_table``).

A task becomes a backend of every node's ingress and VIP rules when its agent reports it running. The
engine says "running" as soon as the container's process started, before it listens: a connection
balanced to it then is refused. So the agent reads the container's ``/proc/<pid>/net/tcp`` and
``tcp6`` (its network namespace, seen from the host, as the drain does) every ``POLL_S`` after the
start and reports the task running once ``tcp_table.listen_verdict`` says so: a LISTEN socket on the
target port of every TCP ingress port the service publishes, or ``max_s`` after the start. A container
whose process is gone does not wait (the next reconcile reports how it ended). Logs and counts each
wait's outcome; never decides anything itself, never enters a namespace, never probes the task over
the network.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import trio

from .connection_drain import PROC, poll_tables
from .tcp_table import BOUND, ConnectionVerdict, TcpSocket, listen_verdict, missing_listeners

log = logging.getLogger(__name__)

POLL_S = 0.02  # a process that listens at once is reported within this (a read costs ~3.5 ms of CPU)


@dataclass(frozen=True)
class ListenWait:
    """Owns the polling of one started container's TCP tables until it listens, at most ``max_s`` (the
    node's ``overlay.listen_max_s``). ``count(outcome)``: listening | bound | gone."""

    max_s: float
    count: Callable[[str], None] = lambda outcome: None
    proc: Path = PROC
    poll_s: float = POLL_S

    async def __call__(self, task_id: str, pid: int, ports: Collection[int]) -> None:
        """Return once ``pid``'s namespace listens on every one of ``ports``, or ``max_s`` after the call
        (trio time), or at once when ``pid`` is gone."""
        begun = trio.current_time()
        deadline = begun + max(0.0, self.max_s)
        missing: frozenset[int] = frozenset(ports)

        def judge(sockets: list[TcpSocket], now: float) -> ConnectionVerdict:
            nonlocal missing
            missing = missing_listeners(ports, sockets)
            return listen_verdict(now, deadline, missing)

        ended = await poll_tables(pid, self.proc, self.poll_s, deadline, judge)
        if ended is None:
            self.count("gone")
            log.info("task %s: process %d ended before it listened on %s", task_id, pid, _ports(ports))
            return
        verdict, now = ended
        self.count(verdict.reason)
        if verdict.reason == BOUND:
            log.warning(
                "task %s: not listening on %s %.1f s after its start; reported running anyway",
                task_id,
                _ports(missing),
                now - begun,
            )
        else:
            log.info("task %s: listening on %s %.3f s after its start", task_id, _ports(ports), now - begun)


def _ports(ports: Collection[int]) -> str:
    return ",".join(f"{p}/tcp" for p in sorted(ports))
