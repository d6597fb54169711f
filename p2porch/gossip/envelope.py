"""Sender envelope and replay guard for gossip traffic (pure).

Every sealed gossip plaintext (UDP packet or TCP message head) starts with an envelope: the sender's
node name, its advertised ``host:port`` and a per-sender sequence number that only grows (microseconds of
the sender's clock, bumped by one when two messages fall into the same microsecond, so it keeps growing
across restarts). The envelope is inside the authenticated plaintext: replies go to ``addr`` from the
envelope, never to the (spoofable) UDP source, and :class:`ReplayGuard` drops any (sender, seq) it has
already accepted. It never touches sockets, keys or the clock.

Wire form: ``seq(8, big endian) || len(name)(1) || name || len(addr)(1) || addr || payload``.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ..errors import WireError

_SEQ = struct.Struct(">Q")
MAX_FIELD_BYTES = 255
REPLAY_WINDOW = 10_000_000  # 10 s of sender clock: older unseen sequence numbers are refused
MAX_RECENT_PER_SENDER = 2048
MIN_RECENT_PER_SENDER = 64  # below this many numbers a sender's window is not pruned
MAX_TRACKED_SENDERS = 4096


class Envelope(NamedTuple):
    """Who sent a message (as proven by the key that opened it) and its sequence number."""

    sender: str
    addr: str
    seq: int


def envelope_bytes(sender: str, addr: str) -> int:
    """Size the envelope adds in front of the payload."""
    return _SEQ.size + 2 + len(sender.encode()) + len(addr.encode())


def encode_envelope(env: Envelope, payload: bytes) -> bytes:
    name = env.sender.encode()
    addr = env.addr.encode()
    if len(name) > MAX_FIELD_BYTES or len(addr) > MAX_FIELD_BYTES:
        raise WireError("gossip sender name or address is too long")
    return b"".join((_SEQ.pack(env.seq), bytes((len(name),)), name, bytes((len(addr),)), addr, payload))


def decode_envelope(data: bytes) -> tuple[Envelope, bytes]:
    """Split plaintext into (envelope, payload); raises WireError when it is malformed."""
    try:
        (seq,) = _SEQ.unpack_from(data, 0)
        pos = _SEQ.size
        n = data[pos]
        name = data[pos + 1 : pos + 1 + n].decode()
        pos += 1 + n
        m = data[pos]
        addr = data[pos + 1 : pos + 1 + m].decode()
        pos += 1 + m
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise WireError("malformed gossip envelope") from exc
    if pos > len(data) or not name or not addr:
        raise WireError("malformed gossip envelope")
    return Envelope(name, addr, seq), data[pos:]


class SequenceClock:
    """Strictly increasing sequence numbers from a microsecond clock value given by the caller."""

    def __init__(self) -> None:
        self._last = 0

    def next(self, now_us: int) -> int:
        self._last = max(self._last + 1, now_us)
        return self._last


class _SenderWindow:
    __slots__ = ("floor", "highest", "recent", "pruned_to")

    def __init__(self, seq: int) -> None:
        self.highest = seq
        self.floor = seq - REPLAY_WINDOW
        self.recent = {seq}
        self.pruned_to = 0  # how many numbers the last prune kept


def prune_below_floor(window: _SenderWindow) -> None:
    """Forget the numbers at or below ``floor`` once ``recent`` has doubled since the last prune (and
    holds more than MIN_RECENT_PER_SENDER): they are refused by the floor anyway, so ``recent`` holds
    about one REPLAY_WINDOW of the sender's traffic instead of filling up to MAX_RECENT_PER_SENDER.
    Amortised O(1) per accepted number."""
    recent = window.recent
    if len(recent) <= max(MIN_RECENT_PER_SENDER, 2 * window.pruned_to):
        return
    floor = window.floor
    window.recent = {s for s in recent if s > floor}
    window.pruned_to = len(window.recent)


class ReplayGuard:
    """Remembers which sequence numbers each sender already used; ``accept`` is False for a replay.

    Per sender: a number at or below ``floor`` (older than REPLAY_WINDOW before the newest seen, or older
    than what was forgotten to keep the set bounded) or one already in ``recent`` is a replay. Memory is
    bounded: ``recent`` holds about the numbers of the last REPLAY_WINDOW (older ones are pruned,
    :func:`prune_below_floor`) and never more than MAX_RECENT_PER_SENDER; MAX_TRACKED_SENDERS senders
    (the least recently heard is forgotten first; only authenticated senders get here).
    """

    def __init__(self) -> None:
        self._senders: dict[str, _SenderWindow] = {}

    def accept(self, sender: str, seq: int) -> bool:
        senders = self._senders
        window = senders.pop(sender, None)
        if window is None:
            senders[sender] = _SenderWindow(seq)
            if len(senders) > MAX_TRACKED_SENDERS:
                del senders[next(iter(senders))]
            return True
        senders[sender] = window  # re-insert: most recently heard last
        if seq <= window.floor or seq in window.recent:
            return False
        window.recent.add(seq)
        if seq > window.highest:
            window.highest = seq
            window.floor = max(window.floor, seq - REPLAY_WINDOW)
        prune_below_floor(window)
        if len(window.recent) > MAX_RECENT_PER_SENDER:
            kept = sorted(s for s in window.recent if s > window.floor)[-MAX_RECENT_PER_SENDER // 2 :]
            if kept:
                window.floor = max(window.floor, kept[0] - 1)
            window.recent = set(kept)
            window.pruned_to = len(kept)
        return True

    def recent_numbers(self) -> int:
        """How many sequence numbers are remembered over every sender (the guard's memory)."""
        return sum(len(w.recent) for w in self._senders.values())

    def tracked_senders(self) -> int:
        return len(self._senders)
