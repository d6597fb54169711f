"""A starting node's Raft configuration: the latest in its log, committed or not (Raft thesis 4.1).

pysyncobj starts with the voters it is given (``cluster.json``'s, or a dump's) and re-applies the
membership entries of its journal only as it applies them, up to its commit index. That index is
volatile (``journal.py`` stores it once a second, without sync), so a node killed just after a voter
was added can restart below the add entry it holds: without the new voter, it takes no append from it
(pysyncobj ignores nodes outside its configuration) and, when that voter leads, never learns the
commit index again, a permanent loss of liveness (docs/raft.md, "A restarted voter's configuration").

:func:`latest_configuration` is the rule (pure); ``config_replay.LatestConfiguration`` reads the
journal's membership entries and applies it when the node starts. This module never reads a journal.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["latest_configuration"]


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
