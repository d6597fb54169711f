"""pysyncobj's side of the store (shell): the SyncObj subclass and the hooks installed into pysyncobj.

Owns :class:`RaftBridge` (the one replicated method, the append filter, the refusal floor and the
Raft thread that ticks it),
:class:`PacedPoller` (the tick's own poll timeout) and :func:`install_durable_journal` (the durable
journal and dump rename patched into pysyncobj). It never holds cluster state, never talks to trio and
never decides a tick period: the owning store (``store.py``) does all three.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from typing import Any, Protocol

import pysyncobj.serializer as _pso_serializer
import pysyncobj.syncobj as _pso
from pysyncobj import SyncObj, SyncObjConf, replicated

from . import dumps, journal_start
from .appends import AppendFilter, rejection_floor
from .bounded_apply import BoundedApply
from .change_guard import OneMembershipChange
from .config_replay import LatestConfiguration
from .durable_commit import DurableLeaderCommit
from .election_timeout import ElectionTimeout, election_cap_s
from .flow import FlowLimits
from .forced_dump import ForcedDump
from .forwarded import ForwardedAnswers
from .heartbeat_answers import HeartbeatAnswers
from .heartbeat_rounds import QuietReplicaRounds
from .heartbeats import EarlyRounds, ReplicaHeartbeats, replica_connection_timeout_s
from .journal import DurableJournal
from .pre_vote_elections import PreVoteElections
from .pre_votes import PreVotes
from .quiet_answers import QuietHeartbeatAnswers
from .replica_leader import ReplicaKeepsLeader
from .snapshot_guard import SnapshotGuard
from .store_config import StoreConfig
from .tick_watch import TickWatch, watch_threshold
from .transport_guard import GuardedTCPTransport, install_frames_only

log = logging.getLogger(__name__)

EARLY_ROUND_GAP_S = 0.01  # a leader's early append rounds (heartbeats.EarlyRounds) at most this often
#: The Raft thread gives the GIL up on every socket call and then waits for it up to the switch interval
#: (CPython's default 5 ms) while a CPU-bound thread of the process (a leader round, the member views)
#: holds it: a tick of a few dozen sends and reads took hundreds of ms (issue 19). 1 ms bounds that wait.
#: A process-wide interpreter setting: the store never sets it; a process's entry point does
#: (``p2porch daemon``: cli/daemon.py; the benchmarks' store processes: raft/node.py and its kin).
RAFT_SWITCH_INTERVAL_S = 0.001
#: The Raft thread's scheduling priority relative to its process (Linux: a nice value per thread). On a
#: loaded machine a leader's Raft thread shares its process's GIL with the planner and member views, and
#: the CPU with every other process: measured at 1,000 x 50,000 (issue 19, seventh round), its ticks
#: took 1-4 s with the thread caught anywhere (a poll that had returned, a hash, a pickle), i.e. not
#: running. A lower nice value lets the OS run it (and the GIL holder it waits for) sooner. Lowering a
#: nice value needs CAP_SYS_NICE (the daemon runs as root); without it the thread keeps its priority.
RAFT_THREAD_NICE = -10


class BridgeOwner(Protocol):
    """What the bridge needs of its store (``RaftStore``): the config and the apply entry point."""

    config: StoreConfig

    def _apply_on_raft_thread(self, batch: bytes) -> list[dict[str, Any]]: ...


def install_durable_journal() -> None:
    """Make pysyncobj's files durable (idempotent, process-wide).

    Every file journal is a :class:`DurableJournal`; every dump pysyncobj renames into place (a
    snapshot received from the leader, or one we wrote) is fsynced, renamed and its directory
    fsynced before pysyncobj goes on (for a received snapshot: before it clears the journal and
    acknowledges).
    """
    _pso_serializer.atomicReplace = dumps.replace  # durable; a background dump renames its own file
    original = _pso.createJournal
    if getattr(original, "_p2porch", False):
        return

    def create_journal(journal_file: str | None = None) -> Any:
        if journal_file is None:
            return original(None)
        opened = journal_start.take(journal_file)  # read once by journal_start.prepare
        return opened if opened is not None else DurableJournal(journal_file)

    create_journal._p2porch = True  # type: ignore[attr-defined]
    _pso.createJournal = create_journal


def raise_thread_priority(nice: int) -> bool:
    """Give the calling thread ``nice`` relative to the process (Linux); False when not permitted."""
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, max(-20, os.getpriority(os.PRIO_PROCESS, 0) + nice))
    except OSError:  # no CAP_SYS_NICE (or not Linux): the thread keeps the process's priority
        log.debug("raft: cannot change the Raft thread's priority", exc_info=True)
        return False
    return True


class PacedPoller:
    """pysyncobj's poller, waiting as long as the last tick decided (``store.RaftStore._on_tick``): pysyncobj
    passes each tick the period read when the tick started, one tick late, which would let a timer the
    tick itself armed (a heartbeat, an election deadline) oversleep by up to a whole idle period."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.timeout_s: float | None = None  # set by the tick callback, just before pysyncobj polls

    def poll(self, timeout: float) -> Any:
        return self._inner.poll(timeout if self.timeout_s is None else self.timeout_s)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class RaftBridge(  # type: ignore[misc,unused-ignore]
    ReplicaKeepsLeader,
    LatestConfiguration,
    ForwardedAnswers,
    PreVoteElections,
    QuietHeartbeatAnswers,
    QuietReplicaRounds,
    SnapshotGuard,
    BoundedApply,
    DurableLeaderCommit,
    OneMembershipChange,
    SyncObj,
):
    """The SyncObj subclass; its one replicated method hands the batch to the owning store."""

    def __init__(self, owner: BridgeOwner, self_addr: str | None, partners: list[str], conf: SyncObjConf):
        self._owner_ref = owner
        self._replica_beats = ReplicaHeartbeats(owner.config.replica_beat_s)  # QuietReplicaRounds
        # the read timeout of a replica's connection on this voter (GuardedTCPTransport), as on the replica
        self.replica_connection_timeout_s = replica_connection_timeout_s(
            owner.config.replica_beat_s, conf.connectionTimeout
        )
        # QuietHeartbeatAnswers: a follower's answers to idle heartbeats, rate limited
        self._heartbeat_answers = HeartbeatAnswers(owner.config.heartbeat_answer_period_s)
        self._appends = AppendFilter()
        self.flow_limits = FlowLimits()  # QuietReplicaRounds: flow control per follower (flow.py)
        self._flow_broken: set[Any] = set()
        self._reject_floor: tuple[Any, int] | None = None  # (leader, index) refusals answer at most
        self._early_rounds = EarlyRounds(EARLY_ROUND_GAP_S)
        self._forced_dump = ForcedDump()  # a forced log compaction kept until a dump covers it
        # PreVoteElections: a voter campaigns only after a pre-vote majority; a live leader keeps its place
        self._pre_votes = PreVotes()
        self._pre_vote_hold_s = owner.config.election_timeout_min_s
        self._election_timeout = ElectionTimeout(  # adapted to the leader's gaps (election_timeout.py)
            floor_s=owner.config.election_timeout_min_s,
            cap_s=election_cap_s(conf.raftMaxTimeout, conf.connectionTimeout),
            beat_s=conf.appendEntriesPeriod,
        )
        self._pre_vote_retry_s = 2 * conf.appendEntriesPeriod
        self._election_noop = 0  # the index of this node's latest election no-op (leader_commit_now)
        if conf.journalFile:  # role and dump fix-ups, the journal read once (journal_start.py)
            journal_start.prepare(conf.journalFile, conf.fullDumpFile, voter=self_addr is not None)
        install_frames_only()  # no PBKDF2 for pysyncobj's unused Fernet (transport_guard.py)
        try:
            super().__init__(self_addr, partners, conf, transportClass=GuardedTCPTransport)
        except BaseException:
            self._close_after_failed_start()
            raise
        finally:
            if conf.journalFile:
                journal_start.release(conf.journalFile)
        self.use_latest_configuration()  # its log's latest voters, committed or not (config_replay.py)
        dumps.serve_dump_while_writing(self._SyncObj__serializer)
        journal = self._SyncObj__raftLog
        notifier = getattr(self, "_SyncObj__pipeNotifier", None)
        if isinstance(journal, DurableJournal) and notifier is not None:
            journal.on_durable = notifier.notify  # the worker's sync done: the leader ticks and counts

    def replica_hosts(self) -> dict[str, str]:
        """The connected read-only replicas' pysyncobj ids and the hosts they connect from (a copy)."""
        transport = getattr(self, "_SyncObj__transport", None)
        return dict(getattr(transport, "replica_hosts", {}))

    def _close_after_failed_start(self) -> None:
        """A start that failed (its Raft port taken) releases its sockets and journal file at once."""
        if hasattr(self, "_SyncObj__transport") and hasattr(self, "_SyncObj__raftLog"):
            try:
                self._doDestroy()
            except Exception:  # noqa: BLE001 (best effort: the start's own error is the one to raise)
                log.debug("closing a Raft store that failed to start", exc_info=True)
        notifier = getattr(self, "_SyncObj__pipeNotifier", None)  # nobody can notify it yet: close it
        for name in ("_PipeNotifier__pipeR", "_PipeNotifier__pipeW"):
            fd = getattr(notifier, name, None)
            if isinstance(fd, int):
                with contextlib.suppress(OSError):
                    os.close(fd)

    # --- the Raft thread ---------------------------------------------------------------------------
    # pysyncobj's own tick thread (``autoTick``) sleeps 100 ms before its first tick, so every store
    # open (a joining node's first connection to the leader among them) waited for it. The store
    # builds the SyncObj with ``autoTick=False`` and this thread ticks it from the start instead.

    def start_ticking(self, owner: threading.Thread) -> None:
        """Tick on a thread of our own until :meth:`destroy` or until ``owner`` has exited (the process's
        GIL switch interval is its entry point's: ``RAFT_SWITCH_INTERVAL_S``)."""
        self._tick_owner = owner
        self._tick_stop = False
        threshold = watch_threshold()  # diagnostics (tick_watch.py): off unless the variable is set
        self._tick_watch = TickWatch(threshold, self._role_name) if threshold else None
        self._tick_thread = threading.Thread(target=self._tick_loop, name="raft-tick", daemon=True)
        self._tick_thread.start()
        if self._tick_watch is not None:
            self._tick_watch.start()

    def leader_commit_now(self) -> int | None:
        """The index this node's state must reach before a write through it may read its copy, while it
        leads at this moment, else None (any thread: three reads). Its commit index, but at least its
        election no-op's index: pysyncobj commits only entries of the current term, so a leader elected a
        moment ago has a commit index short of its predecessor's commits until that no-op commits."""
        if self._SyncObj__raftState != _pso._RAFT_STATE.LEADER:
            return None
        # read after the state: written before it said LEADER (_SyncObj__onBecomeLeader), so this term's
        noop = self._election_noop
        return max(int(self._SyncObj__raftCommitIndex), noop)

    def _SyncObj__onBecomeLeader(self) -> None:  # noqa: N802 (pysyncobj's name)
        """pysyncobj appends its election no-op at the next index (as ``_SyncObj__noopIDx``) after it set
        the state to LEADER: the index is noted first, so another thread that reads LEADER reads it too."""
        self._election_noop = int(self._SyncObj__raftLog[-1][1]) + 1
        super()._SyncObj__onBecomeLeader()

    def _role_name(self) -> str:
        return "leader" if self._SyncObj__raftState == _pso._RAFT_STATE.LEADER else "not leader"

    def _tick_loop(self) -> None:
        raise_thread_priority(RAFT_THREAD_NICE)
        conf = self._SyncObj__conf
        watch = self._tick_watch
        try:
            while self._tick_owner.is_alive() and not self._tick_stop:
                if watch is not None:
                    watch.tick_started()
                try:
                    self._onTick(conf.autoTickPeriod)  # the period the store's pacer set last
                except Exception:  # as pysyncobj's own loop: log, wait a little, tick again
                    log.exception("a Raft tick failed")
                    time.sleep(conf.autoTickPeriod)
        finally:
            if watch is not None:
                watch.stop()
            self._doDestroy()

    def destroy(self) -> None:
        """Stop ticking; the Raft thread closes the transport and journal on its way out."""
        thread = getattr(self, "_tick_thread", None)
        if thread is None:
            self._doDestroy()
        else:
            self._tick_stop = True
            self._wake_tick()

    def _wake_tick(self) -> None:
        """Wake the Raft thread's poll so that it sees the stop now: an idle store's tick waits up to its
        long period (2 s), and a role switch or a shutdown waited for it. A notifier already closed (the
        thread is gone) needs no wake."""
        notifier = getattr(self, "_SyncObj__pipeNotifier", None)
        if notifier is not None:
            with contextlib.suppress(OSError):
                notifier.notify()

    def force_dump(self) -> None:
        """A full dump (log compaction) now, kept until one covers what is applied when the Raft thread
        first sees the request (forced_dump.py); any thread. Wakes the tick so that it starts at once."""
        self._forced_dump.ask()
        self._wake_tick()

    def step_forced_dump(self) -> bool:
        """Raft thread, once per tick after pysyncobj's own try (the store's tick callback): set
        pysyncobj's force flag while a forced dump is pending and the next tick can start it; whether set
        (the store then ticks short so that the next tick comes at once)."""
        forced = self._forced_dump
        if not forced.pending:
            return False
        forcing = forced.step(
            applied=self._SyncObj__raftLastApplied,
            log_first=self._SyncObj__raftLog[0][1],
            dumping=self._SyncObj__serializer._Serializer__pid != 0,  # pysyncobj starts none meanwhile
            last_dumped=self._SyncObj__lastSerializedEntry,
        )
        if forcing:
            self.forceLogCompaction()
        return forcing

    def destroy_synchronous(self) -> None:
        self.destroy()
        thread = getattr(self, "_tick_thread", None)
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def tick_thread_alive(self) -> bool:
        thread = getattr(self, "_tick_thread", None)
        return thread is not None and thread.is_alive()

    @replicated
    def apply_entry(self, batch: bytes) -> list[dict[str, Any]]:
        return self._owner_ref._apply_on_raft_thread(batch)

    def _checkCommandsToApply(self) -> None:  # noqa: N802 (pysyncobj's name)
        """pysyncobj's per-tick drain of the proposal queue, skipped when the queue is empty: its empty
        queue raises an exception on every tick, a measurable part of an idle node's tick (a proposal
        put meanwhile wakes the poller, and the next tick takes it). On a leader, one sync per drain, on
        the journal's worker thread."""
        if not self._SyncObj__commandsQueue._FastQueue__queue:
            return
        journal = self._SyncObj__raftLog
        if isinstance(journal, DurableJournal) and self._SyncObj__raftState == _pso._RAFT_STATE.LEADER:
            # A leader's entries of one drain are sent to the followers as they are added and share one
            # fdatasync, on the journal's worker thread after the drain: the leader counts itself towards
            # their commit only once that sync returned (durable_commit.py; Raft §10.2.1; docs/raft.md,
            # "The leader's syncs").
            with journal.syncs_in_background():
                super()._checkCommandsToApply()
        else:  # a follower's or a replica's drain forwards to the leader: none may go unanswered
            self.forward_drain(super()._checkCommandsToApply)

    def read_status(self, tries: int) -> dict[str, Any] | None:
        """pysyncobj's ``getStatus()``, or None when every try raised: read off the Raft thread, it
        iterates sets and dicts that thread changes meanwhile (the configuration, the replicas and
        their next/match indexes: a replica reconnecting), which raises RuntimeError."""
        for _ in range(tries):
            try:
                raw: dict[str, Any] = self.getStatus()
                return raw
            except RuntimeError:
                continue
        return None

    def seconds_to_next_timer(self) -> float:
        """How long until pysyncobj's next timer is due: the leader's next append round, a voter's
        election deadline; a read-only replica has neither (Raft thread). pysyncobj keeps its times on
        its own clock (CLOCK_MONOTONIC_RAW), not ``time.monotonic``'s."""
        state = self._SyncObj__raftState
        if state == _pso._RAFT_STATE.LEADER:
            due = float(self._SyncObj__newAppendEntriesTime)
        elif self._SyncObj__selfNode is None:
            return math.inf
        else:
            due = float(self._SyncObj__raftElectionDeadline)
        return due - _pso.monotonicTime()

    def connected_to_all_voters(self) -> bool:
        """Whether every voter this node knows of is connected (Raft thread)."""
        return all(self.isNodeConnected(node) for node in self._SyncObj__otherNodes)

    # pysyncobj registers ``self.__onMessageReceived`` (mangled to this name) as its transport
    # callback, so this override sees every Raft message first. See docs/raft.md, "overlapping appends".
    def _SyncObj__onMessageReceived(self, node: Any, message: Any) -> None:  # noqa: N802
        if not (isinstance(message, dict) and message.get("type") == "append_entries"):
            before = self._SyncObj__raftNextIndex.get(node)
            super()._SyncObj__onMessageReceived(node, message)
            if isinstance(message, dict) and message.get("type") == "next_node_idx":
                self._flow_answered(node, before, message)
                if message.get("reset"):
                    self._send_round_soon()  # the follower lacks entries: send them now, not next heartbeat
            return
        journal = self._SyncObj__raftLog
        with self.answering(node, message):  # an empty heartbeat's answer may be left out (quiet_answers.py)
            if isinstance(journal, DurableJournal):
                with journal.syncs_deferred():  # one fdatasync for the message, before its answer
                    self._on_append(node, message)
            else:
                self._on_append(node, message)

    def _on_append(self, node: Any, message: dict[str, Any]) -> None:
        raft_log = self._SyncObj__raftLog
        filtered, ack_index = self._appends.filter(raft_log, message)
        if filtered is None:
            return
        current = message.get("term", -1) >= self._SyncObj__raftCurrentTerm
        if current:
            floor = rejection_floor(raft_log, self._SyncObj__raftCommitIndex, filtered)
            if self._reject_floor is None or self._reject_floor[0] != node:
                self._reject_floor = None if floor is None else (node, floor)
            elif floor is not None:
                self._reject_floor = (node, min(floor, self._reject_floor[1]))
        super()._SyncObj__onMessageReceived(node, filtered)
        if ack_index is not None and current:
            self._SyncObj__sendNextNodeIdx(node, nextNodeIdx=ack_index + 1, success=True)

    # Every follower answer to an append goes through here (issue 24: refusals must agree).
    def _SyncObj__sendNextNodeIdx(  # noqa: N802
        self,
        node: Any,
        reset: bool = False,
        nextNodeIdx: int | None = None,
        success: bool = False,  # noqa: N803
    ) -> None:
        journal = self._SyncObj__raftLog
        if isinstance(journal, DurableJournal):
            journal.sync_deferred()  # an answer acknowledges entries: they are on disk first
        if success:
            self._reject_floor = None
        elif reset and self._reject_floor is not None and self._reject_floor[0] == node:
            default = self._SyncObj__raftLog[-1][1] + 1 if nextNodeIdx is None else nextNodeIdx
            nextNodeIdx = min(default, self._reject_floor[1])
        super()._SyncObj__sendNextNodeIdx(node, reset=reset, nextNodeIdx=nextNodeIdx, success=success)

    # --- early append rounds (heartbeats.EarlyRounds) ----------------------------------------------

    def _SyncObj__onNodeConnected(self, node: Any) -> None:  # noqa: N802
        super()._SyncObj__onNodeConnected(node)
        self._send_round_soon()

    def _SyncObj__onReadonlyNodeConnected(self, node: Any) -> None:  # noqa: N802
        super()._SyncObj__onReadonlyNodeConnected(node)
        self._send_round_soon()

    def _send_round_soon(self) -> None:
        """The leader's next append round goes on the next tick (Raft thread), rate limited."""
        if self._SyncObj__raftState != _pso._RAFT_STATE.LEADER:
            return
        scheduled = float(getattr(self, "_SyncObj__newAppendEntriesTime"))  # noqa: B009 (pysyncobj's)
        self._SyncObj__newAppendEntriesTime = self._early_rounds.due(_pso.monotonicTime(), scheduled)
