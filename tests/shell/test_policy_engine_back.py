"""The network-policy service (member/netpolicy.py ``_run_policy``) when the engine answers again in the
middle of a burst's debounce: the pass it runs at once takes that burst, and the next burst is debounced
as any other (on main the cut burst's first change stayed in the debounce, so the next burst's first
change looked overdue and was planned alone at once). MockClock; a stand-in planner records each pass."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import pytest
import trio
import trio.testing

from p2porch.member import netpolicy
from p2porch.member.netpolicy import POLICY_QUIET_S


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


class Planner:
    """Records each pass's time and burst; plans nothing (so nothing is applied)."""

    def __init__(self, *args: Any) -> None:
        self.passes: list[tuple[float, list[Any]]] = []
        PLANNERS.append(self)

    def plan(self, state: Any, burst: list[Any]) -> None:
        self.passes.append((trio.current_time(), list(burst)))


PLANNERS: list[Planner] = []


async def test_an_engine_back_mid_debounce_leaves_the_next_burst_debounced(
    autojump_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    send, receive = trio.open_memory_channel[Any](100)

    @asynccontextmanager
    async def state_changes() -> AsyncIterator[trio.MemoryReceiveChannel[Any]]:
        yield receive

    async def leased(ctx: Any, changes: Any) -> str:
        return "10.95.37.0/26"

    PLANNERS.clear()
    monkeypatch.setattr(netpolicy, "PolicyPlanner", Planner)
    monkeypatch.setattr(netpolicy, "wait_for_lease", leased)
    monkeypatch.setattr(netpolicy, "shared_index", lambda board: None)
    board = SimpleNamespace(overlay_ready=trio.Event(), engine_back=trio.Event())
    board.overlay_ready.set()
    ctx = SimpleNamespace(
        state_changes=state_changes,
        board=board,
        local=SimpleNamespace(node_id="n1"),
        store=SimpleNamespace(snapshot=lambda: None),
        clock=SimpleNamespace(monotonic=trio.current_time),
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(netpolicy._run_policy, ctx, None)
        await trio.sleep(1)
        send.send_nowait("a")  # a burst starts ...
        await trio.sleep(POLICY_QUIET_S / 5)
        fired, board.engine_back = board.engine_back, trio.Event()  # ... the engine answers again
        fired.set()
        await trio.sleep(4)
        t0 = trio.current_time()
        send.send_nowait("b")  # the next burst, 4 s later: two changes 20 ms apart
        await trio.sleep(0.02)
        send.send_nowait("c")
        await trio.sleep(2)
        passes = PLANNERS[0].passes
        assert passes[0] == (0.0, [])
        assert passes[1] == (1 + POLICY_QUIET_S / 5, ["a"])  # the engine back's pass took the cut burst
        assert passes[2] == (pytest.approx(t0 + 0.02 + POLICY_QUIET_S), ["b", "c"])  # debounced, together
        nursery.cancel_scope.cancel()
