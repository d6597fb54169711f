"""The overlay driver opens and uses its netlink sockets on one thread of its own, whichever thread calls it.

pyroute2's synchronous API keeps its asyncio loop only in the thread that opened the socket and builds a
new one for every request made from another thread (docs/performance.md, "Joins, ninth round"). Recording
stand-ins for ``IPRoute`` and for the entries' ``RequestBatch`` check the threads, the runs each batch is
sent in and how answers become errors; no kernel is touched (tests/integration/test_netlink_batch.py
applies the same to a real VXLAN device).
"""

from __future__ import annotations

import errno
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from p2porch.errors import OverlayError
from p2porch.netoverlay import driver as driver_module
from p2porch.netoverlay.diff import (
    AddAddress,
    AddFdb,
    CreateLink,
    DeleteFdb,
    DeleteNeighbour,
    DeleteRoute,
    SetLinkUp,
    SetNeighbour,
    SetRoute,
)
from p2porch.netoverlay.plan import VxlanLink


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

    def link(self, *_: Any, **__: Any) -> None:
        self._record("link")

    def addr(self, *_: Any, **__: Any) -> None:
        self._record("addr")

    def close(self) -> None:
        self.closed_on = threading.get_ident()


class BrokenSocket(RecordingIPRoute):
    def link_lookup(self, ifname: str) -> list[int]:
        raise OSError("socket gone")


class RecordingBatch:
    """Stands in for ``RequestBatch``: records each batch (its requests, thread) and answers ``codes``
    (errno by the request's MAC, else its destination; 0 for the others)."""

    made: list[RecordingBatch] = []
    codes: dict[str, int] = {}

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self.batches: list[tuple[list[tuple[str, str, dict[str, Any]]], int]] = []
        self.closed_on: int | None = None
        RecordingBatch.made.append(self)

    def run(self, requests: list[tuple[str, str, dict[str, Any]]]) -> list[int]:
        self.batches.append((list(requests), threading.get_ident()))
        return [
            RecordingBatch.codes.get(arguments.get("lladdr") or arguments["dst"], 0)
            for *_, arguments in requests
        ]

    def close(self) -> None:
        self.closed_on = threading.get_ident()


JOIN_OPS = [
    AddFdb("vx0", "02:00:00:00:00:02", "192.168.0.2"),
    SetNeighbour("vx0", "10.1.2.1", "02:00:00:00:00:02"),
    SetRoute("vx0", "10.1.2.0/24", "10.1.2.1"),
]


@pytest.fixture(autouse=True)
def recording(monkeypatch: pytest.MonkeyPatch) -> None:
    RecordingIPRoute.made = []
    RecordingBatch.made, RecordingBatch.codes = [], {}
    monkeypatch.setattr(driver_module, "IPRoute", RecordingIPRoute)
    monkeypatch.setattr(driver_module, "RequestBatch", RecordingBatch)


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
    (batch,) = RecordingBatch.made
    assert socket.calls == [("link_lookup", socket.opened_on)]  # one index lookup, kept
    assert len(batch.batches) == 21 * 3  # FDB, neighbour, route: one batch each, in that order
    assert {thread for _, thread in batch.batches} == {socket.opened_on}
    assert socket.opened_on not in callers | {threading.get_ident()}
    driver.close()
    assert socket.closed_on == socket.opened_on == batch.closed_on


def test_a_closed_driver_opens_a_new_socket_and_thread_on_its_next_call() -> None:
    driver = driver_module.NetlinkDriver()
    driver.apply(JOIN_OPS)
    driver.close()
    driver.apply(JOIN_OPS)
    first, second = RecordingIPRoute.made
    assert first.closed_on is not None and second.closed_on is None
    assert {thread for _, thread in second.calls} == {second.opened_on}
    assert RecordingBatch.made[0].closed_on is not None and RecordingBatch.made[1].closed_on is None
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


PASS = [  # a pass as diff_overlay orders it: the link first, removals, then additions by kind
    SetLinkUp("vx0"),
    AddAddress("vx0", "10.1.1.0/32"),
    DeleteRoute("vx0", "10.1.9.0/24"),
    DeleteNeighbour("vx0", "10.1.9.1"),
    DeleteFdb("vx0", "02:00:00:00:00:09", "192.168.0.9"),
    *(AddFdb("vx0", f"02:00:00:00:00:0{i}", f"192.168.0.{i}") for i in (2, 3)),
    *(SetNeighbour("vx0", f"10.1.{i}.1", f"02:00:00:00:00:0{i}") for i in (2, 3)),
    *(SetRoute("vx0", f"10.1.{i}.0/24", f"10.1.{i}.1") for i in (2, 3)),
]


def test_each_run_of_one_kind_of_entry_is_one_batch_in_order_and_the_link_one_request_each() -> None:
    driver = driver_module.NetlinkDriver()
    driver.apply(PASS)
    (socket,) = RecordingIPRoute.made
    (batch,) = RecordingBatch.made
    assert [name for name, _ in socket.calls] == ["link_lookup", "link", "addr"]
    sent = [[(method, command) for method, command, _ in requests] for requests, _ in batch.batches]
    assert sent == [
        [("route", "del")],
        [("neigh", "del")],
        [("fdb", "del")],
        [("fdb", "append")] * 2,
        [("neigh", "replace")] * 2,
        [("route", "replace")] * 2,
    ]
    route = batch.batches[-1][0][0][2]
    assert route == {"dst": "10.1.2.0/24", "gateway": "10.1.2.1", "oif": 7, "flags": ["onlink"], "table": 254}
    driver.close()


def test_a_failed_entry_raises_naming_it_and_the_later_runs_are_not_sent() -> None:
    RecordingBatch.codes = {"02:00:00:00:00:02": errno.EINVAL, "02:00:00:00:00:03": errno.EINVAL}
    driver = driver_module.NetlinkDriver()
    with pytest.raises(OverlayError) as raised:
        driver.apply(PASS)
    assert str(raised.value) == (
        "bridge fdb append 02:00:00:00:00:02 dev vx0 dst 192.168.0.2: (22, 'Invalid argument')"
        " (and 1 more of the same batch)"
    )
    (batch,) = RecordingBatch.made
    assert [requests[0][:2] for requests, _ in batch.batches][-1] == (
        "fdb",
        "append",
    )  # neighbours, routes not sent
    assert RecordingIPRoute.made[0].closed_on is None  # an entry's failure keeps the sockets
    driver.close()


def test_an_add_of_what_exists_and_a_delete_of_what_is_missing_are_not_failures() -> None:
    RecordingBatch.codes = {"10.1.9.0/24": errno.ESRCH, "10.1.9.1": errno.ENOENT, "10.1.2.0/24": errno.EEXIST}
    driver = driver_module.NetlinkDriver()
    driver.apply(PASS)
    assert len(RecordingBatch.made[0].batches) == 6
    RecordingBatch.codes = {"10.1.9.0/24": errno.EEXIST}  # EEXIST on a delete is a failure
    with pytest.raises(OverlayError, match=r"ip route del 10.1.9.0/24 dev vx0: \(17"):
        driver.apply(PASS)
    driver.close()


class ExistingDevice(RecordingIPRoute):
    """A kernel where the device exists already: ``ip link add`` answers EEXIST."""

    def link(self, command: str, **kwargs: Any) -> None:
        super().link(command, **kwargs)
        if command == "add":
            raise driver_module.NetlinkError(errno.EEXIST, "File exists")


def test_apply_says_whether_it_created_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reconciler models a device's entries from the operations only when it created it: one that
    existed (EEXIST, benign) holds what it holds (before: "created" all the same)."""
    create = [
        CreateLink(VxlanLink("vx0", 42, 4789, "10.0.0.1", "vx0", "02:00:00:00:00:01")),
        SetLinkUp("vx0"),
    ]
    driver = driver_module.NetlinkDriver()
    assert driver.apply(create) is True
    assert driver.apply([SetLinkUp("vx0")]) is False and driver.apply([]) is False
    driver.close()
    monkeypatch.setattr(driver_module, "IPRoute", ExistingDevice)
    driver = driver_module.NetlinkDriver()
    assert driver.apply(create) is False
    driver.close()
