"""Every proposal this node forwarded to the leader gets an answer (shell over pysyncobj).

pysyncobj 0.3.17 forwards a proposal made on a node that does not lead (a follower, a read-only replica)
as an ``apply_command`` message and keeps its callback in ``__commandsWaitingReply`` until the leader's
``apply_command_response`` arrives with the entry's index, then in ``__commandsWaitingCommit[index]``
until this node applies that index. It fails them only on a change of leader, so three things lost a
callback for good while the leader stayed the same (issue 19: at 1,000 x 100,000 one replica store's
proposals all timed out for minutes, the leader idle):

- the proposal was forwarded while the connection to the leader was down: the transport's ``send``
  returns False, which pysyncobj ignores (the request never left);
- the connection dropped after the send: the request, or the leader's answer (sent on the connection the
  request came in on, gone with it), is lost;
- a snapshot was installed over the index: pysyncobj's apply walks entries one by one and the snapshot
  skips them, so the callback at that index is never called.

The store (``store.py``) keeps at most ``max_inflight_batches`` batches in flight, and each lost
callback held one slot forever: two of them and the store proposed nothing again. :class:`ForwardedAnswers`
answers each of the three at once: a request that never left fails as ``MISSING_LEADER`` (known not in
the log: the store retries it), one lost with its connection as ``LEADER_CHANGED`` and one under a
snapshot as ``UNKNOWN_OUTCOME`` (both: the write may have committed; the caller is told so, as for a
leader change). It owns three counters and never sends anything.
"""

from __future__ import annotations

import logging
from typing import Any

from pysyncobj import FAIL_REASON

log = logging.getLogger(__name__)


class ForwardedAnswers:
    """Mixed in before ``SyncObj``; the host calls :meth:`forward_drain` around pysyncobj's drain of
    proposals (``_checkCommandsToApply``) on the Raft thread."""

    _SyncObj__commandsWaitingReply: dict[int, Any]
    _SyncObj__commandsWaitingCommit: Any  # defaultdict(list): index -> [(term, callback), ...]
    _SyncObj__commandsLocalCounter: int
    _SyncObj__raftLeader: Any
    _SyncObj__raftLastApplied: int
    unsent_forwards = 0  # proposals forwarded while the leader was not connected (failed, retryable)
    dropped_forwards = 0  # forwarded proposals whose connection to the leader dropped before the answer
    covered_forwards = 0  # forwarded proposals whose entry a snapshot installed here (never applied singly)

    def forward_drain(self, drain: Any) -> None:
        """Run pysyncobj's ``drain``; then fail the requests it forwarded to a leader that is not
        connected: none of them left (``send`` to an unconnected node sends nothing)."""
        first_new = self._SyncObj__commandsLocalCounter + 1
        connected = self._leader_connected()
        drain()
        if connected or self._leader_connected() or not self._SyncObj__commandsWaitingReply:
            return
        unsent = [i for i in sorted(self._SyncObj__commandsWaitingReply) if i >= first_new]
        self.unsent_forwards += len(unsent)
        self._fail_waiting_replies(unsent, FAIL_REASON.MISSING_LEADER)

    def _leader_connected(self) -> bool:
        leader = self._SyncObj__raftLeader
        return leader is not None and bool(self.isNodeConnected(leader))  # type: ignore[attr-defined]

    def _fail_waiting_replies(self, ids: list[int], reason: int) -> None:
        waiting = self._SyncObj__commandsWaitingReply
        for request_id in ids:
            callback = waiting.pop(request_id, None)
            if callback is not None:
                callback(None, reason)

    def _SyncObj__onNodeDisconnected(self, node: Any) -> None:  # noqa: N802 (pysyncobj's, mangled)
        if node == self._SyncObj__raftLeader and self._SyncObj__commandsWaitingReply:
            lost = sorted(self._SyncObj__commandsWaitingReply)
            self.dropped_forwards += len(lost)
            log.info(
                "raft: the connection to the leader dropped with %d forwarded proposals unanswered", len(lost)
            )
            self._fail_waiting_replies(lost, FAIL_REASON.LEADER_CHANGED)
        super()._SyncObj__onNodeDisconnected(node)  # type: ignore[misc]

    def _SyncObj__loadDumpFile(self, clearJournal: bool) -> None:  # noqa: N802, N803 (pysyncobj's)
        super()._SyncObj__loadDumpFile(clearJournal)  # type: ignore[misc]
        applied = self._SyncObj__raftLastApplied
        waiting = self._SyncObj__commandsWaitingCommit
        covered = sorted(index for index in waiting if index <= applied)
        for index in covered:
            for _term, callback in waiting.pop(index):
                self.covered_forwards += 1
                callback(None, FAIL_REASON.UNKNOWN_OUTCOME)
        if covered:
            log.info(
                "raft: a snapshot at %d covered %d proposals waiting for their entries", applied, len(covered)
            )

    def forwarding(self) -> dict[str, Any]:
        """What waits for the leader here, and what was failed so far (diagnosis; Raft thread's values,
        read from any thread: a count may be one update old)."""
        commits = [i for i, subs in list(self._SyncObj__commandsWaitingCommit.items()) if subs]
        return {
            "waiting_reply": len(self._SyncObj__commandsWaitingReply),
            "waiting_commit": len(commits),
            "lowest_waiting_commit": min(commits) if commits else None,
            "leader_connected": self._leader_connected(),
            "unsent": self.unsent_forwards,
            "dropped": self.dropped_forwards,
            "covered": self.covered_forwards,
        }
