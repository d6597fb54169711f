"""agent/listen_wait.py: holding a started container's running report until it listens (shell test: a
/proc tree in a temporary directory, trio's MockClock)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from p2porch.agent.listen_wait import ListenWait

FIXTURES = Path(__file__).parents[1] / "unit" / "agent" / "fixtures"  # real tables (test_tcp_table.py)
HEADER = (FIXTURES / "proc_net_tcp.txt").read_text().splitlines()[0]
HEADER6 = (FIXTURES / "proc_net_tcp6.txt").read_text().splitlines()[0]
LISTEN_80 = "   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 7 1 0 100 0 0 10 0"  # noqa: E501
OUTGOING_80 = "   1: 0200000A:C350 0300000A:0050 01 00000000:00000000 00:00000000 00000000     0        0 8 1 0 20 0 0 10 -1"  # noqa: E501


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


def write_tables(proc: Path, pid: int, *lines: str) -> None:
    net = proc / str(pid) / "net"
    net.mkdir(parents=True, exist_ok=True)
    (net / "tcp").write_text("\n".join((HEADER, *lines)) + "\n")
    (net / "tcp6").write_text(HEADER6 + "\n")


async def test_the_running_report_waits_until_the_process_listens(
    autojump_clock: Any, tmp_path: Path
) -> None:
    write_tables(tmp_path, 41, OUTGOING_80)  # its own connection to a port 80 elsewhere is no listener
    outcomes: list[str] = []

    async def process_listens() -> None:
        await trio.sleep(1.5)
        write_tables(tmp_path, 41, OUTGOING_80, LISTEN_80)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(process_listens)
        t0 = trio.current_time()
        await ListenWait(10.0, outcomes.append, tmp_path)("t1", 41, (80,))
        waited = trio.current_time() - t0
    assert 1.5 <= waited <= 1.5 + 0.021, waited  # one poll (0.02 s) at most
    assert outcomes == ["listening"]


async def test_a_process_that_never_listens_is_reported_at_the_bound(
    autojump_clock: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_tables(tmp_path, 41, LISTEN_80)
    outcomes: list[str] = []
    t0 = trio.current_time()
    await ListenWait(4.0, outcomes.append, tmp_path)("t1", 41, (80, 8080))
    assert trio.current_time() - t0 == pytest.approx(4.0, abs=0.01)
    assert outcomes == ["bound"]
    assert "not listening on 8080/tcp 4.0 s after its start" in caplog.text


async def test_a_gone_process_does_not_wait(autojump_clock: Any, tmp_path: Path) -> None:
    outcomes: list[str] = []
    t0 = trio.current_time()
    await ListenWait(4.0, outcomes.append, tmp_path)("t1", 41, (80,))
    assert trio.current_time() == t0 and outcomes == ["gone"]
