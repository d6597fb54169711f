"""Applies one node's service traffic rules (ingress ports, VIPs) to its kernel (trio shell).

Owns the last rule set written and the serialisation of writes: ``apply`` renders the wanted set with
``service_rules.render_traffic`` and replaces every traffic chain in one ``iptables-restore --noflush``
transaction when the set changed (or when ``force`` asks for a full resync, which also repairs chains
edited by hand); stale chains are deleted in the same transaction. A write that dropped backends
leaves their conntrack entries to ``flush_removed`` (``conntrack_plan.removed_targets`` against the last
set written, ``conntrack_flush``: UDP flows and unanswered TCP SYNs move to the remaining backends),
which the caller runs beside its next writes: a flush holds its thread for a dump and, with an
unanswered SYN, a second look 0.5 s later, and neither the next write nor the drain acknowledgement of
this one waits for it. The count goes to ``on_flushed``. After ``close`` (leave) it writes nothing
more; the overlay's teardown then removes the jumps and every ``P2P-`` chain. It never decides which
tasks are backends (the caller's pure view does) and never blocks trio (iptables and netlink run in a
thread).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import trio

from .conntrack_flush import ConntrackFlusher
from .conntrack_plan import FlushTarget, ingress_pairs, removed_targets, sort_key, vip_pairs
from .firewall import Firewall
from .ingress import IngressPort
from .service_rules import render_traffic
from .traffic import TrafficSettings
from .vip import ServiceVip

log = logging.getLogger(__name__)

TrafficInputs = tuple[Sequence[IngressPort], Sequence[ServiceVip], TrafficSettings]


class TrafficApplier:
    """This node's ingress and VIP chains in the kernel, kept equal to the last inputs."""

    def __init__(
        self,
        firewall: Firewall,
        conntrack: ConntrackFlusher | None = None,
        on_flushed: Callable[[str, int], None] = lambda protocol, count: None,
    ) -> None:
        self.firewall = firewall
        self.conntrack = conntrack  # None: removed backends' conntrack entries are left to time out
        self.on_flushed = on_flushed  # (protocol, entries deleted) after each flush that deleted some
        self._lock = trio.Lock()
        self._flush_lock = trio.Lock()  # one flush at a time, beside the writes
        self._removed: set[FlushTarget] = set()  # dropped by writes, their entries not flushed yet
        self._applied: Any = None  # the inputs last written (compared by value)
        self._written: tuple[Sequence[IngressPort], Sequence[ServiceVip]] | None = None  # in the kernel now
        self.closed = False
        self.applies = 0
        self.failures = 0
        self.last_error = ""
        self.last_apply_s = 0.0  # how long the last iptables-restore took

    async def apply(self, inputs: TrafficInputs, *, force: bool = False) -> bool:
        """Write the rule set for ``inputs`` unless it is already there; True when written."""
        ports, vips, settings = inputs
        key = (tuple(sorted(ports, key=repr)), tuple(sorted(vips, key=repr)), settings)
        async with self._lock:
            if self.closed or (key == self._applied and not force):
                return False
            try:
                existing = await trio.to_thread.run_sync(self.firewall.chain_names, "nat")
                text = render_traffic(ports, vips, settings, existing)
                started = time.perf_counter()
                await trio.to_thread.run_sync(self.firewall.restore, text)
                self.last_apply_s = time.perf_counter() - started
            except Exception as exc:
                self.failures += 1
                self.last_error = str(exc)
                self._applied = None
                raise
            self._applied = key
            self.applies += 1
            log.debug("traffic rules: %d ingress ports, %d VIPs written", len(ports), len(vips))
            old, self._written = self._written, (ports, vips)
            if self.conntrack is not None:
                self._removed.update(removed_targets(old, (ports, vips)))
            return True

    @property
    def flush_waiting(self) -> bool:
        """Whether a write dropped backends whose conntrack entries ``flush_removed`` has not deleted."""
        return bool(self._removed)

    async def flush_removed(self) -> None:
        """Delete the conntrack entries of the backends the writes since the last flush dropped (a backend
        written again since is left alone)."""
        async with self._flush_lock:
            written = self._written or ((), ())
            targets = sorted(self._removed - ingress_pairs(written[0]) - vip_pairs(written[1]), key=sort_key)
            self._removed.clear()
            if self.conntrack is None or not targets:
                return
            try:
                deleted = await trio.to_thread.run_sync(self.conntrack.flush, targets)
            except Exception as exc:  # the rules are written: a failed flush only leaves entries to time out
                log.warning("conntrack entries of removed backends not deleted: %r", exc)
                return
        for protocol, count in sorted(deleted.items()):
            self.on_flushed(protocol, count)
        if deleted:
            backends = sorted({t.backend for t in targets})
            log.info(
                "conntrack: deleted %s entries DNATed to removed backends %s",
                dict(sorted(deleted.items())),
                ", ".join(backends),
            )

    async def close(self) -> None:
        """Stop writing (the node leaves): waits for a write in progress to finish."""
        async with self._lock:
            self.closed = True

    def status(self) -> dict[str, Any]:
        ports, vips = (self._applied[0], self._applied[1]) if self._applied else ((), ())
        return {
            "ingress_ports": [
                {
                    "published": p.published,
                    "target": p.target,
                    "protocol": p.protocol,
                    "policy": p.policy,
                    "backends": [b.address for b in p.backends],
                }
                for p in ports
            ],
            "vips": [
                {"service_id": v.service_id, "vip": v.vip, "backends": [b.address for b in v.backends]}
                for v in vips
            ],
            "applies": self.applies,
            "failures": self.failures,
            "last_error": self.last_error,
            "last_apply_ms": round(self.last_apply_s * 1000, 2),
        }
