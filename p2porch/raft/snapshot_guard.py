"""A follower's handling of the leader's snapshot stream, made to follow Raft §7 (shell over pysyncobj).

pysyncobj 0.3.17's follower installs every snapshot that finishes arriving (``__loadDumpFile`` with
``clearJournal=True``): its log is cleared to the snapshot's two entries and ``lastApplied`` set to the
snapshot's index, even when it had already applied entries past that index. Its leader streams a
snapshot whenever a follower's nextIndex is at or below its log start, and it takes every ``reset``
answer as it comes, so a late refusal (an answer to an earlier message of a round that arrives after
the next round already streamed the snapshot and the entries after it) sends the same snapshot again.
The follower then installs it over the entries it applied meanwhile: its state goes back, and the API
serves older versions until the entries come again (a non-monotonic read, docs/raft.md). Raft §7: a
follower that already holds the snapshot's last entry (same index and term) keeps its log and state.

pysyncobj also takes the ``commit_index`` of every append message from the leader, the snapshot's
chunks and its "no snapshot yet" messages included, although those prove nothing about the
follower's log: a follower holding entries of a cut-off old leader beyond its commit index would mark
them committed and apply them. Here such messages never raise the commit index beyond what the
follower had (or, for a refused snapshot, beyond the snapshot's index, which it holds).

:class:`SnapshotGuard` is mixed in before ``SyncObj``: it reads the head of each incoming snapshot from
its first chunk (``dumps.head_of_chunk``), and at the last chunk refuses a snapshot this node already
covers: the received file is dropped before it could replace the node's own dump, pysyncobj sees the
message without the snapshot (term, leader and election timer as usual), and the leader is told to go
on after the snapshot's index. It never writes the journal's entries nor the dump.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

from . import dumps

log = logging.getLogger(__name__)


def covers(raft_log: Any, last: tuple[Any, ...]) -> bool:
    """Whether a node with this log already holds the snapshot whose last entry is ``last`` (Raft §7):
    its entry at that index has the same term, or its log starts after the index (what it compacted
    is committed, and committed entries are the leader's)."""
    index, term = int(last[1]), int(last[2])
    first, end = int(raft_log[0][1]), int(raft_log[-1][1])
    if index < first:
        return True
    return index <= end and int(raft_log[index - first][2]) == term


class SnapshotGuard:
    """Mixed in before ``SyncObj``; owns the head of the snapshot being received (Raft thread only)."""

    _SyncObj__raftLog: Any
    _SyncObj__raftCommitIndex: int
    _SyncObj__raftCurrentTerm: int
    _SyncObj__serializer: Any
    _incoming_last: tuple[Any, ...] | None = None  # the last entry of the snapshot being received
    _snapshot_loaded = False  # pysyncobj loaded a dump while handling the current message
    snapshots_refused = 0  # snapshots this node already covered (tests, diagnosis)

    def _SyncObj__onMessageReceived(self, node: Any, message: Any) -> None:  # noqa: N802
        if not (
            isinstance(message, dict)
            and message.get("type") == "append_entries"
            and "serialized" in message
            and "prevLogIdx" not in message
            and message.get("term", -1) >= self._SyncObj__raftCurrentTerm
        ):
            super()._SyncObj__onMessageReceived(node, message)  # type: ignore[misc]
            return
        commit = self._SyncObj__raftCommitIndex
        refused = self._refuse_covered(message.get("serialized"))
        if refused is not None:
            message = {**message, "serialized": None}
        self._snapshot_loaded = False
        super()._SyncObj__onMessageReceived(node, message)  # type: ignore[misc]
        if self._snapshot_loaded:
            return  # installed: pysyncobj's log, applied and commit index are the snapshot's
        if refused is not None:  # our log matches the leader's up to the snapshot's index
            commit = max(commit, min(int(refused[1]), int(message["commit_index"])))
        if self._SyncObj__raftCommitIndex > commit:
            self._SyncObj__raftCommitIndex = commit
            self._SyncObj__raftLog.setRaftCommitIndex(commit)
        if refused is not None:
            answer = self._SyncObj__sendNextNodeIdx  # type: ignore[attr-defined]  # pysyncobj's (mangled)
            answer(node, nextNodeIdx=int(refused[1]) + 1, success=True, reset=True)

    def _refuse_covered(self, data: Any) -> tuple[Any, ...] | None:
        """The last entry of a snapshot that finished arriving and that we cover, its file dropped."""
        if not isinstance(data, tuple | list) or len(data) != 3:
            return None
        chunk, first, last = data
        if first:
            head = dumps.head_of_chunk(bytes(chunk)) if isinstance(chunk, bytes | bytearray) else None
            self._incoming_last = None if head is None else head[1]
        if not last:
            return None
        incoming, self._incoming_last = self._incoming_last, None
        if incoming is None or not covers(self._SyncObj__raftLog, incoming):
            return None
        self._drop_incoming()
        self.snapshots_refused += 1
        log.info(
            "snapshot at %s refused: this node holds it already (log %s..%s, commit %s)",
            incoming[1:],
            self._SyncObj__raftLog[0][1],
            self._SyncObj__raftLog[-1][1],
            self._SyncObj__raftCommitIndex,
        )
        return incoming

    def _drop_incoming(self) -> None:
        """Close and remove the received file pysyncobj's serializer was writing (never the dump)."""
        serializer = self._SyncObj__serializer
        incoming = serializer._Serializer__incomingTransmissionFile
        serializer._Serializer__incomingTransmissionFile = None
        if hasattr(incoming, "close"):  # None, or bytes without a dump file (in-memory serializer)
            incoming.close()
            with contextlib.suppress(OSError):
                os.unlink(incoming.name)

    def _SyncObj__loadDumpFile(self, clearJournal: bool) -> None:  # noqa: N802, N803 (pysyncobj's)
        self._snapshot_loaded = True
        super()._SyncObj__loadDumpFile(clearJournal)  # type: ignore[misc]
