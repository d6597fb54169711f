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

An entry of ``appendEntriesBatchSizeBytes`` (64 KiB) or more (a placement round's ``PutTasks`` of up to
2,000 tasks is ~1.5 MB) travels as a *transmission*: pysyncobj pickles it for each peer and sends it in
64 KiB chunks, each its own message with the chunk's bytes in ``data``. Those are cached too
(``chunk_key``): by the message's other fields, the chunk's length and its first and last bytes (chunks
of periodic bytes can share a key: each key holds a list), and a hit only when a kept chunk's bytes equal
the message's exactly (a memcmp), so a payload is reused only for the very same message. The chunks
kept are those of one entry (a chunk of another entry starts afresh), at most ``MAX_CHUNKS``, dropped
once ``CHUNKS_KEPT_FOR`` other messages were packed since the last chunk (an idle leader keeps none).
Issue 19: at 1,000 x 20,000 the leader packed 429 MB in 6,454 encodings in 41 s, ~28 times its log,
nearly all of it chunks packed once per peer.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from pysyncobj import pickle as pso_pickle

from .frames import pack_payload

MAX_CACHED = 4
MAX_CHUNKS = 64  # 4 MiB of chunks (a 1.5 MB entry is 23 of them), with their packed payloads
CHUNKS_KEPT_FOR = 256  # other messages packed after the last chunk before the chunks are dropped
_APPEND_KEYS = frozenset({"type", "term", "commit_index", "entries", "prevLogIdx", "prevLogTerm"})
_CHUNK_KEYS = frozenset({"type", "transmission", "data", "term", "commit_index", "prevLogIdx", "prevLogTerm"})
_EDGE = 64  # bytes of a chunk's start and end in its key (the whole chunk is compared on a hit)


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


def chunk_key(message: Any) -> tuple[Any, ...] | None:
    """The lookup key of a leader's transmission chunk (an entry of 64 KiB or more, in pieces); None for
    any other message. Equal keys do not mean equal chunks: a hit also compares the bytes."""
    if type(message) is not dict or message.keys() != _CHUNK_KEYS or message["type"] != "append_entries":
        return None
    data = message["data"]
    if type(data) is not bytes:
        return None
    return (
        message["term"],
        message["commit_index"],
        message["prevLogIdx"],
        message["prevLogTerm"],
        message["transmission"],
        len(data),
        data[:_EDGE],
        data[-_EDGE:],
    )


class AppendFanout:
    """Payloads of the last few distinct appends (one per transport: its leader's log)."""

    def __init__(self) -> None:
        self._cache: OrderedDict[tuple[Any, ...], tuple[int, bytes]] = OrderedDict()
        # chunk key -> [(the chunk's bytes, its payload)], of the entry and round ``_chunks_of`` (term,
        # commit index, prev index and term) alone; ``_since_chunk``: messages packed since the last chunk
        self._chunks: dict[tuple[Any, ...], list[tuple[bytes, tuple[int, bytes]]]] = {}
        self._chunks_of: tuple[Any, ...] | None = None
        self._chunk_count = 0
        self._since_chunk = 0
        self.encoded = 0  # messages pickled and packed
        self.reused = 0  # appends (and chunks) served from the cache

    def packed(self, message: Any) -> tuple[int, bytes]:
        """``(flags, payload)`` of ``message`` as ``FrameChannel.seal`` would pack it."""
        chunk = chunk_key(message)
        if chunk is not None:
            return self._chunk(chunk, message)
        if self._chunks:
            self._since_chunk += 1
            if self._since_chunk > CHUNKS_KEPT_FOR:
                self._chunks, self._chunks_of, self._chunk_count = {}, None, 0
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

    def _chunk(self, key: tuple[Any, ...], message: dict[str, Any]) -> tuple[int, bytes]:
        self._since_chunk = 0
        data = message["data"]
        bucket = self._chunks.get(key, ())
        for kept, payload in bucket:  # chunks of periodic bytes can share a key: compared whole
            if kept == data:
                self.reused += 1
                return payload
        out = pack_payload(pso_pickle.dumps(message))
        self.encoded += 1
        entry = key[:4]  # term, commit index, prev index and term: one entry's chunks in one round
        if entry != self._chunks_of:
            self._chunks, self._chunks_of, self._chunk_count = {}, entry, 0
        if self._chunk_count < MAX_CHUNKS:
            self._chunks.setdefault(key, []).append((data, out))
            self._chunk_count += 1
        return out
