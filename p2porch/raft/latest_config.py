"""A starting node's Raft configuration: the latest one in its log, committed or not (Raft thesis 4.1).

pysyncobj starts with the voters it is given (``cluster.json``'s, or a dump's) and re-applies the
membership entries of its journal only as it applies them, up to its commit index. That index is
volatile (``journal.py`` stores it once a second, without sync), so a node killed just after a voter
was added can restart below the add entry it holds: without the new voter, it takes no append from it
(pysyncobj ignores nodes outside its configuration) and, when that voter leads, never learns the
commit index again, a permanent loss of liveness (docs/raft.md, "A restarted voter's configuration").

:func:`latest_configuration` is the pure rule; :class:`LatestConfiguration` applies it when the node
starts and after its dump is loaded. pysyncobj's later re-apply of the same entries is a no-op (an add
of a present voter, a removal of an absent one), and an uncommitted entry a new leader truncates is
still reverted by pysyncobj (``reverse=True`` when it deletes conflicting entries). It never changes
the configuration at any other time.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["LatestConfiguration", "latest_configuration", "membership_change"]

_MEMBERSHIP = 2  # pysyncobj's _COMMAND_TYPE.MEMBERSHIP, the first byte of a membership entry


def membership_change(command: bytes) -> tuple[str, str] | None:
    """``("add" | "rem", node id)`` of a journal entry's command, None for any other entry."""
    if command[:1] != bytes([_MEMBERSHIP]):
        return None
    request = pickle.loads(command[1:])  # noqa: S301 (our own journal, as pysyncobj reads it)
    return str(request[0]), str(request[1])


def latest_configuration(
    start: Iterable[str], self_id: str | None, changes: Iterable[tuple[str, str]]
) -> frozenset[str]:
    """The other voters after ``changes`` (in log order) on top of ``start``, as pysyncobj applies
    them: this node never adds or removes itself, other kinds of change are ignored."""
    voters = set(start) - {self_id}
    for kind, node in changes:
        if node == self_id:
            continue
        if kind == "add":
            voters.add(node)
        elif kind == "rem":
            voters.discard(node)
    return frozenset(voters)


class LatestConfiguration:
    """Mixed into the SyncObj subclass: owns nothing but the start-time configuration fix; it never
    touches the configuration after the start (pysyncobj's own appends and applies do)."""

    _SyncObj__otherNodes: set[Any]
    _SyncObj__selfNode: Any
    _SyncObj__raftLog: Any
    _SyncObj__raftLastApplied: int

    def use_latest_configuration(self) -> None:
        """Apply every membership entry after the last applied one (committed or not) to the
        configuration; pysyncobj's constructor or dump load has set the part before it."""
        journal = self._SyncObj__raftLog
        applied = self._SyncObj__raftLastApplied
        changes = [c for e in journal if e[1] > applied and (c := membership_change(e[0])) is not None]
        if not changes:
            return
        self_id = None if self._SyncObj__selfNode is None else self._SyncObj__selfNode.id
        before = frozenset(node.id for node in self._SyncObj__otherNodes)
        after = latest_configuration(before, self_id, changes)
        if after == before:
            return
        log.warning(
            "raft: configuration from the log's membership entries after index %d: %s (was %s)",
            applied,
            sorted(after),
            sorted(before),
        )
        self._SyncObj__updateClusterConfiguration(sorted(after))  # type: ignore[attr-defined]

    def _SyncObj__loadDumpFile(self, clearJournal: bool) -> None:  # noqa: N802, N803 (pysyncobj's)
        super()._SyncObj__loadDumpFile(clearJournal)  # type: ignore[misc]
        self.use_latest_configuration()  # the dump's configuration, then the entries after it
