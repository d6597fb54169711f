"""Deletes conntrack entries of backends that left the traffic rules, through conntrack netlink (blocking).

Owns one node's conntrack deletions: for each rule of the ``conntrack_plan.FlushTarget``s it dumps the
entries whose original tuple matches it once (protocol and VIP, or protocol and published port: filtered
by the kernel), keeps those ``conntrack_plan.should_delete`` picks and deletes them one by one (pyroute2's
``Conntrack``, ``nf_conntrack_netlink``), in the current network namespace or, with ``netns``, a named
one. A kernel without conntrack netlink is logged once and never asked again; any other failure is
logged and the next removal tries again. It never decides what to delete and must only be called from
a worker thread in trio code (a socket per call, opened and closed on that thread).
"""

from __future__ import annotations

import errno
import logging
import socket
from collections import Counter
from collections.abc import Sequence
from typing import Any

from .conntrack_plan import ConntrackEntry, FlushTarget, should_delete
from .netlink_classes import load_conntrack

log = logging.getLogger(__name__)

_PROTO_NUMBERS = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP}
#: errors that mean this kernel (or namespace) has no conntrack netlink: logged once, then not asked again
_UNSUPPORTED = {errno.EPROTONOSUPPORT, errno.EOPNOTSUPP, errno.EAFNOSUPPORT, errno.ENOSYS}


class ConntrackFlusher:
    """Conntrack entries of removed backends in one network namespace (blocking)."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self.unavailable = False  # set (and logged) once when the kernel has no conntrack netlink

    def flush(self, targets: Sequence[FlushTarget]) -> Counter[str]:
        """Delete every entry of ``targets``; the number deleted per protocol."""
        deleted: Counter[str] = Counter()
        if not targets or self.unavailable:
            return deleted
        conntrack_class, tuple_class, netlink_error = load_conntrack()
        try:
            ct = conntrack_class(**({"netns": self.netns} if self.netns else {}))
        except (OSError, netlink_error) as exc:
            self._failed(exc)
            return deleted
        by_rule: dict[tuple[str, str | None, int | None], list[FlushTarget]] = {}
        for target in targets:  # one dump per rule, however many of its backends left
            by_rule.setdefault((target.protocol, target.dest, target.dest_port), []).append(target)
        try:
            for (protocol, dest, dest_port), group in by_rule.items():
                wanted = tuple_class(proto=_PROTO_NUMBERS[protocol], daddr=dest, dport=dest_port)
                # the whole dump first: pyroute2 cannot send a request while a dump is being read
                found = [
                    raw
                    for raw in ct.dump_entries(tuple_orig=wanted)
                    if any(should_delete(t, entry) for entry in [_entry(raw)] for t in group)
                ]
                for raw in found:
                    try:
                        ct.delete(raw)
                    except netlink_error as exc:
                        if getattr(exc, "code", None) != errno.ENOENT:  # gone already (timed out): fine
                            raise
                        continue
                    deleted[protocol] += 1
        except (OSError, netlink_error) as exc:
            self._failed(exc)
        finally:
            ct.close()
        return deleted

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


def _entry(raw: Any) -> ConntrackEntry:
    """The fields the decision reads of one pyroute2 ``ConntrackEntry``."""
    orig, reply = raw.tuple_orig, raw.tuple_reply
    protocol = (
        "tcp" if orig.proto == socket.IPPROTO_TCP else "udp" if orig.proto == socket.IPPROTO_UDP else ""
    )
    state = raw.protoinfo.state_name() if protocol == "tcp" and raw.protoinfo is not None else None
    return ConntrackEntry(protocol, orig.daddr, orig.dport or 0, reply.saddr, reply.sport or 0, state)
