"""Caps on open connections to the TLS API, per source address and in total (pure).

The listener asks :meth:`ConnectionLimiter.admit` for every accepted connection before its TLS
handshake: a source already holding ``per_source`` open connections, or a listener already holding
``total``, is refused (the connection is closed at once) and the refusal is counted by reason. An
admitted connection is :meth:`ConnectionLimiter.release`\\ d when it closes. Only sources with open
connections are remembered, so memory is bounded by ``total``. It never sees a request or a token.
"""

from __future__ import annotations

__all__ = ["PER_SOURCE", "TOTAL", "ConnectionLimiter"]

PER_SOURCE = "per_source"
TOTAL = "total"


class ConnectionLimiter:
    """Open connections per source; refuses beyond ``per_source`` per address or ``total`` overall."""

    def __init__(self, *, per_source: int = 32, total: int = 1024) -> None:
        if per_source < 1 or total < per_source:
            raise ValueError("need 1 <= per_source <= total")
        self.per_source = per_source
        self.total = total
        self._open: dict[str, int] = {}
        self.open_now = 0
        self.refused: dict[str, int] = {PER_SOURCE: 0, TOTAL: 0}

    def admit(self, source: str) -> str | None:
        """None (and counts the connection open) when ``source`` may connect, else the refusal reason."""
        held = self._open.get(source, 0)
        if self.open_now < self.total and held < self.per_source:
            self._open[source] = held + 1
            self.open_now += 1
            return None
        reason = TOTAL if self.open_now >= self.total else PER_SOURCE
        self.refused[reason] += 1
        return reason

    def release(self, source: str) -> None:
        """An admitted connection of ``source`` closed."""
        left = self._open.get(source, 0) - 1
        if left < 0:
            return
        if left == 0:
            del self._open[source]
        else:
            self._open[source] = left
        self.open_now -= 1

    def open_from(self, source: str) -> int:
        return self._open.get(source, 0)

    def __len__(self) -> int:
        """Sources with at least one open connection."""
        return len(self._open)
