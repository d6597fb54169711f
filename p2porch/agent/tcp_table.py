"""A task's TCP sockets from its namespace's ``/proc/net/tcp`` (pure): whether a draining task still has
open connections, and whether a starting one listens on the ports it serves yet.

The kernel lists a network namespace's TCP sockets in ``/proc/<pid>/net/tcp`` and ``tcp6`` (any process in
it, read from outside: no ``setns``). One line per socket: ``sl local_address rem_address st ...`` with the
addresses as ``HEXADDR:HEXPORT`` and the state ``st`` in hex (``include/net/tcp_states.h``). A request
socket (a SYN answered, the handshake not finished) is shown as SYN_RECV.

A connection *open* for a drain is one accepted on a port the task serves (its local port is a target
port) in a state where data or a FIN may still have to cross it: ESTABLISHED, SYN_RECV (about to be
established), CLOSE_WAIT (the client closed its side; the task may still be answering), FIN_WAIT1,
CLOSING and LAST_ACK (the task closed, its data or FIN not yet acknowledged). Not open: FIN_WAIT2 and
TIME_WAIT (everything the task sent was acknowledged), CLOSE, LISTEN, and SYN_SENT (an outgoing connect).
UDP has no connection to wait for.

A starting task is *listening* on a port once a LISTEN socket of its namespace has that local port (any
address: a process listening on loopback only is not told apart). Its agent reports it running, which
makes it a backend of the ingress and VIP rules, only then (or at a bound): a connection balanced to it
before would be refused.

Never reads a file or a clock: the table's text and ``now`` are given.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

ESTABLISHED, SYN_SENT, SYN_RECV, FIN_WAIT1, FIN_WAIT2, TIME_WAIT = 1, 2, 3, 4, 5, 6
CLOSE, CLOSE_WAIT, LAST_ACK, LISTEN, CLOSING = 7, 8, 9, 10, 11
OPEN_STATES = frozenset({ESTABLISHED, SYN_RECV, CLOSE_WAIT, FIN_WAIT1, CLOSING, LAST_ACK})
ENDED = "ended"
BOUND = "bound"
LISTENING = "listening"


@dataclass(frozen=True, slots=True)
class TcpSocket:
    """One line of ``/proc/net/tcp[6]``: local port, remote ``HEXADDR:HEXPORT`` as printed, state."""

    local_port: int
    remote: str
    state: int


def parse_tcp_table(text: str) -> list[TcpSocket]:
    """The sockets of one ``/proc/net/tcp`` or ``tcp6`` text (header skipped; a line that does not parse,
    e.g. cut short by a read racing the kernel, is skipped)."""
    sockets: list[TcpSocket] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or not fields[0].endswith(":"):
            continue
        local, remote, state = fields[1], fields[2], fields[3]
        try:
            port = int(local.rpartition(":")[2], 16)
            code = int(state, 16)
        except ValueError:
            continue
        sockets.append(TcpSocket(port, remote, code))
    return sockets


def served_ports(declared: Iterable[int], sockets: Iterable[TcpSocket], listeners: bool) -> frozenset[int]:
    """The ports whose connections a drain waits for: the service's TCP target ports, and with
    ``listeners`` (a VIP balances every port) every port the task listens on."""
    ports = set(declared)
    if listeners:
        ports.update(s.local_port for s in sockets if s.state == LISTEN)
    return frozenset(ports)


def open_connections(sockets: Iterable[TcpSocket], ports: Collection[int]) -> int:
    """How many connections accepted on ``ports`` may still carry data (``OPEN_STATES``)."""
    return sum(1 for s in sockets if s.local_port in ports and s.state in OPEN_STATES)


@dataclass(frozen=True, slots=True)
class ConnectionVerdict:
    """``done``: the wait is over (a drain: stop the task; a start: report it running), ``reason`` says
    why (ended | listening | bound); otherwise look again later."""

    done: bool
    reason: str


def connection_verdict(now: float, deadline: float, open_count: int) -> ConnectionVerdict:
    """Stop once no connection is open, or once ``deadline`` passed with some still open (a websocket
    or an idle keep-alive must not hold a stop forever)."""
    if open_count == 0:
        return ConnectionVerdict(True, ENDED)
    if now >= deadline:
        return ConnectionVerdict(True, BOUND)
    return ConnectionVerdict(False, "")


def missing_listeners(ports: Iterable[int], sockets: Iterable[TcpSocket]) -> frozenset[int]:
    """The ``ports`` no socket listens on yet."""
    listening = {s.local_port for s in sockets if s.state == LISTEN}
    return frozenset(p for p in ports if p not in listening)


def listen_verdict(now: float, deadline: float, missing: Collection[int]) -> ConnectionVerdict:
    """Report a started task running once it listens on every port it serves (``missing`` is empty:
    listening), or once ``deadline`` passed (bound: a process that listens late, or on another port,
    must not hold its task out of service forever)."""
    if not missing:
        return ConnectionVerdict(True, LISTENING)
    if now >= deadline:
        return ConnectionVerdict(True, BOUND)
    return ConnectionVerdict(False, "")
