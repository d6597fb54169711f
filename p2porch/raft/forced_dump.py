"""A forced log compaction asked of a store, kept until a dump covering it is on disk (pure).

pysyncobj's ``forceLogCompaction`` only sets a flag, and its ``__tryLogCompaction`` clears that flag before
two early returns that write nothing: when the entry before ``lastApplied`` is not in the log (a voter
that has applied nothing beyond the log's first entry: one started late, not yet reached by the leader)
and when the last dump is already at that entry. A forced compaction asked at such a moment was dropped
for good, and a dump child that failed was not asked for again either (pysyncobj asks again only past
``logCompactionMinEntries`` or ``logCompactionMinTime``). :class:`ForcedDump` keeps the request and says,
on each tick, whether to set pysyncobj's flag now: only when that tick can start a dump (no dump in
progress, the entry before the applied one in the log), and again until pysyncobj's last dump covers
what was applied when the request was first seen. Owns only the request; never reads pysyncobj itself.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ForcedDump:
    """``ask`` is called by any thread (one writer: ``asked``), ``step`` on the Raft thread only."""

    asked: int = 0  # requests made (only ``ask`` writes it)
    seen: int = 0  # requests ``step`` has taken in (only ``step`` writes it)
    target: int | None = None  # the applied index a dump must cover; None: nothing pending

    def ask(self) -> None:
        """A forced compaction is wanted (from the trio thread or the Raft thread)."""
        self.asked += 1

    def step(self, applied: int, log_first: int, dumping: bool, last_dumped: int | None) -> bool:
        """One tick: whether to set pysyncobj's force flag now.

        ``applied`` is pysyncobj's ``lastApplied``, ``log_first`` the index of the log's first entry,
        ``dumping`` whether a dump is in progress (pysyncobj would not start one), ``last_dumped`` the
        ``serializeID`` of pysyncobj's last successful dump (the entry before the last one it covers;
        None before the first)."""
        asked = self.asked
        if asked != self.seen:
            self.seen = asked
            self.target = max(self.target or 0, applied)
        if self.target is None:
            return False
        if last_dumped is not None and last_dumped + 1 >= self.target:
            self.target = None  # a dump covers everything applied when the request was seen
            return False
        return not dumping and applied - 1 >= log_first

    @property
    def pending(self) -> bool:
        """A request not yet covered by a dump (or not yet seen by ``step``)."""
        return self.target is not None or self.asked != self.seen
