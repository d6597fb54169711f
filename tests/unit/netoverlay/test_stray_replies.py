"""The overlay driver drops netlink replies no request waits for (pyroute2 0.9 files the ACK of every link
``get`` under tag 0, which only a broadcast listener reads: an idle daemon's heap grew without end, issue
19). A stand-in socket with pyroute2's queue layout checks the bound over simulated hours under trio's
MockClock; tests/shell/test_netlink_stray_replies.py runs the real pyroute2 against ``lo``."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import trio
from trio.testing import MockClock

from p2porch.netoverlay import driver as driver_module
from p2porch.netoverlay.driver import NetlinkDriver, drop_stray_replies

ACK = b"$\x00\x00\x00\x02\x00\x00\x01" + bytes(28)  # NLMSG_ERROR, error 0: what a link get leaves behind


class LeakyIPRoute:
    """Each ``read`` leaves two stray ACKs in the root queue, as two link gets do in pyroute2 0.9."""

    def __init__(self, **_: Any) -> None:
        self.asyncore = SimpleNamespace(msg_queue=SimpleNamespace(root=asyncio.Queue()))

    def leave_acks(self, n: int) -> None:
        for _ in range(n):
            self.asyncore.msg_queue.root.put_nowait(ACK)

    def close(self) -> None:
        pass


def test_the_root_queue_stays_empty_over_six_simulated_hours_of_reads(monkeypatch):
    monkeypatch.setattr(driver_module, "IPRoute", LeakyIPRoute)
    driver = NetlinkDriver()
    largest = 0

    async def main() -> None:
        nonlocal largest
        while trio.current_time() < 6 * 3600:
            await trio.sleep(10)  # the overlay's drift check, every 10 s
            driver._run(lambda ipr: ipr.leave_acks(2))
            largest = max(largest, driver._run(lambda ipr: ipr.asyncore.msg_queue.root.qsize()))

    try:
        trio.run(main, clock=MockClock(autojump_threshold=0))
    finally:
        driver.close()
    assert largest == 0
    assert driver.stray_replies_dropped == 2 * 6 * 360


def test_drop_stray_replies_counts_and_marks_each_done():
    ipr = LeakyIPRoute()
    ipr.leave_acks(3)
    assert drop_stray_replies(ipr) == 3
    assert ipr.asyncore.msg_queue.root.qsize() == 0
    assert ipr.asyncore.msg_queue.root._unfinished_tasks == 0  # a join() on the queue does not hang
    assert drop_stray_replies(SimpleNamespace()) == 0  # a socket without that layout: left alone
