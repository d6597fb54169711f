"""The leader's append messages encoded once for every peer that gets the same one (Raft thread).

pysyncobj builds one ``append_entries`` message per peer each round and the guarded transport pickled and
compressed each of them: with 3 voters and 20 read-only replicas at the same index, the same entries were
encoded 22 times per round. ``AppendFanout.packed(message)`` returns the frame payload (``frames``' flags
and the possibly compressed pickle) from a small cache keyed by what identifies the message's content:
its term, commit index, previous entry (index, term) and the range of entries with the last one's term.
By Raft's log matching, two entries with the same index and term in a leader's log are the same entry,
so equal keys mean equal messages. Anything else (votes, answers, snapshots, the handshake) is encoded
each time as before. Only the encryption (per connection keys and counters) stays per peer. Never holds
more than ``MAX_CACHED`` payloads; never touches a socket.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from pysyncobj import pickle as pso_pickle

from .frames import pack_payload

MAX_CACHED = 4
_APPEND_KEYS = frozenset({"type", "term", "commit_index", "entries", "prevLogIdx", "prevLogTerm"})


def append_key(message: Any) -> tuple[Any, ...] | None:
    """The content key of a leader's plain append (entries inline); None for any other message."""
    if type(message) is not dict or message.keys() != _APPEND_KEYS or message["type"] != "append_entries":
        return None
    entries = message["entries"]
    if type(entries) is not list:
        return None
    last = entries[-1] if entries else None
    if last is not None and not (type(last) is tuple and len(last) == 3):
        return None
    tail = (last[1], last[2]) if last is not None else None
    return (
        message["term"],
        message["commit_index"],
        message["prevLogIdx"],
        message["prevLogTerm"],
        len(entries),
        tail,
    )


class AppendFanout:
    """Payloads of the last few distinct appends (one per transport: its leader's log)."""

    def __init__(self) -> None:
        self._cache: OrderedDict[tuple[Any, ...], tuple[int, bytes]] = OrderedDict()
        self.encoded = 0  # messages pickled and packed
        self.reused = 0  # appends served from the cache

    def packed(self, message: Any) -> tuple[int, bytes]:
        """``(flags, payload)`` of ``message`` as ``FrameChannel.seal`` would pack it."""
        key = append_key(message)
        if key is not None:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                self.reused += 1
                return hit
        out = pack_payload(pso_pickle.dumps(message))
        self.encoded += 1
        if key is not None:
            self._cache[key] = out
            while len(self._cache) > MAX_CACHED:
                self._cache.popitem(last=False)
        return out
