"""The real pyroute2 against the loopback device: the overlay driver's reads leave no netlink reply queued
(before, each link ``get`` left its ACK in pyroute2's tag-0 queue for good, issue 19). Reads only."""

from __future__ import annotations

import socket

from p2porch.netoverlay.driver import NetlinkDriver


def test_reads_of_lo_leave_nothing_queued():
    driver = NetlinkDriver()
    try:
        for _ in range(50):
            driver.read("lo")
            driver.underlay("127.0.0.1")
        queued = driver._run(lambda ipr: ipr.asyncore.msg_queue.root.qsize())
        links = driver._run(lambda ipr: ipr.link_lookup(ifname="lo"))
    finally:
        driver.close()
    assert queued == 0
    assert driver.stray_replies_dropped >= 50  # at least one link get per read: each left an ACK
    assert links and socket.if_nametoindex("lo") == links[0]
