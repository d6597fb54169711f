"""Follower-side checks on pysyncobj's ``append_entries`` messages (shell helper of store.py).

pysyncobj 0.3.17's follower deletes every entry after ``prevLogIdx`` whenever its log is longer, even
when the leader re-sent entries the follower already holds (a late ack moves the leader's nextIndex
back). That cuts entries this node already acknowledged. Raft (§5.3) truncates only on a conflict.
:class:`AppendFilter` rewrites each message before pysyncobj sees it so that it never does:

- entries we hold with the same index and term are dropped from the message and ``prevLogIdx``
  advanced past them;
- a message whose entries we all hold while our log goes on is turned into a heartbeat that cannot
  truncate, and the caller acknowledges exactly the entries it carried (``ack_index``);
- an entry of ``appendEntriesBatchSizeBytes`` (64 KiB) or more travels as a *transmission* (pickled
  entry cut into start/process/finish chunks). pysyncobj reassembles it in a ``bytes`` buffer and
  applies the result without any of the above. Here the chunks are collected in a bounded bytearray
  and the finished entry goes through the same overlap check as any other entry. pysyncobj's leader
  decides which chunk is "finish" by comparing with the entry's command length instead of the
  pickled length, so it can mark a chunk "finish" one chunk early: such a chunk (it does not unpickle)
  is treated as "process".

A rejected append is answered with where the leader should resume (``reset`` to ``next_node_idx``)
and pysyncobj's leader takes every such answer as it comes. With a follower whose log ends in entries
of an older term (it led, or followed a leader, that was cut off) and a backlog that needs several
messages per round (every large entry is a message of its own), the first message is refused at the
conflict and the later ones with "I end at E, send from E+1": the leader's nextIndex goes back and
forth between E and E+1 and never walks below the conflict, so the follower never catches up while
looking healthy (issue 24). :func:`rejection_floor` gives the index to send from instead (the first
entry of our conflicting term, never below our commit index + 1); the caller answers every refusal
to that leader with at most this floor until an append succeeds, so all answers of a round agree.

It never sends anything and never touches the journal; the caller (``bridge.RaftBridge``) does.
"""

from __future__ import annotations

from typing import Any

from pysyncobj import pickle as pso_pickle

# One reassembled entry may not exceed this (a Raft entry is at most one 16 MiB command batch).
MAX_TRANSMISSION_BYTES = 48 * 1024 * 1024


def trim_overlap(log: Any, message: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
    """Raft §5.3 for pysyncobj followers: never truncate entries the leader re-sent unchanged.

    Returns ``(message, ack_index)``. ``message`` is what pysyncobj should process; when
    ``ack_index`` is not None the message was turned into a heartbeat that cannot truncate (our log
    holds all its entries and goes on), and the caller must acknowledge ``ack_index`` itself.
    """
    entries = message.get("entries")
    if "prevLogIdx" not in message or not entries:
        return message, None
    first_idx = log[0][1]
    last_idx = log[-1][1]
    prev_idx, prev_term = message["prevLogIdx"], message["prevLogTerm"]
    skip = 0
    for entry in entries:
        pos = entry[1] - first_idx
        if not 0 <= pos < len(log) or log[pos][2] != entry[2]:
            break
        prev_idx, prev_term = entry[1], entry[2]
        skip += 1
    if skip == 0:
        return message, None
    rest = entries[skip:]
    if not rest and prev_idx < last_idx:
        # Nothing new, and processing it would cut our matching tail: keep the side effects of a
        # leader's message (term, leader, election timer) and commit no further than what it proved.
        heartbeat = {k: v for k, v in message.items() if k not in ("entries", "prevLogIdx", "prevLogTerm")}
        heartbeat["commit_index"] = min(message.get("commit_index", 0), prev_idx)
        return heartbeat, prev_idx
    trimmed = dict(message)
    trimmed["entries"] = rest
    trimmed["prevLogIdx"] = prev_idx
    trimmed["prevLogTerm"] = prev_term
    return trimmed, None


def rejection_floor(log: Any, commit_index: int, message: dict[str, Any]) -> int | None:
    """If our entry at ``prevLogIdx`` has another term than the leader's, where it should resend from.

    Our entries from the start of that entry's term run on cannot be trusted; committed entries
    (up to ``commit_index``) match the leader's by Raft's guarantees. None when there is no conflict.
    """
    prev = message.get("prevLogIdx")
    if prev is None:
        return None
    first = log[0][1]
    pos = prev - first
    if not 0 <= pos < len(log) or log[pos][2] == message.get("prevLogTerm"):
        return None
    term = log[pos][2]
    while pos > 0 and log[pos - 1][2] == term:
        pos -= 1
    return int(max(commit_index + 1, log[pos][1], first + 1))


class AppendFilter:
    """Per-SyncObj state for :func:`trim_overlap` plus the reassembly of large-entry transmissions.

    Owns one bounded reassembly buffer; called on the Raft thread only.
    """

    def __init__(self, max_transmission_bytes: int = MAX_TRANSMISSION_BYTES) -> None:
        self._max = max_transmission_bytes
        self._buffer: bytearray | None = None
        self.dropped = 0  # messages dropped (broken or oversized transmissions)
        self.acked_overlaps = 0  # fully-held re-sends acknowledged without truncating

    def filter(self, log: Any, message: dict[str, Any]) -> tuple[dict[str, Any] | None, int | None]:
        """The message pysyncobj should process (None: drop it) and an index to acknowledge."""
        if "transmission" in message:
            assembled = self._reassemble(message)
            if assembled is None:
                self.dropped += 1
                return None, None
            if "transmission" in assembled:
                return assembled, None
            message = assembled
        result, ack = trim_overlap(log, message)
        if ack is not None:
            self.acked_overlaps += 1
        return result, ack

    def _reassemble(self, message: dict[str, Any]) -> dict[str, Any] | None:
        kind = message.get("transmission")
        data = message.get("data")
        if not isinstance(data, bytes | bytearray):
            self._buffer = None
            return None
        if kind == "start":
            self._buffer = bytearray(data)
        elif kind in ("process", "finish") and self._buffer is not None:
            self._buffer += data
        else:
            self._buffer = None  # a chunk without its start, or an unknown kind
            return None
        if len(self._buffer) > self._max:
            self._buffer = None
            return None
        if kind == "finish":
            entry = _load_entry(self._buffer)
            if entry is not None:
                self._buffer = None
                regular = {k: v for k, v in message.items() if k not in ("transmission", "data")}
                regular["entries"] = [entry]
                return regular
        # Let pysyncobj see a chunk (it resets the election timer, follows the leader and answers
        # "in progress"), without data: the bytes live here only.
        return {**message, "transmission": "start", "data": b""}


def _load_entry(data: bytearray) -> tuple[bytes, int, int] | None:
    try:
        entry = pso_pickle.loads(bytes(data))
    except Exception:  # a truncated pickle raises many kinds; the peer is authenticated
        return None
    if (
        isinstance(entry, tuple)
        and len(entry) == 3
        and isinstance(entry[0], bytes)
        and isinstance(entry[1], int)
        and isinstance(entry[2], int)
    ):
        return entry
    return None
