"""Applies one node's service traffic rules (ingress ports, VIPs) to its kernel (trio shell).

Owns the last rule set written and the serialisation of writes: ``apply`` renders the wanted set with
``service_rules.render_traffic`` and replaces every traffic chain in one ``iptables-restore --noflush``
transaction when the set changed (or when ``force`` asks for a full resync, which also repairs chains
edited by hand); stale chains are deleted in the same transaction. After ``close`` (leave) it writes
nothing more; the overlay's teardown then removes the jumps and every ``P2P-`` chain. It never decides
which tasks are backends (the caller's pure view does) and never blocks trio (iptables runs in a thread).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import trio

from .firewall import Firewall
from .ingress import IngressPort
from .service_rules import render_traffic
from .traffic import TrafficSettings
from .vip import ServiceVip

log = logging.getLogger(__name__)

TrafficInputs = tuple[Sequence[IngressPort], Sequence[ServiceVip], TrafficSettings]


class TrafficApplier:
    """This node's ingress and VIP chains in the kernel, kept equal to the last inputs."""

    def __init__(self, firewall: Firewall) -> None:
        self.firewall = firewall
        self._lock = trio.Lock()
        self._applied: Any = None  # the inputs last written (compared by value)
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
            return True

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
