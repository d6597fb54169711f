"""next_burst (member/netpolicy.py): the network-policy service plans a burst of commits once it pauses,
at the latest POLICY_MAX_DELAY_S after its first change; no change is lost (virtual clock)."""

from __future__ import annotations

import trio
import trio.testing

from p2porch.debounce import Debounce
from p2porch.member.netpolicy import POLICY_MAX_DELAY_S, POLICY_QUIET_S, next_burst


async def _send_every(send: trio.MemorySendChannel[int], period_s: float, count: int) -> None:
    for i in range(count):
        await send.send(i)
        await trio.sleep(period_s)


async def test_a_long_burst_is_cut_at_the_max_delay_and_nothing_is_lost(
    autojump_clock: trio.testing.MockClock,
) -> None:
    send, receive = trio.open_memory_channel[int](1000)
    debounce = Debounce(POLICY_QUIET_S, POLICY_MAX_DELAY_S)
    got: list[int] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_send_every, send, 0.01, 300)  # 3 s of commits, 10 ms apart
        t0 = trio.current_time()
        first: list[int] = []
        await next_burst(receive, debounce, first, 60.0)
        assert POLICY_MAX_DELAY_S <= trio.current_time() - t0 < POLICY_MAX_DELAY_S + 0.05
        assert 90 <= len(first) <= 110
        got += first
        while len(got) < 300:
            burst: list[int] = []
            await next_burst(receive, debounce, burst, 60.0)
            got += burst
    assert got == list(range(300))


async def test_a_short_burst_is_planned_once_it_pauses(autojump_clock: trio.testing.MockClock) -> None:
    send, receive = trio.open_memory_channel[int](100)
    debounce = Debounce(POLICY_QUIET_S, POLICY_MAX_DELAY_S)
    for i in range(3):
        send.send_nowait(i)
    t0 = trio.current_time()
    burst: list[int] = []
    await next_burst(receive, debounce, burst, 60.0)
    assert burst == [0, 1, 2] and trio.current_time() - t0 == POLICY_QUIET_S


async def test_no_change_returns_after_the_wait(autojump_clock: trio.testing.MockClock) -> None:
    _, receive = trio.open_memory_channel[int](1)
    burst: list[int] = []
    t0 = trio.current_time()
    await next_burst(receive, Debounce(POLICY_QUIET_S, POLICY_MAX_DELAY_S), burst, 30.0)
    assert burst == [] and trio.current_time() - t0 == 30.0
