"""The VXLAN allow-list's kernel ipset, kept over netlink (blocking shell).

Owns one ``hash:ip`` set (``plan.VXLAN_ALLOW_SET``) in one network namespace through pyroute2's
``IPSet`` (NETLINK_NETFILTER): created when missing (idempotent: an existing set of the same type is
kept), read, and changed by adds and deletes, so a join costs every member one netlink request instead
of an ``iptables-restore`` process (issue 19). One thread of its own opens and uses the socket
(pyroute2's synchronous API keeps its event loop in the thread that opened it); with ``netns`` that
thread enters the namespace first (``setns`` moves the calling thread only). Adding a member and
deleting a non-member are not errors. A kernel without ipset raises an OverlayError that says so
(there is no iptables fallback). Adds and deletes go out together: packed directly
(``netlink_encode.encode_ipset_entry``, the bytes pyroute2's ``IPSet.add`` sends) and sent many per
``send`` on a plain netfilter socket of the same thread, one acknowledgement read per entry, where
pyroute2 cost ~1 ms of CPU per entry (a joiner's whole list; docs/performance.md, "The twenty-fifth
round"). Whether entries go out in batches is decided once per socket (``batched``: True, False, or
None: batched when pyroute2's ``IPSet`` gives the kernel's ipset protocol version, else one pyroute2
request per entry, logged once); ``entries_batched``/``entries_one_by_one`` count each way. A refused
entry's error names it with ipset's own text (pyroute2's table). It never decides who is a member
(``plan.plan_vxlan_filter``), never touches another set, and must only be called from a worker thread
in trio code.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import OverlayError
from .netlink_batch import ACK_TIMEOUT_S, CHUNK, RECEIVE_BUFFER, read_acks
from .netlink_classes import load, load_ipset, load_ipset_error
from .netlink_encode import encode_ipset_entry
from .own_thread import OwnThread
from .plan import VXLAN_ALLOW_SET, SetDiff, diff_members

if TYPE_CHECKING:
    from pyroute2.netlink.exceptions import NetlinkError
else:
    _, NetlinkError = load()

SET_TYPE = "hash:ip"
NO_IPSET = (
    "the kernel has no ipset support (CONFIG_IP_SET and ip_set_hash_ip; xt_set for iptables' set match),"
    " which the VXLAN allow-list needs"
)
NETLINK_NETFILTER = 12  # linux/netlink.h (not in Python's socket module)
IPSET_COMMANDS = {"add": 9, "del": 10}  # IPSET_CMD_ADD, IPSET_CMD_DEL: pyroute2's error table per command
T = TypeVar("T")
log = logging.getLogger(__name__)


def _open_ipset() -> Any:
    ipset_class, _ = load_ipset()
    return ipset_class()


def _open_netfilter_socket() -> socket.socket:
    """A plain netfilter socket in the calling thread's namespace (the set's thread entered ``netns``)."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.bind((0, 0))
        sock.settimeout(ACK_TIMEOUT_S)
    except OSError:
        sock.close()
        raise
    return sock


def ipset_error_text(code: int, command: str) -> str:
    """``(code, 'text')`` for an ipset answer's errno: ipset's own codes (>= 4096) by pyroute2's table."""
    return str(load_ipset_error()(code, cmd=IPSET_COMMANDS.get(command)))


class AllowSet:
    """One ``hash:ip`` set of IPv4 addresses in one network namespace (blocking)."""

    def __init__(
        self,
        name: str = VXLAN_ALLOW_SET,
        netns: str | None = None,
        *,
        open_ipset: Callable[[], Any] = _open_ipset,
        batched: bool | None = None,
        open_batch: Callable[[], Any] = _open_netfilter_socket,
    ) -> None:
        self.name = name
        self.netns = netns
        self.batched = batched  # True: batches or an error; False: one request each; None: when it can
        self.entries_batched = 0  # entries sent in batches (tests: which path ran)
        self.entries_one_by_one = 0  # entries sent through pyroute2's IPSet one request each
        self._open_ipset = open_ipset  # a connected pyroute2 IPSet (tests: one that fails)
        self._open_batch = open_batch  # the batches' netfilter socket (tests: a fake)
        self._protocol: int | None = None  # the kernel's ipset protocol version: batches; None: one each
        self._fallback_logged = False
        self._thread = OwnThread("ipset")  # the one thread that opens and uses the socket
        self._socket: Any = None  # touched on that thread only
        self._in_netns = False  # that thread entered ``netns``
        self._batch: Any = None  # adds and deletes, many per send; that thread only
        self._sequence = 0

    # ----- from any thread; each runs on the set's own
    def members(self) -> frozenset[str] | None:
        """The set's addresses, or None when it does not exist."""
        return self._run(self._members)

    def sync(self, wanted: Iterable[str]) -> SetDiff:
        """Create the set when missing and make it hold exactly ``wanted`` (reads it); returns the change."""
        wanted = tuple(wanted)
        return self._run(lambda ipset: self._sync(ipset, wanted))

    def apply(self, diff: SetDiff) -> None:
        """Add and delete what ``diff`` says without reading the set (it holds what the diff came from)."""
        if diff:
            self._run(lambda ipset: self._apply(ipset, diff))

    def destroy(self) -> bool:
        """Destroy the set (no rule may match on it any more); True when it existed."""
        return self._run(self._destroy)

    def close(self) -> None:
        """Close the socket and stop the thread (the next call opens both again)."""
        try:
            self._thread.stop(self._close_socket)
        finally:
            self._in_netns = False  # a new thread starts in the process's namespace

    # ----- on the set's thread
    def _run(self, work: Callable[[Any], T]) -> T:
        return self._thread.run(partial(self._with_socket, work))

    def _with_socket(self, work: Callable[[Any], T]) -> T:
        if self._socket is None:
            self._socket = self._open()
            try:
                self._protocol = self._batch_protocol(self._socket)
            except BaseException:
                self._close_socket()
                raise
        try:
            return work(self._socket)
        except NetlinkError as exc:
            raise OverlayError(f"ipset {self.name}: {exc}") from exc
        except OverlayError:
            raise
        except Exception:
            self._close_socket()
            raise

    def _open(self) -> Any:
        if self.netns and not self._in_netns:
            _, setns = load_ipset()
            try:
                setns(self.netns, flags=0)
            except OSError as exc:
                raise OverlayError(f"network namespace {self.netns!r}: {exc}") from exc
            self._in_netns = True
        try:
            return self._open_ipset()
        except (NetlinkError, OSError) as exc:
            raise OverlayError(f"{NO_IPSET}: {exc}") from exc

    def _batch_protocol(self, ipset: Any) -> int | None:
        """The protocol version batches are packed with, or None for one pyroute2 request per entry."""
        if self.batched is False:
            return None
        version = getattr(ipset, "_proto_version", None)  # pyroute2's IPSet asked the kernel at open
        if type(version) is not int:
            try:  # pyroute2's public call (one request): its attribute renamed, or not pyroute2's socket
                version = ipset.get_proto_version()[0].get_attr("IPSET_ATTR_PROTOCOL")
            except (AttributeError, IndexError, TypeError, NetlinkError):
                version = None
        if type(version) is int and 0 <= version < 256:
            return version
        if self.batched:
            raise OverlayError(f"ipset {self.name}: no ipset protocol version from pyroute2 ({version!r})")
        if not self._fallback_logged:
            self._fallback_logged = True
            log.warning(
                "ipset %s: no ipset protocol version from pyroute2 (%r): one request per entry",
                self.name,
                version,
            )
        return None

    def _close_socket(self) -> None:
        ipset, self._socket = self._socket, None
        batch, self._batch = self._batch, None
        try:
            if batch is not None:
                batch.close()
        finally:
            if ipset is not None:
                ipset.close()

    def _members(self, ipset: Any) -> frozenset[str] | None:
        try:
            messages = list(ipset.list(name=self.name))
        except NetlinkError as exc:
            if exc.code == errno.ENOENT:
                return None
            raise
        found: set[str] = set()
        for message in messages:  # a large set comes in several messages
            kind = message.get_attr("IPSET_ATTR_TYPENAME")
            if kind != SET_TYPE:
                raise OverlayError(f"ipset {self.name} is {kind}, not {SET_TYPE}: destroy it by hand")
            entries = message.get_attr("IPSET_ATTR_ADT")
            for entry in entries.get_attrs("IPSET_ATTR_DATA") if entries else ():
                found.add(entry.get_attr("IPSET_ATTR_IP_FROM").get_attr("IPSET_ATTR_IPADDR_IPV4"))
        return frozenset(found)

    def _sync(self, ipset: Any, wanted: tuple[str, ...]) -> SetDiff:
        current = self._members(ipset)
        if current is None:
            ipset.create(self.name, stype=SET_TYPE, exclusive=False)
            current = frozenset()
        diff = diff_members(wanted, current)
        self._apply(ipset, diff)
        return diff

    def _apply(self, ipset: Any, diff: SetDiff) -> None:
        entries = [("add", a) for a in diff.add] + [("del", a) for a in diff.remove]
        if self._protocol is None:  # one request per entry through pyroute2's IPSet
            for command, address in entries:
                (ipset.add if command == "add" else ipset.delete)(self.name, address, exclusive=False)
                self.entries_one_by_one += 1
            return
        for start in range(0, len(entries), CHUNK):
            self._send_entries(entries[start : start + CHUNK], self._protocol)
            self.entries_batched += len(entries[start : start + CHUNK])

    def _send_entries(self, entries: list[tuple[str, str]], protocol: int) -> None:
        """One send of ``entries`` (each ``ipset add|del``); the first failure raises, naming it."""
        first = (self._sequence + 1) & 0x7FFF_FFFF
        self._sequence = first + len(entries)
        try:
            buffer = b"".join(
                encode_ipset_entry(command, self.name, address, protocol, first + n)
                for n, (command, address) in enumerate(entries)
            )
        except ValueError as exc:
            raise OverlayError(f"ipset {self.name}: cannot encode {exc}") from exc
        try:
            sock = self._batch_socket()
            sock.send(buffer)
            answers = read_acks(sock, first, len(entries))
        except OSError as exc:  # answers dropped or lost: what was applied is unknown
            self._close_socket()
            raise OverlayError(f"ipset {self.name}: {len(entries)} entries: {exc}") from exc
        for n, (command, address) in enumerate(entries):
            if code := answers[first + n]:
                raise OverlayError(
                    f"ipset {self.name}: {command} {address}: {ipset_error_text(code, command)}"
                )

    def _batch_socket(self) -> Any:
        """The netfilter socket of the set's thread (in ``netns``: the thread entered it at open)."""
        if self._batch is None:
            self._batch = self._open_batch()
        return self._batch

    def _destroy(self, ipset: Any) -> bool:
        try:
            ipset.destroy(self.name)
        except NetlinkError as exc:
            if exc.code == errno.ENOENT:
                return False
            raise
        return True
