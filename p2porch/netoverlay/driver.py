"""Reads and programs the overlay device with pyroute2 (blocking shell; pyroute2 comes via netlink_classes).

Owns netlink access to one network namespace: the current one (``netns=None``) or an existing named
one (tests, sandbox). It keeps one IPRoute socket, opened with ``flags=0`` so a wrong namespace
name fails instead of silently creating a namespace, and one thread of its own that opens and uses
it: pyroute2's synchronous API keeps its asyncio loop and transport only in the thread that opened
the socket and sets up and tears down a new loop for every request made from any other thread
(~0.4 ms of CPU and a socketpair each; docs/performance.md, "Joins, ninth round"). Peers' routes,
neighbours and FDB entries go through :class:`RequestBatch` (compiled by pyroute2's ``IPBatch``, many
per send: each consecutive run of one kind of entry operation in one batch, the next run sent only when
every entry of this one was answered); the link and its addresses one request at a time. Adds of
existing and deletes of missing entries are not errors. It never decides what should be programmed
(that is plan/diff) and must only be called from a worker thread in trio code
(``trio.to_thread.run_sync``); calls are serialised on its thread.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from itertools import groupby
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import OverlayError
from .diff import (
    AddAddress,
    AddFdb,
    CreateLink,
    DeleteAddress,
    DeleteFdb,
    DeleteLink,
    DeleteNeighbour,
    DeleteRoute,
    KernelState,
    LinkState,
    Operation,
    SetLinkUp,
    SetNeighbour,
    SetRoute,
    describe,
)
from .netlink_batch import Request, RequestBatch
from .netlink_classes import load as load_netlink_classes
from .own_thread import OwnThread

if TYPE_CHECKING:
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError
else:  # without pyroute2's package __init__ (the whole library): see netlink_classes
    IPRoute, NetlinkError = load_netlink_classes()

_MAIN_TABLE = 254
_NUD_PERMANENT = 0x80
_IGNORED_ON_ADD = {errno.EEXIST}
_IGNORED_ON_DELETE = {errno.ENOENT, errno.ESRCH, errno.ENODEV, errno.EADDRNOTAVAIL}
#: peers' entries: sent in batches (the other operations touch the link, one request each)
_ENTRY_OPERATIONS = (DeleteRoute, SetRoute, DeleteNeighbour, SetNeighbour, DeleteFdb, AddFdb)
T = TypeVar("T")


def drop_stray_replies(ipr: Any) -> int:
    """Empty ``ipr``'s queue of netlink messages no request waits for; returns how many were dropped.

    pyroute2 0.9 files a message whose sequence number no request holds any more under tag 0, which
    only a broadcast listener reads: every link ``get`` (``link_lookup``, ``get_links(index)``) leaves
    the kernel's ACK there, 36 bytes kept forever, so an idle daemon's overlay and traffic checks grew
    its heap without end (issue 19). The driver's socket never listens to broadcasts: nothing queued
    there is anyone's. Call it on the socket's own thread (its event loop runs there)."""
    queue = getattr(getattr(getattr(ipr, "asyncore", None), "msg_queue", None), "root", None)
    if not isinstance(queue, asyncio.Queue):
        return 0
    dropped = 0
    while True:
        try:
            queue.get_nowait()
        except asyncio.QueueEmpty:
            return dropped
        queue.task_done()
        dropped += 1


class NetlinkDriver:
    """Kernel access for the overlay in one network namespace (blocking)."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self._thread = OwnThread("netlink")  # the one thread that opens and uses the socket
        self._socket: Any = None  # touched on that thread only
        self._batch: RequestBatch | None = None  # peers' entries, many per send; that thread only
        # device name -> index, for the operations of ``apply`` (a link lookup is a dump of every link:
        # one per operation was most of a join's overlay pass on every member); forgotten on every
        # read, link change and failure
        self._indexes: dict[str, int] = {}
        self.stray_replies_dropped = 0  # see drop_stray_replies

    def _run(self, work: Callable[[Any], T]) -> T:
        """``work(socket)`` on the driver's own thread (the socket opened there first, reopened after a
        socket failure); blocks the caller until it is done, one call at a time."""
        return self._thread.run(partial(self._with_socket, work))

    def _with_socket(self, work: Callable[[Any], T]) -> T:
        if self._socket is None:
            try:
                self._socket = IPRoute(netns=self.netns, flags=0) if self.netns else IPRoute()
            except FileNotFoundError as exc:
                raise OverlayError(f"network namespace {self.netns!r} does not exist") from exc
        try:
            return work(self._socket)
        except (NetlinkError, OverlayError):
            raise
        except Exception:
            self._close_socket()
            raise
        finally:
            if self._socket is not None:
                self.stray_replies_dropped += drop_stray_replies(self._socket)

    def close(self) -> None:
        """Close the netlink socket and stop the driver's thread (the next call opens both again)."""
        self._thread.stop(self._close_socket)

    def _close_socket(self) -> None:
        self._indexes.clear()
        batch, self._batch = self._batch, None
        try:
            if batch is not None:
                batch.close()
        finally:
            if self._socket is not None:
                try:
                    self._socket.close()
                finally:
                    self._socket = None

    # ----- reading and writing (from any thread; each runs on the driver's own)
    def underlay(self, address: str, dev: str | None = None) -> tuple[str, int]:
        """(name, MTU) of ``dev`` or, when None, of the link that holds ``address``."""
        return self._run(lambda ipr: self._underlay(ipr, address, dev))

    def read(self, device: str) -> KernelState:
        """The overlay device's link, IPv4 addresses, main-table routes, neighbours and FDB."""
        return self._run(lambda ipr: self._read(ipr, device))

    def read_link(self, device: str) -> LinkState | None:
        """The overlay device's link alone (None: absent), as ``read`` sees it: after the device was
        created, its entries are the ones just added (``diff.created_state``)."""
        return self._run(lambda ipr: self._read_link(ipr, device))

    def apply(self, ops: Sequence[Operation]) -> bool:
        """Apply ``ops`` in order; the first real failure raises OverlayError naming the operation. True
        when a ``CreateLink`` of them created the device: False when it already existed (EEXIST: it
        appeared since the read, and holds what it holds, not only what ``ops`` add)."""
        return bool(ops) and self._run(lambda ipr: self._apply(ipr, ops))

    def delete_link(self, device: str) -> bool:
        """Remove the device (the kernel drops its routes, neighbours and FDB with it); True if it existed."""
        return self._run(lambda ipr: self._delete_link(ipr, device))

    # ----- on the driver's thread
    def _underlay(self, ipr: Any, address: str, dev: str | None) -> tuple[str, int]:
        if dev is None:
            for addr in ipr.get_addr(family=socket.AF_INET):
                if addr.get("IFA_ADDRESS") == address or addr.get("IFA_LOCAL") == address:
                    index = addr["index"]
                    break
            else:
                raise OverlayError(
                    f"no interface holds the advertise address {address}", field="underlay_addr"
                )
        else:
            found = ipr.link_lookup(ifname=dev)
            if not found:
                raise OverlayError(f"underlay device {dev!r} does not exist", field="underlay_dev")
            index = found[0]
        link = ipr.get_links(index)[0]
        return link.get("IFLA_IFNAME"), int(link.get("IFLA_MTU"))

    def _read_link(self, ipr: Any, device: str) -> LinkState | None:
        self._indexes.clear()
        found = ipr.link_lookup(ifname=device)
        return _link_state(ipr, ipr.get_links(found[0])[0]) if found else None

    def _read(self, ipr: Any, device: str) -> KernelState:
        self._indexes.clear()
        found = ipr.link_lookup(ifname=device)
        if not found:
            return KernelState()
        index = found[0]
        link = ipr.get_links(index)[0]
        state = _link_state(ipr, link)
        addresses = frozenset(
            f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}"
            for a in ipr.get_addr(family=socket.AF_INET, index=index)
        )
        routes: dict[str, str | None] = {}
        for route in ipr.get_routes(family=socket.AF_INET, oif=index, table=_MAIN_TABLE):
            if route.get("RTA_TABLE", route["table"]) != _MAIN_TABLE:
                continue
            dst = route.get("RTA_DST") or "0.0.0.0"
            routes[f"{dst}/{route['dst_len']}"] = route.get("RTA_GATEWAY")
        neighbours = {}
        for neigh in ipr.get_neighbours(family=socket.AF_INET, ifindex=index):
            if neigh["ifindex"] != index or not neigh.get("NDA_DST"):
                continue
            neighbours[neigh.get("NDA_DST")] = (
                (neigh.get("NDA_LLADDR") or "").lower(),
                bool(neigh["state"] & _NUD_PERMANENT),
            )
        fdb = set()
        for entry in ipr.fdb("dump", ifindex=index):
            if entry["ifindex"] != index or not entry.get("NDA_DST"):
                continue
            dst, port = entry.get("NDA_DST"), entry.get("NDA_PORT")  # the kernel omits a default port
            fdb.add(((entry.get("NDA_LLADDR") or "").lower(), f"{dst}:{port}" if port else dst))
        return KernelState(state, addresses, routes, neighbours, frozenset(fdb))

    def _apply(self, ipr: Any, ops: Sequence[Operation]) -> bool:
        created = False
        for run in _runs(ops):
            if isinstance(run[0], _ENTRY_OPERATIONS):
                self._apply_entries(ipr, run)
            else:
                done = self._apply_link_operation(ipr, run[0])
                created = created or (done and isinstance(run[0], CreateLink))
        return created

    def _apply_link_operation(self, ipr: Any, op: Operation) -> bool:
        """Apply ``op``; False when it was a no-op (an add of what exists, a delete of what is missing)."""
        if isinstance(op, DeleteLink | CreateLink):
            self._indexes.clear()
        try:
            _apply_one(ipr, op, lambda name: self._index(ipr, name))
        except NetlinkError as exc:
            self._indexes.clear()
            if not _benign(op, exc.code):
                raise OverlayError(f"{describe(op)}: {exc}") from exc
            return False
        return True

    def _apply_entries(self, ipr: Any, ops: Sequence[Operation]) -> None:
        """One batch; every entry is tried (the kernel does not stop at a failed one), the first that
        failed is raised, naming it and how many others failed."""
        if self._batch is None:
            self._batch = RequestBatch(self.netns)
        codes = self._batch.run([_entry_request(op, lambda name: self._index(ipr, name)) for op in ops])
        if any(codes):
            self._indexes.clear()
        failed = [(op, code) for op, code in zip(ops, codes, strict=True) if code and not _benign(op, code)]
        if failed:
            op, code = failed[0]
            others = f" (and {len(failed) - 1} more of the same batch)" if len(failed) > 1 else ""
            raise OverlayError(f"{describe(op)}: {NetlinkError(code)}{others}")

    def _index(self, ipr: Any, name: str) -> int:
        if name not in self._indexes:
            found = ipr.link_lookup(ifname=name)
            if not found:
                raise OverlayError(f"device {name} does not exist")
            self._indexes[name] = int(found[0])
        return self._indexes[name]

    def _delete_link(self, ipr: Any, device: str) -> bool:
        self._indexes.clear()
        found = ipr.link_lookup(ifname=device)
        if not found:
            return False
        try:
            ipr.link("del", index=found[0])
        except NetlinkError as exc:
            if exc.code not in _IGNORED_ON_DELETE:
                raise OverlayError(f"ip link del {device}: {exc}") from exc
        return True


def _is_add(op: Operation) -> bool:
    return isinstance(op, CreateLink | SetLinkUp | AddAddress | SetRoute | SetNeighbour | AddFdb)


def _benign(op: Operation, code: int) -> bool:
    """An add of what exists or a delete of what is missing: not a failure."""
    return code in (_IGNORED_ON_ADD if _is_add(op) else _IGNORED_ON_DELETE)


def _runs(ops: Sequence[Operation]) -> Iterator[list[Operation]]:
    """``ops`` in order: each consecutive run of one kind of entry operation together, any other alone."""
    for kind, run in groupby(ops, key=type):
        if issubclass(kind, _ENTRY_OPERATIONS):
            yield list(run)
        else:
            yield from ([op] for op in run)


def _apply_one(ipr: Any, op: Operation, index: Callable[[str], int]) -> None:
    """The link and its addresses, one request each."""
    match op:
        case DeleteLink(name):
            found = ipr.link_lookup(ifname=name)
            if found:
                ipr.link("del", index=found[0])
        case CreateLink(link):
            ipr.link(
                "add",
                ifname=link.name,
                kind="vxlan",
                address=link.mac,
                vxlan_id=link.vni,
                vxlan_port=link.port,
                vxlan_local=link.local,
                vxlan_link=index(link.underlay_dev),
                vxlan_learning=int(link.learning),
            )
        case SetLinkUp(name):
            ipr.link("set", index=index(name), state="up")
        case AddAddress(name, address):
            iface = ipaddress.IPv4Interface(address)
            ipr.addr("add", index=index(name), address=str(iface.ip), prefixlen=iface.network.prefixlen)
        case DeleteAddress(name, address):
            iface = ipaddress.IPv4Interface(address)
            ipr.addr("del", index=index(name), address=str(iface.ip), prefixlen=iface.network.prefixlen)
        case _:
            raise TypeError(f"not a link operation: {op!r}")


def _entry_request(op: Operation, index: Callable[[str], int]) -> Request:
    """A peer's route, neighbour or FDB entry as the ``IPRoute`` request that sets or deletes it."""
    match op:
        case DeleteRoute(name, dst):
            return "route", "del", {"dst": dst, "oif": index(name), "table": _MAIN_TABLE}
        case SetRoute(name, dst, gateway):
            route = {"dst": dst, "gateway": gateway, "oif": index(name), "flags": ["onlink"]}
            return "route", "replace", {**route, "table": _MAIN_TABLE}
        case DeleteNeighbour(name, ip):
            return "neigh", "del", {"dst": ip, "ifindex": index(name)}
        case SetNeighbour(name, ip, mac):
            neighbour = {"dst": ip, "lladdr": mac, "ifindex": index(name)}
            return "neigh", "replace", {**neighbour, "state": "permanent"}
        case DeleteFdb(name, mac, dst):
            return "fdb", "del", {"ifindex": index(name), "lladdr": mac, **_fdb_dst(dst)}
        case AddFdb(name, mac, dst):
            return "fdb", "append", {"ifindex": index(name), "lladdr": mac, **_fdb_dst(dst)}
    raise TypeError(f"not an entry operation: {op!r}")


def _fdb_dst(dst: str) -> dict[str, Any]:
    """``ip`` or ``ip:port`` (a peer behind a NAT's port forward) as pyroute2 fdb arguments."""
    host, sep, port = dst.partition(":")
    return {"dst": host, "port": int(port)} if sep else {"dst": host}


def _link_state(ipr: Any, link: Any) -> LinkState:
    info = link.get("IFLA_LINKINFO")
    kind = info.get("IFLA_INFO_KIND") if info else ""
    data = info.get("IFLA_INFO_DATA") if info else None
    vni = port = local = underlay = None
    learning = True
    if kind == "vxlan" and data is not None:
        vni = data.get("IFLA_VXLAN_ID")
        port = data.get("IFLA_VXLAN_PORT")
        local = data.get("IFLA_VXLAN_LOCAL")
        learning = bool(data.get("IFLA_VXLAN_LEARNING"))
        dev_index = data.get("IFLA_VXLAN_LINK")
        if dev_index:
            found = ipr.get_links(dev_index)
            underlay = found[0].get("IFLA_IFNAME") if found else None
    return LinkState(
        name=link.get("IFLA_IFNAME"),
        kind=kind or "",
        vni=vni,
        port=port,
        local=local,
        underlay_dev=underlay,
        mac=(link.get("IFLA_ADDRESS") or "").lower(),
        learning=learning,
        up=link["state"] == "up",
        mtu=int(link.get("IFLA_MTU") or 0),
    )
