"""Deletes conntrack entries of backends that left the traffic rules, through conntrack netlink (blocking).

Owns one node's conntrack deletions: for each rule of the ``conntrack_plan.FlushTarget``s it dumps the
entries whose original tuple matches it once (protocol and VIP, or protocol and published port: filtered
by the kernel), keeps those ``conntrack_plan.should_delete`` picks and deletes them one by one (pyroute2's
``Conntrack``, ``nf_conntrack_netlink``), in the current network namespace or, with ``netns``, a named
one. Picked TCP entries are looked up again ``TCP_CONFIRM_S`` after the dumps and deleted only if still
picked (UDP entries go at once): the call then blocks that long. A kernel without
conntrack netlink is logged once and never asked again; any other failure is logged and the next
removal tries again. It never decides what to delete and must only be called from a worker thread in
trio code (a socket per call, opened and closed on that thread).
"""

from __future__ import annotations

import errno
import logging
import socket
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from .conntrack_plan import TCP_CONFIRM_S, ConntrackEntry, FlushTarget, should_delete
from .netlink_classes import load_conntrack

log = logging.getLogger(__name__)

_PROTO_NUMBERS = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP}
#: errors that mean this kernel (or namespace) has no conntrack netlink: logged once, then not asked again
_UNSUPPORTED = {errno.EPROTONOSUPPORT, errno.EOPNOTSUPP, errno.EAFNOSUPPORT, errno.ENOSYS}
_IPS_SEEN_REPLY = 1 << 1  # conntrack status bit: the entry has seen a packet in the reply direction
#: a conntrack message's attributes in pyroute2 ``ConntrackEntry``'s argument order (after the family)
_ENTRY_ATTRIBUTES = (
    "CTA_TUPLE_ORIG",
    "CTA_TUPLE_REPLY",
    "CTA_STATUS",
    "CTA_TIMEOUT",
    "CTA_PROTOINFO",
    "CTA_MARK",
    "CTA_ID",
    "CTA_USE",
    "CTA_ZONE",
)


class ConntrackFlusher:
    """Conntrack entries of removed backends in one network namespace (blocking)."""

    def __init__(self, netns: str | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.netns = netns
        self.sleep = sleep  # between the two looks at unanswered TCP entries
        self.unavailable = False  # set (and logged) once when the kernel has no conntrack netlink
        self.status_filter_refused = False  # set (and logged) once when the kernel cannot dump by status

    def flush(self, targets: Sequence[FlushTarget]) -> Counter[str]:
        """Delete every entry of ``targets``; the number deleted per protocol."""
        deleted: Counter[str] = Counter()
        if not targets or self.unavailable:
            return deleted
        conntrack_class, tuple_class, netlink_error, entry_class = load_conntrack()
        try:
            ct = conntrack_class(**({"netns": self.netns} if self.netns else {}))
        except (OSError, netlink_error) as exc:
            self._failed(exc)
            return deleted
        by_rule: dict[tuple[str, str | None, int | None], list[FlushTarget]] = {}
        for target in targets:  # one dump per UDP rule, however many of its backends left
            by_rule.setdefault((target.protocol, target.dest, target.dest_port), []).append(target)
        tcp = [t for t in targets if t.protocol == "tcp"]
        try:
            second_look: list[tuple[Any, list[FlushTarget]]] = []  # (entry, the targets it may belong to)
            if tcp:  # one dump of the unanswered entries for every TCP rule (no TIME_WAIT crowd)
                dumped = self._unanswered(ct, (tuple_class, entry_class, netlink_error), by_rule)
                found = [raw for raw in dumped if _picked(raw, tcp)]
                second_look += [(raw, tcp) for raw in found]
            for (protocol, dest, dest_port), group in by_rule.items():
                if protocol == "tcp":
                    continue
                wanted = tuple_class(proto=_PROTO_NUMBERS[protocol], daddr=dest, dport=dest_port)
                # the whole dump first: pyroute2 cannot send a request while a dump is being read
                found = [raw for raw in ct.dump_entries(tuple_orig=wanted) if _picked(raw, group)]
                for raw in found:  # UDP: at once (no handshake to wait for)
                    if _delete(ct, raw, netlink_error):
                        deleted[protocol] += 1
            if second_look:
                self.sleep(TCP_CONFIRM_S)
                for raw, group in second_look:
                    again = _get(ct, entry_class, raw.tuple_orig, netlink_error)
                    if again is not None and _picked(again, group) and _delete(ct, again, netlink_error):
                        deleted["tcp"] += 1
        except (OSError, netlink_error) as exc:
            self._failed(exc)
        finally:
            ct.close()
        return deleted

    def _unanswered(
        self,
        ct: Any,
        classes: tuple[type[Any], type[Any], type[Exception]],
        by_rule: dict[tuple[str, str | None, int | None], list[FlushTarget]],
    ) -> list[Any]:
        """Every entry that has seen no reply, filtered by the kernel (its status, Linux >= 5.15): a busy
        published port's dump by tuple holds every TIME_WAIT entry of the last two minutes, tens of
        thousands under load, seconds of parsing that held the node's rule writes and drain
        acknowledgements back. A kernel that refuses the filter is asked per TCP rule instead (the
        decision filters either way)."""
        tuple_class, entry_class, netlink_error = classes
        if not self.status_filter_refused:
            try:
                return [_entry_of(entry_class, m) for m in ct.dump(status=0, status_mask=_IPS_SEEN_REPLY)]
            except netlink_error as exc:
                if getattr(exc, "code", None) not in (errno.EINVAL, errno.EOPNOTSUPP):
                    raise
                self.status_filter_refused = True
                log.info("conntrack dumps by status are not supported here (%s): TCP dumped per rule", exc)
        return [
            raw
            for protocol, dest, dest_port in by_rule
            if protocol == "tcp"
            for raw in ct.dump_entries(
                tuple_orig=tuple_class(proto=socket.IPPROTO_TCP, daddr=dest, dport=dest_port)
            )
        ]

    def _failed(self, exc: BaseException) -> None:
        code = getattr(exc, "code", None) or getattr(exc, "errno", None)
        if code in _UNSUPPORTED:
            self.unavailable = True
            log.warning(
                "conntrack netlink is not available (%s): entries DNATed to removed backends are not "
                "deleted and time out on their own (UDP: nf_conntrack_udp_timeout_stream)",
                exc,
            )
        else:
            log.warning("conntrack entries of removed backends not deleted: %s", exc)


def _picked(raw: Any, group: Sequence[FlushTarget]) -> bool:
    entry = _entry(raw)
    return any(should_delete(t, entry) for t in group)


def _get(ct: Any, entry_class: type[Any], tuple_orig: Any, netlink_error: type[Exception]) -> Any:
    """The entry with this original tuple as the kernel has it now (as a dump gives it); None when gone."""
    try:
        message = ct.entry("get", tuple_orig=tuple_orig)
    except netlink_error as exc:
        if getattr(exc, "code", None) != errno.ENOENT:
            raise
        return None
    return None if message is None else _entry_of(entry_class, message)


def _entry_of(entry_class: type[Any], message: Any) -> Any:
    """A conntrack netlink message as pyroute2's ``ConntrackEntry`` (as its dumps give it)."""
    return entry_class(message["nfgen_family"], *(message.get_attr(name) for name in _ENTRY_ATTRIBUTES))


def _delete(ct: Any, raw: Any, netlink_error: type[Exception]) -> bool:
    """Delete one entry; False when it was gone already (timed out)."""
    try:
        ct.delete(raw)
    except netlink_error as exc:
        if getattr(exc, "code", None) != errno.ENOENT:
            raise
        return False
    return True


def _entry(raw: Any) -> ConntrackEntry:
    """The fields the decision reads of one pyroute2 ``ConntrackEntry``."""
    orig, reply = raw.tuple_orig, raw.tuple_reply
    protocol = (
        "tcp" if orig.proto == socket.IPPROTO_TCP else "udp" if orig.proto == socket.IPPROTO_UDP else ""
    )
    state = raw.protoinfo.state_name() if protocol == "tcp" and raw.protoinfo is not None else None
    return ConntrackEntry(protocol, orig.daddr, orig.dport or 0, reply.saddr, reply.sport or 0, state)
