"""What a node does to its Raft journal before pysyncobj opens it (shell: files, once per start).

:func:`prepare` reads the journal once, fixes it up for the role the node starts in and for the dump
beside it, and keeps the open :class:`DurableJournal` for pysyncobj: the store's ``createJournal``
:func:`take`\\ s it instead of reading the file a second time. It never imports pysyncobj.

The fix-ups:

- A read-only replica's saved term goes down to its last entry's term (:func:`lower_replica_term`).
- A node starting as a voter gets back the term and vote a replica start lowered
  (:func:`restore_vote_floor`), so it cannot vote twice in a term.
- The journal is cut to the entries of a dump renamed into place before its log was cut
  (:func:`align_to_dump`).

Why the vote floor (docs/raft.md, "Replica terms and votes"): a voter saves its term T and the vote it
cast in T. Demoted and restarted as a replica, it lowers its term to L < T (else it would ignore the
real leader, whose term may be below T, for ever) and so forgets the vote. pysyncobj votes for the
first candidate of a term at or above its own term when it has no vote recorded, so a node promoted
again at a term in (L, T] could vote a second time in a term it already voted in (or, as a candidate,
vote for itself in it): two leaders of one term become possible. Lowering therefore keeps T and its
vote (the vote floor), and a voter start raises the term back to T with that vote (or keeps a higher
term it reached since): every term it can vote in afterwards is one it has never voted in.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import dumps
from .journal import DurableJournal

log = logging.getLogger(__name__)

_opened: dict[str, DurableJournal] = {}
_opened_lock = threading.Lock()


@contextlib.contextmanager
def _journal(target: DurableJournal | str | os.PathLike[str]) -> Iterator[DurableJournal | None]:
    """An open journal as is; a path opened for the block (None when there is no file: never created)."""
    if isinstance(target, DurableJournal):
        yield target
        return
    if not Path(target).exists():
        yield None
        return
    journal = DurableJournal(target)
    try:
        yield journal
    finally:
        journal._destroy()


def lower_replica_term(target: DurableJournal | str | os.PathLike[str]) -> tuple[int, int] | None:
    """Before a read-only replica starts: set its saved term down to its last entry's term.

    A replica never votes, so its term only decides which leaders it listens to (pysyncobj ignores an
    ``append_entries`` of a lower term and, unlike Raft, does not tell that leader). A voter that was
    removed (or cut off) keeps starting elections and raising its term; restarted as a replica with
    that term, it would ignore the real leader, whose term is lower, for ever and never catch up again.
    No leader's term is below the last term in this log (a later leader's term is higher than every
    term before it), so the lowered term still refuses leaders older than what this node has seen.
    The higher term and its vote are kept as the vote floor (module docstring). Returns ``(old, new)``
    when it lowered the term, else None.
    """
    with _journal(target) as journal:
        if journal is None:
            return None
        term = journal.getCurrentTerm()
        last = journal[-1][2] if len(journal) else 0
        if term <= last:
            return None
        journal.lower_term(last)
        return term, last


def restore_vote_floor(target: DurableJournal | str | os.PathLike[str]) -> tuple[int, int] | None:
    """Before a voter starts: raise its term back to the vote floor a replica start left, with the vote
    cast in that term (module docstring); the floor is dropped. ``(old, new)`` when the term was raised."""
    with _journal(target) as journal:
        return None if journal is None else journal.raise_to_vote_floor()


def align_to_dump(
    target: DurableJournal | str | os.PathLike[str], prev: tuple[Any, ...], last: tuple[Any, ...]
) -> int:
    """Before pysyncobj opens the journal: make it start at the dump's ``prev`` entry.

    A dump is renamed into place before the log it covers is cut (``dumps.py`` writes it on a worker
    thread; the cut waits for the next Raft tick). pysyncobj, loading a dump whose two entries are not
    the journal's first two, clears the whole journal, losing every entry appended after the dump
    began: acknowledged writes when a crash or a stop lands in that window. Cutting the journal to the
    dump's entries here keeps them. A journal that does not hold ``prev`` followed by ``last`` is left
    alone. Returns the number of entries dropped (all covered by the dump).
    """
    with _journal(target) as journal:
        first = journal[0][1] if journal is not None and len(journal) else None
        at = None if first is None else prev[1] - first
        if journal is None or at is None or at <= 0 or at + 1 >= len(journal):
            return 0
        if tuple(journal[at]) != tuple(prev) or tuple(journal[at + 1]) != tuple(last):
            return 0
        journal.deleteEntriesTo(at)
        return at


def prepare(journal_file: str, dump_file: str | None, *, voter: bool) -> None:
    """Read ``journal_file`` once (if it exists), fix it up for a voter or a replica start and for
    ``dump_file``, and keep it open for :func:`take`. Call :func:`release` after pysyncobj started."""
    if not Path(journal_file).exists():
        return
    journal = DurableJournal(journal_file)
    try:
        if not voter and (lowered := lower_replica_term(journal)) is not None:
            log.warning("replica: Raft term %d lowered to its log's %d (it never votes)", *lowered)
        if voter and (raised := restore_vote_floor(journal)) is not None:
            log.warning("voter: Raft term %d raised back to %d with the vote it cast then", *raised)
        head = dumps.read_head(dump_file) if dump_file else None
        if head is not None and (cut := align_to_dump(journal, *head)):
            log.info("raft: journal cut to its dump's entries (%d covered entries dropped)", cut)
    except BaseException:
        journal._destroy()
        raise
    with _opened_lock:
        _opened[journal_file] = journal


def take(journal_file: str) -> DurableJournal | None:
    """The journal :func:`prepare` opened for ``journal_file`` (once), None when there is none."""
    with _opened_lock:
        return _opened.pop(journal_file, None)


def release(journal_file: str) -> None:
    """Close a prepared journal nobody took (pysyncobj failed before opening its journal)."""
    journal = take(journal_file)
    if journal is not None:
        journal._destroy()
