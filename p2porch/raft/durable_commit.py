"""pysyncobj's tick with the leader counting itself only up to its durable index (shell over pysyncobj;
the rule is leader_commit.py's pure :func:`leader_commit_index`).

A mixin placed directly before ``SyncObj``: :meth:`DurableLeaderCommit._onTick` is pysyncobj 0.3.17's
``SyncObj._onTick`` line for line (the pin in pyproject.toml guards it) except the leader's inline commit
loop, which counted the leader as one copy of every entry up to its log's end (``count = 1``). Here the
leader's copy counts only up to ``journal.durable_index``: its drains' entries are sent at once and
synced by the journal's worker thread (``bridge.RaftBridge._checkCommandsToApply``), so a commit needs a
majority of durable copies. Followers still sync before they answer, term and vote are still written
synchronously, and a failed journal still raises on the first read of the log (``journal[-1]``), so a
failed leader neither counts nor sends. After the poll it also writes the frames the poll's handlers
corked (``transport_guard``: frames go out once per connection before and after each poll). It owns
no state of its own and never syncs anything.

Provenance: ``_onTick`` and the step-down part of ``_leader_commit`` follow pysyncobj 0.3.17's
``SyncObj._onTick`` (https://github.com/bakwc/PySyncObj, Copyright (c) 2016 Filipp Ozinov, MIT License),
the library this package extends by subclassing; those lines remain under its licence. Prefer an
upstream hook for the leader's own match index over this override when pysyncobj offers one.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pysyncobj.syncobj as _pso
from pysyncobj.transport import TransportNotReadyError

from .leader_commit import leader_commit_index


class DurableLeaderCommit:
    """Mixed in directly before ``SyncObj`` (every other ``_onTick`` override calls down to this one)."""

    _poller: Any

    def _durable_self_index(self) -> int:
        """The leader's own durable copies: its journal's ``durable_index``; a journal that syncs every
        add before returning (pysyncobj's memory journal in tests) holds all of its entries."""
        raft_log = self._SyncObj__raftLog  # type: ignore[attr-defined]
        durable = getattr(raft_log, "durable_index", None)
        return int(raft_log[-1][1]) if durable is None else int(durable)

    def _leader_commit(self) -> None:
        """pysyncobj's leader part of the tick: the commit index from durable copies, then its own step
        down when a majority has not answered within ``leaderFallbackTimeout`` (unchanged)."""
        so: Any = self
        log_end = so._SyncObj__getCurrentLogIndex()  # raises on a failed journal: nothing counts
        matches = so._SyncObj__raftMatchIndex
        others = so._SyncObj__otherNodes

        def term_at(index: int) -> int | None:
            entries = so._SyncObj__getEntries(index, 1)
            return int(entries[0][2]) if entries else None

        commit = leader_commit_index(
            commit=so._SyncObj__raftCommitIndex,
            log_end=log_end,
            self_durable=self._durable_self_index(),
            follower_matches=[matches.get(node, 0) for node in others],
            voters=len(others) + 1,
            term_at=term_at,
            current_term=so._SyncObj__raftCurrentTerm,
        )
        if so._SyncObj__raftCommitIndex != commit:
            so._SyncObj__raftCommitIndex = commit
            so._SyncObj__raftLog.setRaftCommitIndex(commit)

        so._SyncObj__leaderCommitIndex = so._SyncObj__raftCommitIndex
        deadline = _pso.monotonicTime() - so._SyncObj__conf.leaderFallbackTimeout
        count = 1
        for node in others:
            if so._SyncObj__lastResponseTime[node] > deadline:
                count += 1
        if count <= (len(others) + 1) / 2:
            so._SyncObj__setState(_pso._RAFT_STATE.FOLLOWER)
            so._SyncObj__raftLeader = None

    def _onTick(self, timeToWait: float = 0.0) -> None:  # noqa: N802, N803 (pysyncobj's names)
        so: Any = self
        transport = so._SyncObj__transport
        if not transport.ready:
            try:
                transport.tryGetReady()
            except TransportNotReadyError:
                pass  # handled just below, as pysyncobj does

        if not transport.ready:
            time.sleep(timeToWait)
            so._SyncObj__applyLogEntries()
            return

        if so._SyncObj__needLoadDumpFile:
            dump = so._SyncObj__conf.fullDumpFile
            if dump is not None and os.path.isfile(dump):
                so._SyncObj__loadDumpFile(clearJournal=False)
            so._SyncObj__needLoadDumpFile = False

        work_time = _pso.monotonicTime() - so._SyncObj__startTime
        if work_time > so._SyncObj__numOneSecondDumps:
            so._SyncObj__numOneSecondDumps += 1
            so._SyncObj__raftLog.onOneSecondTimer()

        voting = so._SyncObj__raftState in (_pso._RAFT_STATE.FOLLOWER, _pso._RAFT_STATE.CANDIDATE)
        if voting and so._SyncObj__selfNode is not None:  # noqa: SIM102 (pysyncobj's two checks, in order)
            if so._SyncObj__raftElectionDeadline < _pso.monotonicTime() and so._SyncObj__connectedToAnyone():
                so._SyncObj__raftElectionDeadline = _pso.monotonicTime() + so._SyncObj__generateRaftTimeout()
                so._SyncObj__transferInProgress = False
                so._SyncObj__raftLeader = None
                so._SyncObj__setState(_pso._RAFT_STATE.CANDIDATE)
                so._SyncObj__setCurrentTerm(so._SyncObj__raftCurrentTerm + 1, so._SyncObj__selfNode.id)
                so._SyncObj__votesCount = 1
                for node in so._SyncObj__otherNodes:
                    transport.send(
                        node,
                        {
                            "type": "request_vote",
                            "term": so._SyncObj__raftCurrentTerm,
                            "last_log_index": so._SyncObj__getCurrentLogIndex(),
                            "last_log_term": so._SyncObj__getCurrentLogTerm(),
                        },
                    )
                so._SyncObj__onLeaderChanged()
                if so._SyncObj__votesCount > (len(so._SyncObj__otherNodes) + 1) / 2:
                    so._SyncObj__onBecomeLeader()

        if so._SyncObj__raftState == _pso._RAFT_STATE.LEADER:
            self._leader_commit()

        need_send_append_entries = so._SyncObj__applyLogEntries()

        if so._SyncObj__raftState == _pso._RAFT_STATE.LEADER:  # noqa: SIM102 (as pysyncobj)
            if _pso.monotonicTime() > so._SyncObj__newAppendEntriesTime or need_send_append_entries:
                so._SyncObj__sendAppendEntries()

        if not so._SyncObj__onReadyCalled and so._SyncObj__raftLastApplied == so._SyncObj__leaderCommitIndex:
            if so._SyncObj__conf.onReady:
                so._SyncObj__conf.onReady()
            so._SyncObj__onReadyCalled = True

        so._checkCommandsToApply()
        so._SyncObj__tryLogCompaction()

        with so._SyncObj__onTickCallbacksLock:
            for callback in so._SyncObj__onTickCallbacks:
                callback()

        transport.flush()  # this tick's frames, whichever callback sent them (the transport's runs first)
        self._poller.poll(timeToWait)
        transport.flush()  # what the poll's handlers sent (answers, handshakes): written now, not next tick
