"""A follower's answers to empty heartbeats, rate limited (shell over pysyncobj; the choice is
heartbeat_answers.py's pure :class:`HeartbeatAnswers`).

A mixin for the store's SyncObj subclass: the bridge wraps its handling of each incoming append in
:meth:`QuietHeartbeatAnswers.answering`, and pysyncobj's private ``__sendNextNodeIdx`` (every follower
answer to an append goes through it) drops a success answer to an empty heartbeat that repeats the last
one sent to that leader less than ``heartbeat_answer_period_s`` ago. Answers to appends with entries,
snapshots, refusals and "in progress" chunks are always sent. It owns no state of its own beyond the
host's ``_heartbeat_answers`` and the leader of the heartbeat being handled.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

from .heartbeat_answers import HeartbeatAnswers


def is_empty_heartbeat(message: dict[str, Any]) -> bool:
    """An ``append_entries`` with no entries, no snapshot and no chunk: a heartbeat."""
    return (
        "prevLogIdx" in message
        and not message.get("entries")
        and "transmission" not in message
        and "serialized" not in message
    )


class QuietHeartbeatAnswers:
    """Mixed in before ``SyncObj``; the host sets ``self._heartbeat_answers`` before it starts."""

    _heartbeat_answers: HeartbeatAnswers
    _SyncObj__raftLog: Any
    _SyncObj__raftCurrentTerm: int
    _SyncObj__leaderCommitIndex: int
    _beat_from: Any = None  # the leader whose empty heartbeat is being handled (Raft thread)
    answers_skipped = 0  # answers to empty heartbeats left out (tests, benchmarks)
    answer_clock: Callable[[], float] = staticmethod(time.monotonic)  # tests set their own

    @contextlib.contextmanager
    def answering(self, node: Any, message: dict[str, Any]) -> Iterator[None]:
        """Around pysyncobj's handling of one incoming append (``message`` as received)."""
        self._beat_from = node if is_empty_heartbeat(message) else None
        try:
            yield
        finally:
            self._beat_from = None

    def _SyncObj__sendNextNodeIdx(  # noqa: N802 (pysyncobj's name)
        self,
        node: Any,
        reset: bool = False,
        nextNodeIdx: int | None = None,  # noqa: N803
        success: bool = False,
    ) -> None:
        if not success or reset:
            self._heartbeat_answers.forget(node)  # the leader acts on it: the next answer goes too
        else:
            next_index = self._SyncObj__raftLog[-1][1] + 1 if nextNodeIdx is None else nextNodeIdx
            term, commit, now = (
                self._SyncObj__raftCurrentTerm,
                self._SyncObj__leaderCommitIndex,
                self.answer_clock(),
            )
            beat = self._beat_from is not None and self._beat_from == node
            if beat and not self._heartbeat_answers.should_answer(node, term, commit, next_index, now):
                self.answers_skipped += 1
                return
            self._heartbeat_answers.answered(node, term, commit, next_index, now)
        super()._SyncObj__sendNextNodeIdx(node, reset=reset, nextNodeIdx=nextNodeIdx, success=success)  # type: ignore[misc]

    def _SyncObj__onNodeConnected(self, node: Any) -> None:  # noqa: N802
        self._heartbeat_answers.forget(node)
        super()._SyncObj__onNodeConnected(node)  # type: ignore[misc]

    def _SyncObj__onNodeDisconnected(self, node: Any) -> None:  # noqa: N802
        self._heartbeat_answers.forget(node)
        super()._SyncObj__onNodeDisconnected(node)  # type: ignore[misc]
