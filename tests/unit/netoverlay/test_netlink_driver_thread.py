"""The overlay driver opens and uses its netlink socket on one thread of its own, whichever thread calls it.

pyroute2's synchronous API keeps its asyncio loop only in the thread that opened the socket and builds a
new one for every request made from another thread (docs/performance.md, "Joins, ninth round"). A
recording stand-in for ``IPRoute`` checks the threads; no kernel is touched.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from p2porch.errors import OverlayError
from p2porch.netoverlay import driver as driver_module
from p2porch.netoverlay.diff import AddFdb, SetNeighbour, SetRoute


class RecordingIPRoute:
    """Answers the requests a join's apply makes and records the thread of each call."""

    made: list[RecordingIPRoute] = []

    def __init__(self, **_: Any) -> None:
        self.opened_on = threading.get_ident()
        self.calls: list[tuple[str, int]] = []
        self.closed_on: int | None = None
        RecordingIPRoute.made.append(self)

    def _record(self, name: str) -> None:
        self.calls.append((name, threading.get_ident()))

    def link_lookup(self, ifname: str) -> list[int]:
        self._record("link_lookup")
        return [7] if ifname == "vx0" else []

    def route(self, *_: Any, **__: Any) -> None:
        self._record("route")

    def neigh(self, *_: Any, **__: Any) -> None:
        self._record("neigh")

    def fdb(self, *_: Any, **__: Any) -> None:
        self._record("fdb")

    def close(self) -> None:
        self.closed_on = threading.get_ident()


class BrokenSocket(RecordingIPRoute):
    def route(self, *_: Any, **__: Any) -> None:
        raise OSError("socket gone")


JOIN_OPS = [
    AddFdb("vx0", "02:00:00:00:00:02", "192.168.0.2"),
    SetNeighbour("vx0", "10.1.2.1", "02:00:00:00:00:02"),
    SetRoute("vx0", "10.1.2.0/24", "10.1.2.1"),
]


@pytest.fixture(autouse=True)
def recording(monkeypatch: pytest.MonkeyPatch) -> None:
    RecordingIPRoute.made = []
    monkeypatch.setattr(driver_module, "IPRoute", RecordingIPRoute)


def test_every_request_runs_on_the_thread_that_opened_the_socket() -> None:
    driver = driver_module.NetlinkDriver()
    callers = set()

    def apply() -> None:
        callers.add(threading.get_ident())
        driver.apply(JOIN_OPS)

    with ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(apply) for _ in range(20)]:
            future.result()
    driver.apply(JOIN_OPS)  # and from this thread too
    (socket,) = RecordingIPRoute.made
    assert len(socket.calls) == 21 * 3 + 1  # one index lookup, kept; 3 operations per apply
    assert {thread for _, thread in socket.calls} == {socket.opened_on}
    assert socket.opened_on not in callers | {threading.get_ident()}
    driver.close()
    assert socket.closed_on == socket.opened_on


def test_a_closed_driver_opens_a_new_socket_and_thread_on_its_next_call() -> None:
    driver = driver_module.NetlinkDriver()
    driver.apply(JOIN_OPS)
    driver.close()
    driver.apply(JOIN_OPS)
    first, second = RecordingIPRoute.made
    assert first.closed_on is not None and second.closed_on is None
    assert {thread for _, thread in second.calls} == {second.opened_on}
    driver.close()
    driver.close()  # closing twice is fine


def test_a_socket_failure_reopens_the_socket_and_reaches_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver_module, "IPRoute", BrokenSocket)
    driver = driver_module.NetlinkDriver()
    with pytest.raises(OSError, match="socket gone"):
        driver.apply(JOIN_OPS)
    monkeypatch.setattr(driver_module, "IPRoute", RecordingIPRoute)
    driver.apply(JOIN_OPS)
    broken, fresh = RecordingIPRoute.made
    assert broken.closed_on == broken.opened_on and fresh.closed_on is None
    driver.close()


def test_a_missing_device_is_an_overlay_error_from_the_drivers_thread() -> None:
    driver = driver_module.NetlinkDriver()
    with pytest.raises(OverlayError, match="device vx9 does not exist"):
        driver.apply([SetRoute("vx9", "10.1.2.0/24", "10.1.2.1")])
    assert RecordingIPRoute.made[0].closed_on is None  # not a socket failure: the socket is kept
    driver.close()
