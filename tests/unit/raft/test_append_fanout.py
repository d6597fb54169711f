"""AppendFanout (raft/fanout.py): a leader's append is packed once for every peer that gets the same one,
each peer's frame still opens to exactly that message; so is each chunk of an entry sent as a
transmission; anything else is packed each time."""

from __future__ import annotations

import os
from typing import Any

from pysyncobj import pickle as pso_pickle
from test_appends import BATCH, transmission  # pysyncobj's chunking, as test_appends.py models it

from p2porch.raft import frames as F
from p2porch.raft.fanout import (
    CHUNKS_KEPT_FOR,
    MAX_CACHED,
    MAX_CHUNKS,
    AppendFanout,
    append_key,
    chunk_key,
)

KEY = F.cluster_key("the cluster password")
MAX = 1 << 24


def channels() -> tuple[F.FrameChannel, F.FrameChannel]:
    a, b = F.FrameChannel(KEY), F.FrameChannel(KEY)
    ka, kb = os.urandom(32), os.urandom(32)
    assert b.open(a.seal(ka), MAX) == ka
    assert a.open(b.seal(kb), MAX) == kb
    a.start_session(own_key=ka, peer_key=kb)
    b.start_session(own_key=kb, peer_key=ka)
    return a, b


def append(prev: int, count: int, term: int = 3, commit: int = 10) -> dict[str, object]:
    """pysyncobj's append message, built afresh per peer as pysyncobj does (entries: (data, index, term))."""
    entries = [(os.urandom(8) * 200, prev + 1 + i, term) for i in range(count)]
    return {
        "type": "append_entries",
        "term": term,
        "commit_index": commit,
        "entries": entries,
        "prevLogIdx": prev,
        "prevLogTerm": term,
    }


def test_every_peer_opens_the_same_append_from_one_encoding() -> None:
    fanout = AppendFanout()
    message = append(100, 5)
    peers = [channels() for _ in range(5)]
    for leader_end, peer_end in peers:
        per_peer = {**message, "entries": list(message["entries"])}  # type: ignore[call-overload]
        frame = leader_end.seal_packed(*fanout.packed(per_peer))
        assert pso_pickle.loads(peer_end.open(frame, MAX)) == message
    assert (fanout.encoded, fanout.reused) == (1, 4)


def test_packed_is_what_seal_packs() -> None:
    message = append(7, 3)
    assert AppendFanout().packed(message) == F.pack_payload(pso_pickle.dumps(message))


def test_different_appends_are_encoded_apart() -> None:
    fanout = AppendFanout()
    base = append(100, 5)
    variants = [
        base,
        append(100, 4),  # fewer entries (a peer further ahead)
        append(99, 6),  # a peer one entry behind
        {**base, "commit_index": 11},
        {**base, "term": 4},
    ]
    payloads = [fanout.packed(m) for m in variants]
    assert fanout.encoded == len(variants) and fanout.reused == 0
    for message, payload in zip(variants, payloads, strict=True):
        assert payload == F.pack_payload(pso_pickle.dumps(message))


def test_other_messages_are_never_cached() -> None:
    fanout = AppendFanout()
    vote = {"type": "request_vote", "term": 3, "last_log_index": 9, "last_log_term": 3}
    snapshot = {"type": "append_entries", "term": 3, "commit_index": 9, "serialized": (b"x", True, False)}
    answer = {"type": "next_node_idx", "next_node_idx": 10, "success": True, "term": 3}
    for message in (vote, snapshot, answer, vote):
        assert append_key(message) is None
        fanout.packed(message)
    assert (fanout.encoded, fanout.reused) == (4, 0)


def test_the_cache_stays_small() -> None:
    fanout = AppendFanout()
    for prev in range(20):
        fanout.packed(append(prev, 1))
    assert len(fanout._cache) == MAX_CACHED


def chunks(entry: tuple[bytes, int, int], prev: int, term: int = 3, commit: int = 10) -> list[dict[str, Any]]:
    """pysyncobj's transmission of one large entry to one peer (pickled afresh for each peer)."""
    return transmission(entry, (prev, term), commit=commit, term=term)


def test_a_large_entry_is_packed_once_per_chunk_for_every_peer() -> None:
    fanout = AppendFanout()
    entry = (os.urandom(400_000), 101, 3)  # ~600 KB pickled: 10 chunks, most of them "process", no two alike
    first = chunks(entry, 100)
    assert len(first) >= 10 and all(chunk_key(m) is not None for m in first)
    peers = [channels() for _ in range(5)]
    for leader_end, peer_end in peers:
        for message in chunks(entry, 100):  # new bytes objects per peer, as pysyncobj makes them
            frame = leader_end.seal_packed(*fanout.packed(message))
            assert pso_pickle.loads(peer_end.open(frame, MAX)) == message
    assert (fanout.encoded, fanout.reused) == (len(first), 4 * len(first))


def test_a_chunk_is_reused_only_for_the_very_same_bytes() -> None:
    fanout = AppendFanout()
    edge = b"E" * 64
    one = chunks((edge + b"a" * BATCH + edge, 101, 3), 100)
    two = chunks((edge + b"b" * BATCH + edge, 101, 3), 100)  # same fields, length and edges
    for a, b in zip(one, two, strict=True):
        assert chunk_key(a) == chunk_key(b) or a["data"] != b["data"]
        assert fanout.packed(a) == F.pack_payload(pso_pickle.dumps(a))
        assert fanout.packed(b) == F.pack_payload(pso_pickle.dumps(b))
    assert fanout.reused == 0


def test_chunks_are_kept_for_one_entry_bounded_and_dropped_when_idle() -> None:
    fanout = AppendFanout()
    big = (os.urandom(16) * 40_000, 101, 3)
    for message in chunks(big, 100):
        fanout.packed(message)
    assert 0 < fanout._chunk_count <= MAX_CHUNKS
    for message in chunks((os.urandom(16) * 40_000, 102, 3), 101):  # the next entry: the first is dropped
        fanout.packed(message)
    assert all(key[2] == 101 for key in fanout._chunks)
    huge = chunks((os.urandom(BATCH * (MAX_CHUNKS + 8)), 103, 3), 102)  # no two chunks alike
    for message in huge:
        assert fanout.packed(message) == F.pack_payload(pso_pickle.dumps(message))
    assert fanout._chunk_count == MAX_CHUNKS == sum(map(len, fanout._chunks.values()))
    for prev in range(CHUNKS_KEPT_FOR + 1):  # heartbeats and small appends: an idle leader keeps none
        fanout.packed(append(prev, 0))
    assert not fanout._chunks
