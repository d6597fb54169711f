"""Lifeguard dynamic suspicion timeouts (pure).

Owns one suspicion of one member: who first suspected it, which distinct members confirmed it, and the
deadline that shrinks logarithmically with confirmations (memberlist's suspicion.go), and the bound on
crash -> dead everywhere a configuration implies. It never declares anything dead itself: the SWIM facade
asks for the deadline.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .messages import retransmit_limit

if TYPE_CHECKING:
    from .config import GossipConfig


def suspicion_min_timeout_s(suspicion_mult: int, num_nodes: int, probe_interval_s: float) -> float:
    """memberlist: ``suspicion_mult * max(1, log10(max(1, N))) * probe_interval``."""
    node_scale = max(1.0, math.log10(max(1, num_nodes)))
    return suspicion_mult * node_scale * probe_interval_s


def failure_detection_bound_s(config: GossipConfig, num_nodes: int) -> float:
    """Upper bound on crash -> dead everywhere implied by the config (see docs/gossip.md).

    First probe of the dead node within a fully degraded probe interval, the failed probe's own interval,
    the unconfirmed (maximum) suspicion timeout, then dissemination of the dead message for one full
    retransmit budget of gossip rounds.
    """
    probe_s = config.probe_interval_s * config.awareness_max_multiplier
    min_s = suspicion_min_timeout_s(config.suspicion_mult, num_nodes, config.probe_interval_s)
    max_s = config.suspicion_max_timeout_mult * min_s
    spread_s = retransmit_limit(config.retransmit_mult, num_nodes) * config.gossip_interval_s
    return probe_s + config.probe_interval_s + max_s + spread_s


def remaining_suspicion_s(confirmations: int, k: int, elapsed_s: float, min_s: float, max_s: float) -> float:
    """Time left: ``max - log(c+1)/log(k+1) * (max - min)``, floored to ms, never below min, minus elapsed."""
    if k < 1:
        return min_s - elapsed_s
    frac = math.log(confirmations + 1.0) / math.log(k + 1.0)
    raw = max_s - frac * (max_s - min_s)
    timeout = math.floor(1000.0 * raw) / 1000.0
    return max(timeout, min_s) - elapsed_s


class Suspicion:
    """One open suspicion; ``k`` is the number of independent confirmations that bring it down to min."""

    __slots__ = ("confirmers", "k", "max_s", "min_s", "start_s", "suspector")

    def __init__(self, suspector: str, k: int, min_s: float, max_s: float, start_s: float) -> None:
        self.suspector = suspector
        self.k = k
        self.min_s = min_s
        self.max_s = max_s if k >= 1 else min_s
        self.start_s = start_s
        self.confirmers: list[str] = []

    def confirm(self, sender: str) -> bool:
        """Count a new independent suspector; False if already counted, the original, or k is reached."""
        if len(self.confirmers) >= self.k or sender == self.suspector or sender in self.confirmers:
            return False
        self.confirmers.append(sender)
        return True

    def deadline_s(self) -> float:
        return self.start_s + remaining_suspicion_s(len(self.confirmers), self.k, 0.0, self.min_s, self.max_s)
