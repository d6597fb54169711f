"""Transmit-limited broadcast queue (pure), memberlist's TransmitLimitedQueue.

Owns the messages waiting to be piggybacked: each is sent at most ``retransmit_mult * ceil(log10(N+1))``
times, the least transmitted (then newest) first, and a newer message about the same node replaces an
older one. It also owns which peers are known to hold each queued message (they sent it here): a
transmission to such a peer is counted as made but not sent, since the peer would drop it as stale, so
the message spreads over the others exactly as before (its size still charged to the selection) with
fewer bytes, and a packet left with nothing in it is not sent at all (issue 19). It never decides what to
broadcast.
"""

from __future__ import annotations

from typing import Any


class _Item:
    __slots__ = ("bucket", "dead", "holders", "key", "msg", "size_bytes")

    def __init__(self, key: str, msg: Any, size_bytes: int) -> None:
        self.key = key
        self.msg = msg
        self.size_bytes = size_bytes
        self.bucket = 0
        self.dead = False
        self.holders: set[str] | None = None  # peers known to hold ``msg`` (they sent it here)


class BroadcastQueue:
    """Messages bucketed by transmit count (a list per count, newest last); replaced items are tombstoned."""

    MIN_ITEM_BYTES = 48  # stop filling once less than this is left (bounds the scan)
    MAX_MISFITS = 8  # give up on a bucket after this many consecutive items that do not fit

    def __init__(self) -> None:
        self._by_key: dict[str, _Item] = {}
        self._buckets: list[list[_Item]] = [[]]

    def __len__(self) -> int:
        return len(self._by_key)

    def queue(self, key: str, msg: Any, size_bytes: int) -> None:
        """Add a message, invalidating any queued message with the same key."""
        old = self._by_key.get(key)
        if old is not None:
            old.dead = True
        item = _Item(key, msg, size_bytes)
        self._by_key[key] = item
        self._buckets[0].append(item)

    def held_by(self, key: str, msg: Any, peer: str) -> None:
        """``peer`` sent ``msg`` here: if it is the message queued under ``key``, no transmission of it
        goes to ``peer`` (each is counted as made: the others receive it as often as before)."""
        item = self._by_key.get(key)
        if item is not None and (item.msg is msg or (type(item.msg) is type(msg) and item.msg == msg)):
            if item.holders is None:
                item.holders = {peer}
            else:
                item.holders.add(peer)

    def transmits(self, key: str) -> int | None:
        """How often the live message under ``key`` was handed out; None if none is queued."""
        item = self._by_key.get(key)
        return None if item is None else item.bucket

    def get(self, budget_bytes: int, limit: int, peer: str = "") -> tuple[list[Any], int]:
        """Messages fitting ``budget_bytes`` (fewest transmits, newest first) for ``peer``; returns (msgs,
        bytes used). A message ``peer`` holds is counted as transmitted exactly where it would have been
        sent (its size charged to the selection, as memberlist's queue charges a send) and left out of
        ``msgs``: every other peer receives each message as often as before."""
        by_key = self._by_key
        if not by_key:
            return [], 0
        buckets = self._buckets
        min_item = self.MIN_ITEM_BYTES
        max_misfits = self.MAX_MISFITS
        remaining = budget_bytes
        used = 0
        taken: list[_Item] = []
        sent: list[Any] = []
        for transmits, bucket in enumerate(buckets):
            if remaining < min_item:
                break
            if not bucket:
                continue
            if transmits >= limit:  # the limit shrank (fewer nodes): these are done
                for item in bucket:
                    if not item.dead:
                        del by_key[item.key]
                bucket.clear()
                continue
            i = len(bucket) - 1
            misfits = 0
            while i >= 0:
                item = bucket[i]
                if item.dead:
                    del bucket[i]
                elif item.size_bytes <= remaining:
                    taken.append(item)
                    del bucket[i]
                    misfits = 0
                    remaining -= item.size_bytes  # charged even when held: counted exactly where it was sent
                    if item.holders is None or peer not in item.holders:
                        used += item.size_bytes
                        sent.append(item.msg)
                    # else: counted as sent, not sent (``peer`` would drop it as stale)
                    if remaining < min_item:
                        break
                else:
                    misfits += 1
                    if misfits >= max_misfits:
                        break
                i -= 1
        for item in reversed(taken):  # oldest first, so the next bucket stays ordered by age
            nxt = item.bucket + 1
            if nxt >= limit:
                del by_key[item.key]
                continue
            item.bucket = nxt
            if nxt == len(buckets):
                buckets.append([])
            buckets[nxt].append(item)
        return sent, used
