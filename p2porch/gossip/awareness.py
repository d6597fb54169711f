"""Lifeguard local health awareness (pure).

Owns this node's health score: it rises when this node misses nacks or must refute a suspicion about
itself, falls on every successful probe, and stretches this node's probe interval and timeout. It never
judges other nodes.
"""

from __future__ import annotations


class Awareness:
    """Health score in ``[0, max_multiplier - 1]``; timeouts scale by ``score + 1``."""

    __slots__ = ("max_multiplier", "score")

    def __init__(self, max_multiplier: int) -> None:
        self.max_multiplier = max_multiplier
        self.score = 0

    def apply(self, delta: int) -> None:
        self.score = min(max(self.score + delta, 0), self.max_multiplier - 1)

    def scale(self, timeout_s: float) -> float:
        return timeout_s * (self.score + 1)
