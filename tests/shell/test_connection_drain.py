"""agent/connection_drain.py: waiting for a draining container's TCP connections to end (shell test: a
/proc tree in a temporary directory, trio's MockClock)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from p2porch.agent.connection_drain import ConnectionDrain, read_tcp_tables

FIXTURES = Path(__file__).parents[1] / "unit" / "agent" / "fixtures"  # real tables (test_tcp_table.py)
TCP4 = (FIXTURES / "proc_net_tcp.txt").read_text()
TCP6 = (FIXTURES / "proc_net_tcp6.txt").read_text()

HEADER = TCP4.splitlines()[0]
ESTABLISHED_80 = "   1: 0200000A:0050 0300000A:C350 01 00000000:00000000 00:00000000 00000000     0        0 7 1 0 20 0 0 10 -1"  # noqa: E501
TIME_WAIT_80 = (
    "   1: 0200000A:0050 0300000A:C350 06 00000000:00000000 03:00000540 00000000     0        0 0 3 0"
)


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


def write_tables(proc: Path, pid: int, tcp: str, tcp6: str = "") -> None:
    net = proc / str(pid) / "net"
    net.mkdir(parents=True, exist_ok=True)
    (net / "tcp").write_text(tcp)
    (net / "tcp6").write_text(tcp6 or TCP6.splitlines()[0] + "\n")


def test_both_tables_are_read_and_a_gone_process_reads_as_none(tmp_path: Path) -> None:
    write_tables(tmp_path, 41, TCP4, TCP6)
    assert len(read_tcp_tables(41, tmp_path) or []) == 9 + 5
    assert read_tcp_tables(42, tmp_path) is None


async def test_the_stop_waits_until_the_last_connection_ended(autojump_clock: Any, tmp_path: Path) -> None:
    write_tables(tmp_path, 41, f"{HEADER}\n{ESTABLISHED_80}\n")
    outcomes: list[str] = []
    drain = ConnectionDrain(10.0, outcomes.append, tmp_path)

    async def client_closes() -> None:
        await trio.sleep(2.0)
        write_tables(tmp_path, 41, f"{HEADER}\n{TIME_WAIT_80}\n")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(client_closes)
        t0 = trio.current_time()
        await drain("t1", 41, (80,), False, t0)
        waited = trio.current_time() - t0
    assert 2.0 <= waited <= 2.0 + 0.11, waited  # one poll (0.1 s) at most
    assert outcomes == ["ended"]


async def test_a_connection_on_another_port_does_not_hold_the_stop(
    autojump_clock: Any, tmp_path: Path
) -> None:
    write_tables(tmp_path, 41, f"{HEADER}\n{ESTABLISHED_80}\n")
    outcomes: list[str] = []
    t0 = trio.current_time()
    await ConnectionDrain(10.0, outcomes.append, tmp_path)("t1", 41, (8080,), False, t0)
    assert trio.current_time() == t0 and outcomes == ["ended"]


async def test_a_connection_that_never_ends_holds_the_stop_until_the_bound(
    autojump_clock: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_tables(tmp_path, 41, TCP4, TCP6)  # a VIP task: every listening port is served
    outcomes: list[str] = []
    started = trio.current_time() - 1.5  # the drain began 1.5 s before this wait
    await ConnectionDrain(4.0, outcomes.append, tmp_path)("t1", 41, (), True, started)
    assert trio.current_time() - started == pytest.approx(4.0, abs=0.01)
    assert outcomes == ["bound"]
    assert "4 connections still open" in caplog.text


async def test_a_container_whose_process_is_gone_does_not_wait(autojump_clock: Any, tmp_path: Path) -> None:
    outcomes: list[str] = []
    t0 = trio.current_time()
    await ConnectionDrain(10.0, outcomes.append, tmp_path)("t1", 41, (80,), True, t0)
    assert trio.current_time() == t0 and outcomes == []


async def test_real_kernel_sockets_hold_the_stop_until_the_client_closes(tmp_path: Path) -> None:
    """This process's own namespace through the real /proc: a loopback listener with one accepted
    connection holds the wait; once both ends closed (the server's side in TIME_WAIT or gone) it ends."""
    import os
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    served, _ = listener.accept()
    outcomes: list[str] = []
    drain = ConnectionDrain(30.0, outcomes.append)

    async def client_closes() -> None:
        await trio.sleep(0.5)
        served.sendall(b"bye")
        served.close()  # the server answers and closes first (busybox httpd does), then the client
        client.recv(3)
        client.close()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client_closes)
            t0 = trio.current_time()
            await drain("t1", os.getpid(), (port,), False, t0)
            waited = trio.current_time() - t0
    finally:
        for s in (listener, served, client):
            s.close()
    assert outcomes == ["ended"]
    assert 0.5 <= waited < 5.0, waited  # held while the connection was open; no bound reached
