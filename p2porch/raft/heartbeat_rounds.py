"""The leader's append round with idle read-only replicas left out (shell over pysyncobj; the choice is
heartbeats.py's pure :class:`ReplicaHeartbeats`).

A mixin for the store's SyncObj subclass: it overrides pysyncobj's private ``__sendAppendEntries`` to
hide the quiet replicas for one round, then restores them, keeping what the round itself changed (a
replica that disconnected). A replica whose connection drops during a round keeps its indexes until the
round ends (pysyncobj reads them once more, see below). While the store's pacer says idle (no proposal,
no moved commit index for a second), the next round is due after ``idle_round_s`` instead of
pysyncobj's ``appendEntriesPeriod`` (the choice is ``pacer.TickPacer.round_period``'s; never while a
connected peer still lacks entries the round had no time to send): an idle leader heartbeats its
voters half as often, with the same election timeouts, and proposals still go out at once (pysyncobj's
unbatched appends). It owns no state of its own beyond the host's ``_replica_beats``, ``round_pacer``,
a round count and the replicas dropped in the current round.
"""

from __future__ import annotations

import fcntl
import logging
import struct
import termios
import time
from typing import Any

from .flow import FlowLimits, FlowStats, inflight_entries, keep_next_index, send_through
from .heartbeats import ReplicaHeartbeats
from .pacer import TickPacer

log = logging.getLogger(__name__)
FLOW_LOG_EVERY_S = 5.0  # a leader logs what its followers' buffers held at most this often (INFO)


class QuietReplicaRounds:
    """Mixed in before ``SyncObj``; the host sets ``self._replica_beats`` before its first round."""

    _replica_beats: ReplicaHeartbeats
    _SyncObj__readonlyNodes: set[Any]  # pysyncobj's, swapped for a round in _SyncObj__sendAppendEntries
    _SyncObj__raftCommitIndex: int
    _SyncObj__raftLog: Any
    _SyncObj__raftNextIndex: dict[Any, int]
    _SyncObj__raftMatchIndex: dict[Any, int]
    _SyncObj__connectedNodes: set[Any]
    _SyncObj__newAppendEntriesTime: float  # pysyncobj's clock; its round sets it to now + the heartbeat
    _SyncObj__conf: Any
    round_pacer: TickPacer | None = None  # the store's (Raft thread): idle rounds use idle_round_s
    idle_round_s = 0.0  # the round period while idle (StoreConfig.idle_heartbeat_period_s); 0: pysyncobj's
    rounds_sent = 0  # append rounds sent by this node as leader (tests, benchmarks)
    _round_at = 0.0  # when the last append round (a heartbeat when idle) was sent
    _in_round = False
    _dropped_in_round: dict[Any, tuple[int, int | None]] | None = None
    replicas_dropped_mid_round = 0  # replicas whose connection dropped during a round (benchmarks)
    longest_round_gap_s = 0.0  # the longest pause between two rounds since it was last reset (benchmarks)
    flow_limits: FlowLimits | None = None  # None: pysyncobj's unbounded pipelining (flow.py)
    _flow_stats: FlowStats | None = None
    _flow_logged_at = 0.0
    flow_samples = 0  # rounds whose followers were read (tests, benchmarks)
    _round_cap: int | None = None  # the log end pysyncobj's round sees for the node it serves now
    _flow_broken: set[Any]  # followers whose connection dropped since their last answer (host sets it)
    _SyncObj__otherNodes: set[Any]
    _SyncObj__transport: Any

    def role_changed(self, was_leader: bool, now: float) -> None:
        """On a role change (Raft thread): a leader stepping down counts the pause since its last round."""
        self._replica_beats.changed()  # a new leadership sets every next index
        if was_leader and self._round_at:
            self.longest_round_gap_s = max(self.longest_round_gap_s, now - self._round_at)
        self._round_at = 0.0

    # The leader's append round: replicas with nothing to learn are left out (heartbeats.py).
    def _SyncObj__sendAppendEntries(self) -> None:  # noqa: N802
        replicas = self._SyncObj__readonlyNodes
        now, commit = time.monotonic(), self._SyncObj__raftCommitIndex
        if self._round_at:
            self.longest_round_gap_s = max(self.longest_round_gap_s, now - self._round_at)
        self._round_at = now
        last_index = self._SyncObj__raftLog[-1][1]
        quiet = self._replica_beats.quiet(replicas, self._SyncObj__raftNextIndex, last_index, commit, now)
        active = replicas - quiet
        caught_up = self.flow_limits is not None and self._all_caught_up(active, last_index)
        self._in_round, self._dropped_in_round = True, {}
        try:
            if self.flow_limits is None or caught_up:
                self._SyncObj__readonlyNodes = active  # (nothing to cap: one pysyncobj round for all)
                super()._SyncObj__sendAppendEntries()  # type: ignore[misc]
            else:
                self._SyncObj__readonlyNodes = self._flow_round(active)
        finally:  # keep what the round changed (a replica that disconnected), restore the skipped
            self._in_round = False
            for node in self._dropped_in_round:
                if node not in self._SyncObj__connectedNodes:  # still gone: drop its indexes now
                    self._SyncObj__raftNextIndex.pop(node, None)
                    self._SyncObj__raftMatchIndex.pop(node, None)
            self._dropped_in_round = None
            after = self._SyncObj__readonlyNodes
            replicas.difference_update(active - after)
            replicas.update(after - active)
            self._SyncObj__readonlyNodes = replicas
            self._replica_beats.sent(after, commit, now)
            self._replica_beats.forget(replicas)
        self.rounds_sent += 1
        self._observe_flow(now)
        pacer, busy_s = self.round_pacer, self._SyncObj__conf.appendEntriesPeriod
        if pacer is None or self.idle_round_s <= busy_s:
            return
        # a connected peer the round left entries (or snapshot chunks) for: pysyncobj stops a round after
        # one heartbeat period of sending and moves nextIndex past what it sent. A round in which every
        # peer held the whole log left none (the quiet replicas hold it too; a round appends nothing).
        last, nexts = self._SyncObj__raftLog[-1][1], self._SyncObj__raftNextIndex
        lagging = not caught_up and any(
            nexts.get(node, last + 1) <= last for node in self._SyncObj__connectedNodes
        )
        if (period := pacer.round_period(now, busy_s, self.idle_round_s, lagging)) > busy_s:
            self._SyncObj__newAppendEntriesTime += period - busy_s

    # --- flow control per follower (flow.py) ------------------------------------------------------
    # pysyncobj's round serves each node in turn until it has sent everything or one heartbeat period
    # has passed since the round began. Here it runs once per node, voters first, with the log's end
    # as that node may see it capped (``_round_cap``, read through pysyncobj's __getCurrentLogIndex):
    # a follower over its bounds, or any node once the round's period is spent, gets a heartbeat only.
    # A round in which every follower holds the whole log (an idle leader's: heartbeats only) is one
    # pysyncobj round for all, not one per follower (~20 calls, each with its own set building).

    def _flow_round(self, active: set[Any]) -> set[Any]:
        """One append round with flow control; returns the replicas of ``active`` still connected."""
        limits = self.flow_limits
        assert limits is not None
        voters = self._SyncObj__otherNodes
        period = self._SyncObj__conf.appendEntriesPeriod
        start = time.monotonic()
        send = super()._SyncObj__sendAppendEntries  # type: ignore[misc]
        order = [(node, True) for node in voters] + [(node, False) for node in active]
        try:
            for node, voter in order:
                self._SyncObj__otherNodes, self._SyncObj__readonlyNodes = (
                    ({node}, set()) if voter else (set(), {node})
                )
                self._round_cap = self._flow_cap(node, limits, late=time.monotonic() - start > period)
                send()
            if not order:  # nobody to send to: pysyncobj still schedules the next round
                self._SyncObj__readonlyNodes = set()  # (the quiet replicas too: a lone voter beat them
                send()  # every round)
        finally:
            self._round_cap = None
            self._SyncObj__otherNodes = voters
        return {node for node in active if node in self._SyncObj__connectedNodes}

    def _all_caught_up(self, active: set[Any], last_index: int) -> bool:
        """Whether every voter and every replica of this round holds the whole log (an idle round: only
        heartbeats go out, so flow control has nothing to cap and pysyncobj's round serves them all)."""
        nexts = self._SyncObj__raftNextIndex
        return all(nexts.get(node, 0) > last_index for node in self._SyncObj__otherNodes) and all(
            nexts.get(node, 0) > last_index for node in active
        )

    def _flow_cap(self, node: Any, limits: FlowLimits, late: bool) -> int | None:
        """The log end ``node`` sees in this round (flow.send_through); None: pysyncobj's own (not
        connected, or it needs the snapshot)."""
        nxt = self._SyncObj__raftNextIndex.get(node)
        raft_log = self._SyncObj__raftLog
        first, last = raft_log[0][1], raft_log[-1][1]
        if nxt is None or nxt <= first or node not in self._SyncObj__connectedNodes:
            return None
        # unknown (0: a new leadership or connection, before its first success): nothing counted in flight,
        # or a new leader would hold every follower back until its first answer
        match = self._SyncObj__raftMatchIndex.get(node, 0) or nxt - 1
        buffered = self._buffered(node)
        size = lambda index: len(raft_log[index - first][0])  # noqa: E731
        through = send_through(nxt, match, last, buffered, size, limits, late)
        if nxt <= last and through < nxt:
            self.flow_stats.held_back(self._kind(node))
        return through

    def _kind(self, node: Any) -> str:
        """The label of ``node`` in the flow counters (during a flow round, ``__otherNodes`` is the voter
        being served, or empty for a replica: the label still holds)."""
        return "voter" if node in self._SyncObj__otherNodes else "replica"

    def _SyncObj__getCurrentLogIndex(self) -> int:  # noqa: N802 (pysyncobj's, read by its round)
        last = int(self._SyncObj__raftLog[-1][1])
        cap = self._round_cap
        return last if cap is None else min(last, cap)

    def _SyncObj__onReadonlyNodeConnected(self, node: Any) -> None:  # noqa: N802
        super()._SyncObj__onReadonlyNodeConnected(node)  # type: ignore[misc]
        self._replica_beats.changed()  # its next index is set anew

    def _SyncObj__onNodeDisconnected(self, node: Any) -> None:  # noqa: N802
        self._flow_broken.add(node)  # entries in flight to it are lost: its next answer may rewind
        super()._SyncObj__onNodeDisconnected(node)  # type: ignore[misc]

    @property
    def flow_stats(self) -> FlowStats:
        if self._flow_stats is None:
            self._flow_stats = FlowStats()
        return self._flow_stats

    def _buffered(self, node: Any) -> int:
        """Bytes queued in the leader's user-space write buffer for ``node`` (0: none or no connection)."""
        conn = self._SyncObj__transport._connections.get(node)
        return 0 if conn is None else int(conn.getSendBufferSize())

    def _backlog(self, node: Any) -> int:
        """Bytes the socket of ``node``'s connection refused, still queued in user space: the buffer
        without the cork, whose frames this tick hands to the socket before its poll (a round's own
        heartbeat read as 162 B of backlog, and an idle leader logged its flow line every 5 s)."""
        conn = self._SyncObj__transport._connections.get(node)
        if conn is None:
            return 0
        refused = getattr(conn, "refused_bytes", None)  # the guarded transport's; else pysyncobj's buffer
        return int(refused() if refused is not None else conn.getSendBufferSize())

    def _kernel_queued(self, node: Any) -> int:
        """Bytes the kernel holds in the send queue of ``node``'s socket, not yet acknowledged by TCP."""
        conn = self._SyncObj__transport._connections.get(node)
        sock = None if conn is None else getattr(conn, "_TcpConnection__socket", None)
        if sock is None:
            return 0
        try:
            raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
        except (OSError, ValueError):
            return 0
        return int(struct.unpack("i", raw)[0])

    def _observe_flow(self, now: float) -> None:
        """After a round: each connected follower's backlog (:meth:`_backlog`) and unacknowledged entries
        (flow.py). An idle leader (the pacer's notion: its rounds are heartbeats) reads them only for the
        log line, every ``FLOW_LOG_EVERY_S``, not at each of its ~5 rounds a second."""
        stats = self.flow_stats
        stats.rounds += 1
        log_due = now - self._flow_logged_at >= FLOW_LOG_EVERY_S
        pacer = self.round_pacer
        if log_due or pacer is None or not pacer.idle(now):
            self.flow_samples += 1
            nexts, matches = self._SyncObj__raftNextIndex, self._SyncObj__raftMatchIndex
            for node in self._SyncObj__connectedNodes:
                if node not in nexts:
                    continue
                inflight = inflight_entries(nexts[node], matches.get(node, 0))
                stats.saw(self._kind(node), self._backlog(node), inflight)
        if log_due:
            self._flow_logged_at = now
            for node in self._SyncObj__connectedNodes:  # the kernel's send queues, once per log line
                kind = self._kind(node)
                stats.kernel_queued[kind] = max(stats.kernel_queued.get(kind, 0), self._kernel_queued(node))
            syncs = getattr(self._SyncObj__raftLog, "sync_stats", None)  # the durable journal's
            sends = getattr(self._SyncObj__transport, "take_send_counts", None)  # the guarded transport's
            if stats.busy():  # an idle leader logs nothing
                log.info(
                    "raft flow: %s; %s; %s",
                    stats.take(),
                    "no journal" if syncs is None else syncs.take(),
                    "" if sends is None else sends(),
                )
            else:
                if sends is not None:
                    sends()
                stats.take()
                if syncs is not None:
                    syncs.take()

    # A follower's answer that moved its next index back (pysyncobj: to the follower's log end, so the
    # next round re-sends every entry still in flight): counted here (bridge.py calls it).
    # With flow control a success for an earlier message leaves it where it was (flow.keep_next_index).
    def _flow_answered(self, node: Any, before: int | None, message: dict[str, Any]) -> None:
        nexts = self._SyncObj__raftNextIndex
        after = nexts.get(node)
        if after != before:
            self._replica_beats.changed()  # (a replica's answer: it may no longer be quiet)
        intact = node not in self._flow_broken
        self._flow_broken.discard(node)
        if before is None or after is None or after >= before:
            return
        success, reset = bool(message.get("success")), bool(message.get("reset"))
        kept = self.flow_limits is not None and keep_next_index(before, after, success, reset, intact)
        self.flow_stats.rewound(before - after, kept)
        if kept:
            nexts[node] = before

    # pysyncobj's round sends an entry larger than its batch size in chunks; when a send drops the
    # replica's connection it leaves only the chunk loop and reads the replica's next index once more,
    # which its disconnect handler has just deleted: KeyError, and the leader's whole tick (commit index,
    # every other follower's heartbeat) failed, tick after tick while lagging replicas kept dropping
    # (seen at 100,000 tasks). A replica dropped during a round keeps its indexes until the round ends.
    def _SyncObj__onReadonlyNodeDisconnected(self, node: Any) -> None:  # noqa: N802
        kept = None
        if self._in_round and self._dropped_in_round is not None and node in self._SyncObj__raftNextIndex:
            kept = (self._SyncObj__raftNextIndex[node], self._SyncObj__raftMatchIndex.get(node))
        super()._SyncObj__onReadonlyNodeDisconnected(node)  # type: ignore[misc]
        self._replica_beats.changed()
        if kept is not None and self._dropped_in_round is not None:
            self.replicas_dropped_mid_round += 1
            self._dropped_in_round[node] = kept
            self._SyncObj__raftNextIndex[node] = kept[0]
            if kept[1] is not None:
                self._SyncObj__raftMatchIndex[node] = kept[1]
