"""agent/tcp_table.py: /proc/net/tcp[6] parsing and the connection drain's decision (pure)."""

from __future__ import annotations

from pathlib import Path

from p2porch.agent.tcp_table import (
    BOUND,
    CLOSE_WAIT,
    ENDED,
    ESTABLISHED,
    FIN_WAIT2,
    LISTEN,
    LISTENING,
    SYN_RECV,
    TIME_WAIT,
    ConnectionVerdict,
    TcpSocket,
    connection_verdict,
    listen_verdict,
    missing_listeners,
    open_connections,
    parse_tcp_table,
    served_ports,
)

FIXTURES = Path(__file__).with_name("fixtures")
# Captured from a Linux 6.1 host (Debian bookworm): a listener on 127.0.0.1:18084 (0x46A4) with one
# established connection, one the client closed (CLOSE_WAIT, one byte unread), one the server closed
# (FIN_WAIT2), the client ends of those, an outgoing connection to port 18086 (0x46A6) and a TIME_WAIT.
TCP4 = (FIXTURES / "proc_net_tcp.txt").read_text()

# Same capture: listeners on [::]:18086 (dual stack, one IPv4-mapped connection) and [::1]:18085.
TCP6 = (FIXTURES / "proc_net_tcp6.txt").read_text()

# A request socket (handshake not finished), in the layout of the kernel's get_openreq4(): state 03.
SYN_RECV_LINE = "   1: 0100007F:46A4 0100007F:8180 03 00000000:00000000 01:00000062 00000000     0        0 0 0 0000000000000000"  # noqa: E501


def test_ipv4_lines_give_port_remote_and_state() -> None:
    sockets = parse_tcp_table(TCP4)
    assert len(sockets) == 9
    assert sockets[0] == TcpSocket(18084, "00000000:0000", LISTEN)
    assert sockets[1] == TcpSocket(18084, "0100007F:8166", ESTABLISHED)
    assert [s.state for s in sockets[2:4]] == [CLOSE_WAIT, FIN_WAIT2]
    assert sockets[-1].state == TIME_WAIT


def test_ipv6_lines_and_ipv4_mapped_ones_parse_the_same() -> None:
    sockets = parse_tcp_table(TCP6)
    assert [(s.local_port, s.state) for s in sockets] == [
        (18086, LISTEN),
        (18085, LISTEN),
        (18085, ESTABLISHED),
        (18086, ESTABLISHED),
        (0xACB2, ESTABLISHED),
    ]


def test_a_request_socket_counts_as_open() -> None:
    table = TCP4.splitlines()[0] + "\n" + SYN_RECV_LINE + "\n"
    (sock,) = parse_tcp_table(table)
    assert sock.state == SYN_RECV
    assert open_connections([sock], {18084}) == 1


def test_lines_that_do_not_parse_are_skipped_not_raised() -> None:
    table = TCP4 + "  11: 0100007F:ZZZZ 0100007F:8166 01\n  12: cut sh\ngarbage\n\n"
    assert len(parse_tcp_table(table)) == 9
    assert parse_tcp_table("") == []


def test_open_means_accepted_on_a_served_port_in_a_state_data_can_still_cross() -> None:
    sockets = parse_tcp_table(TCP4)
    # on 18084: ESTABLISHED and CLOSE_WAIT count; LISTEN, FIN_WAIT2 do not; the client ends (local port
    # ephemeral) do not, nor the outgoing connection *to* 18086, nor the TIME_WAIT one
    assert open_connections(sockets, {18084}) == 2
    assert open_connections(sockets, {18086}) == 0
    assert open_connections(sockets, set()) == 0
    assert open_connections(parse_tcp_table(TCP6), {18085, 18086}) == 2


def test_a_vip_task_serves_every_port_it_listens_on() -> None:
    sockets = parse_tcp_table(TCP4) + parse_tcp_table(TCP6)
    assert served_ports([80], sockets, listeners=False) == {80}
    assert served_ports([80], sockets, listeners=True) == {80, 18084, 18085, 18086}
    assert open_connections(sockets, served_ports([], sockets, listeners=True)) == 4


def test_the_wait_ends_when_no_connection_is_open_or_at_the_deadline() -> None:
    assert connection_verdict(now=1.0, deadline=10.0, open_count=0) == ConnectionVerdict(True, ENDED)
    assert connection_verdict(now=1.0, deadline=10.0, open_count=3) == ConnectionVerdict(False, "")
    assert connection_verdict(now=10.0, deadline=10.0, open_count=3) == ConnectionVerdict(True, BOUND)
    assert connection_verdict(now=12.0, deadline=10.0, open_count=0) == ConnectionVerdict(True, ENDED)


def test_a_started_task_listens_once_every_served_port_has_a_listener() -> None:
    sockets = parse_tcp_table(TCP4) + parse_tcp_table(TCP6)  # listeners on 18084, 18085, 18086
    assert missing_listeners((18084, 18086), sockets) == frozenset()
    assert missing_listeners((18084, 80), sockets) == {80}
    # a connection on a port, or an outgoing one to it, is no listener
    connected = [TcpSocket(80, "0100007F:8180", ESTABLISHED), TcpSocket(40000, "0100007F:0050", ESTABLISHED)]
    assert missing_listeners((80,), connected) == {80}
    assert missing_listeners((), []) == frozenset()


def test_the_listen_verdict_waits_for_the_listeners_until_its_bound() -> None:
    assert listen_verdict(1.0, 10.0, frozenset()) == ConnectionVerdict(True, LISTENING)
    assert listen_verdict(1.0, 10.0, {80}) == ConnectionVerdict(False, "")
    assert listen_verdict(10.0, 10.0, {80}) == ConnectionVerdict(True, BOUND)
    assert listen_verdict(12.0, 10.0, frozenset()) == ConnectionVerdict(True, LISTENING)
