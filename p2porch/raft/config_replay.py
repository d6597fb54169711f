"""A starting node takes the latest configuration in its log, committed or not (shell over pysyncobj).

pysyncobj sets a starting node's voters from its arguments (``cluster.json``'s), then from its dump,
and re-applies the membership entries after them only as it applies them, up to its commit index,
which may be behind the log (``latest_config.py`` says why that left a restarted voter deaf).
:class:`LatestConfiguration` applies every membership entry after the last applied one at once, when
the bridge is built and after each dump load. pysyncobj's later re-apply of the same entries is a
no-op (an add of a present voter, a removal of an absent one), and an uncommitted entry a new leader
truncates is still reverted by pysyncobj (``reverse=True`` on the entries it deletes).
"""

from __future__ import annotations

import logging
import pickle
from typing import Any

from .latest_config import latest_configuration

log = logging.getLogger(__name__)

__all__ = ["LatestConfiguration", "membership_change"]

_MEMBERSHIP = 2  # pysyncobj's _COMMAND_TYPE.MEMBERSHIP, the first byte of a membership entry


def membership_change(command: bytes) -> tuple[str, str] | None:
    """``("add" | "rem", node id)`` of a journal entry's command, None for any other entry."""
    if command[:1] != bytes([_MEMBERSHIP]):
        return None
    request = pickle.loads(command[1:])  # noqa: S301 (our own journal, as pysyncobj reads it)
    return str(request[0]), str(request[1])


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
