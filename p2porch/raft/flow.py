"""Flow control of the leader's appends per follower (pure: no pysyncobj, no socket, no clock).

pysyncobj 0.3.17's leader pipelines without a bound: every round moves a follower's next index past
what it sent, so each round pushes more entries to a follower that has not acknowledged the last ones;
and each acknowledgement of an earlier message moves the next index *back* to the follower's log end,
so the next round sends the entries still in flight a second time. For a follower that reads slower
than the leader sends, the leader's user-space write buffer for it grows without bound, and the
heartbeats queue behind megabytes of entries: the follower hears nothing for seconds although the
leader ticks on time, and campaigns (issue 19, docs/raft.md "Flow control per follower").

:func:`hold_entries` decides, from numbers the shell reads, whether a follower gets new entries this
round; :func:`keep_next_index` whether an acknowledgement may move a next index back. :class:`FlowStats`
counts what the shell saw (benchmarks and the periodic log line). Nothing here sends or reads anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

#: bytes queued in the leader's user-space write buffer for one follower above which it gets no new
#: entries (the way etcd bounds MaxSizePerMsg x MaxInflightMsgs); one message may exceed it, at most
#: one message is added while it is over. With a follower draining ~5 MB/s (a loaded 2-core machine)
#: a heartbeat waits at most ~0.2 s behind it, well inside the 0.5 s minimum election timeout.
MAX_BUFFERED_BYTES = 1024 * 1024
#: entries sent past a follower's match index (not yet acknowledged) above which it gets no new ones
MAX_INFLIGHT_ENTRIES = 256


@dataclass(frozen=True)
class FlowLimits:
    """The bounds per follower; 0 turns a bound off."""

    max_buffered_bytes: int = MAX_BUFFERED_BYTES
    max_inflight_entries: int = MAX_INFLIGHT_ENTRIES


def inflight_entries(next_index: int, match_index: int) -> int:
    """Entries sent to a follower and not yet acknowledged (pysyncobj's next index is optimistic)."""
    return max(0, next_index - 1 - match_index)


def hold_entries(buffered: int, next_index: int, match_index: int, limits: FlowLimits) -> bool:
    """Whether a follower gets no new entries this round (only a heartbeat, which its buffer delays
    by at most the bound): its write buffer or its unacknowledged entries are over a bound."""
    if limits.max_buffered_bytes and buffered >= limits.max_buffered_bytes:
        return True
    inflight = inflight_entries(next_index, match_index)
    return bool(limits.max_inflight_entries and inflight >= limits.max_inflight_entries)


def send_through(
    next_index: int,
    match_index: int,
    last_index: int,
    buffered: int,
    entry_size: Callable[[int], int],
    limits: FlowLimits,
    late: bool = False,
) -> int:
    """The last log index a follower may be sent this round; ``next_index - 1``: none, only a heartbeat.

    None when it is over a bound (:func:`hold_entries`) or the round is ``late`` (its time is spent and
    this follower comes after the voters); else entries from ``next_index`` while their bytes
    (``entry_size(index)``) fit in what its buffer has left, at least one, and no more than the
    in-flight bound allows."""
    if next_index > last_index or late or hold_entries(buffered, next_index, match_index, limits):
        return min(next_index - 1, last_index)
    through = last_index
    if limits.max_inflight_entries:
        through = min(through, match_index + limits.max_inflight_entries)
    if limits.max_buffered_bytes:
        room, index = limits.max_buffered_bytes - buffered, next_index
        while index < through:
            room -= entry_size(index)
            if room <= 0:
                break
            index += 1
        through = index
    return max(through, next_index)


def keep_next_index(before: int, after: int, success: bool, reset: bool, pipe_intact: bool) -> bool:
    """Whether a follower's acknowledgement that moved its next index from ``before`` back to ``after``
    should be undone: a success (not a refusal) for an earlier message while the entries sent since are
    still on the same connection. A refusal (``reset``) or a connection lost since always moves it."""
    return success and not reset and pipe_intact and after < before


@dataclass
class FlowStats:
    """What the leader's rounds saw since the last :meth:`take` (Raft thread writes; read by the log
    line and benchmarks). Per kind ("voter", "replica"): the largest buffer and in-flight count."""

    rounds: int = 0
    held: dict[str, int] = field(default_factory=dict)  # follower-rounds without new entries
    max_buffered: dict[str, int] = field(default_factory=dict)
    max_inflight: dict[str, int] = field(default_factory=dict)
    rewinds: int = 0  # acknowledgements that moved a next index back (entries re-sent)
    rewound_entries: int = 0
    rewinds_kept: int = 0  # of those, undone (the entries were still in flight)
    largest_buffered: int = 0  # ever (not reset by take)
    held_ever: int = 0  # follower-rounds without new entries, ever (not reset by take)
    kernel_queued: dict[str, int] = field(default_factory=dict)  # the socket send queues, sampled

    def saw(self, kind: str, buffered: int, inflight: int) -> None:
        self.max_buffered[kind] = max(self.max_buffered.get(kind, 0), buffered)
        self.max_inflight[kind] = max(self.max_inflight.get(kind, 0), inflight)
        self.largest_buffered = max(self.largest_buffered, buffered)

    def held_back(self, kind: str) -> None:
        """A follower of ``kind`` got no new entries this round (over a bound, or the round was late)."""
        self.held[kind] = self.held.get(kind, 0) + 1
        self.held_ever += 1

    def rewound(self, entries: int, kept: bool) -> None:
        self.rewinds += 1
        self.rewound_entries += entries
        self.rewinds_kept += int(kept)

    def busy(self) -> bool:
        """Whether anything was buffered, held or re-sent since the last :meth:`take`."""
        queued = any(self.max_buffered.values()) or any(self.kernel_queued.values())
        return bool(self.rewinds or any(self.held.values()) or queued)

    def summary(self) -> str:
        parts = [f"rounds={self.rounds}"]
        for kind in sorted(self.max_buffered):
            parts.append(
                f"{kind}s: buffered max {self.max_buffered[kind]} B, in flight max "
                f"{self.max_inflight.get(kind, 0)}, held {self.held.get(kind, 0)}, kernel queue "
                f"{self.kernel_queued.get(kind, 0)} B"
            )
        parts.append(f"rewinds {self.rewinds} ({self.rewound_entries} entries, {self.rewinds_kept} kept)")
        parts.append(f"largest buffer ever {self.largest_buffered} B")
        return "; ".join(parts)

    def take(self) -> str:
        """The summary since the last call; the per-period counters start again."""
        out = self.summary()
        self.rounds, self.rewinds, self.rewound_entries, self.rewinds_kept = 0, 0, 0, 0
        self.held, self.max_buffered, self.max_inflight, self.kernel_queued = {}, {}, {}, {}
        return out
