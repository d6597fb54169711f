"""The replicated store: one pysyncobj object bridged to trio (shell; pysyncobj's side is ``bridge.py``).

``open_raft_store(config)`` starts a SyncObj whose single replicated method takes a msgpack batch of
commands and applies it through the pure FSM on pysyncobj's own thread. Trio callers propose with
``await store.propose(cmd)``; proposals made while a batch is in flight are grouped into the next Raft
entry (group commit). Results, new states and changes reach trio only through
``TrioToken.run_sync_soon``: the trio loop never waits on a commit and the Raft thread never waits on
trio. Readers get the immutable ``snapshot()`` and an ordered change stream (``subscribe()``) that
are consistent with each other on the trio side.
"""

from __future__ import annotations

import _socket
import contextlib
import functools
import logging
import math
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Literal

import msgpack
import pysyncobj.syncobj as _pso
import trio
from pysyncobj import SyncObjConf, SyncObjException
from pysyncobj.node import TCPNode

from ..errors import NotLeaderError, ProposalTimeout, RaftError
from . import command_gate, dumps
from . import commands as C
from .applied_mark import AppliedMark
from .bridge import PacedPoller, RaftBridge, install_durable_journal
from .fsm import Change, apply_batch, encode_batch, undecodable
from .lag import LagBook
from .membership_changes import VoterChanges
from .pacer import TickLateness, TickPacer
from .proposals import Batch, InFlight, Proposal, next_batch, outcomes, queue, settle
from .state import EMPTY_STATE, ClusterState
from .status import LeaderChanges
from .status import RaftStatus as RaftStatus  # re-exported: callers import it from the store
from .store_config import StoreConfig as StoreConfig  # re-exported: callers import it from the store
from .store_config import split_addr as _split_addr

# pysyncobj.win_inet_pton replaces socket.inet_ntop with a Windows-only version on every platform
# (whichever module imports pysyncobj first), which breaks every later user of it (pyroute2 decoding
# addresses): put back the real one, from the C module, which pysyncobj does not touch.
socket.inet_ntop = _socket.inet_ntop

log = logging.getLogger(__name__)

JOURNAL_NAME = "raft.journal"
DUMP_NAME = "raft.dump"
STATUS_READ_TRIES = 3  # getStatus() off the Raft thread may raise (bridge.read_status)
FIRST_STATUS_READ_TRIES = 1000  # ... and with no status read yet: each try takes microseconds
IDLE_STATUS_REFRESH_S = 1.0  # the Raft thread's own status refresh (lag clocks) while idle
TIMEOUT_LOG_EVERY_S = 10.0  # a store logs its forwarding state on a proposal's timeout at most this often

_ROLE_NAMES = {0: "follower", 1: "candidate", 2: "leader"}
JOINING_CONNECT_RETRY_S = 0.05  # a joining voter's connection retries until it has heard a leader


class RaftStore:
    """One node's replicated store. Create with :func:`open_raft_store`, never directly from trio.

    Owns the SyncObj, its Raft thread and the files in ``data_dir``. Methods are called from trio;
    the Raft thread only calls ``_apply_on_raft_thread``, the serializer hooks and tick callbacks.
    """

    def __init__(
        self,
        config: StoreConfig,
        token: trio.lowlevel.TrioToken,
        owner_thread: threading.Thread | None = None,
    ) -> None:
        config.validate()
        install_durable_journal()
        self.config = config
        self._token = token
        self._raft_state: ClusterState = EMPTY_STATE  # owned by the Raft thread
        self.undecodable_commands = 0  # committed commands applied as no-ops (fsm.undecodable)
        self.status_read_failures = 0  # status reads that kept the last status (_compute_status)
        self._state: ClusterState = EMPTY_STATE  # trio-side view, in step with the change stream
        self.applied = AppliedMark()  # the apply index of ``_state`` (trio side; the write barrier)
        self._subscribers: list[trio.MemorySendChannel[Change]] = []
        self._pending: list[Proposal] = []
        self._inflight = InFlight(config.max_inflight_batches)
        self._timeout_logged_at = -math.inf
        self._wakeup = trio.Event()
        self._retry_at = 0.0
        self._closed = False
        self._status: RaftStatus | None = None
        self._status_at = 0.0
        self._observed_at = 0.0  # the Raft thread's refresh (lag, peers): status() polls must not starve it
        self._role_event = trio.Event()  # set (and replaced) on the trio thread when the Raft role changes
        self._leader_event = trio.Event()  # the same when the leader this node sees changes
        self._replayed = trio.Event()  # set once the journal is applied up to its commit index (trio side)
        self._replay_to: int | None = None  # that index; None once reached (Raft thread)
        self.leader_changes = LeaderChanges()  # updated on the Raft thread
        self.commit_observer: Callable[[float], None] | None = None  # seconds of each answered proposal
        self.command_readers: command_gate.Readers | None = None  # the write gate's input (None: no gate)
        self._status_lock = threading.Lock()
        self._dumps = dumps.BackgroundDumps(ask_again=lambda: self._so.forceLogCompaction())
        self._lag = LagBook()  # this node's lag and (leader only) its peers'; Raft thread
        voter = config.self_addr is not None
        idle_s = config.idle_tick_period_s if voter else config.replica_idle_tick_period_s
        self._pacer = TickPacer(config.tick_period_s, max(config.tick_period_s, idle_s))
        # read by the leader's self-pacing (leader/pacing.py), against its followers' election window
        self.tick_lateness = TickLateness(config.election_timeout_min_s, config.election_cap_s)
        data_dir = Path(config.data_dir)
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(data_dir, 0o700)
        self._dump_path = data_dir / DUMP_NAME
        dumps.remove_stale(self._dump_path)  # written by dump children that died with their process
        self._conf = SyncObjConf(
            password=config.password,
            autoTick=False,  # the bridge ticks it on a thread of its own (bridge.py)
            appendEntriesUseBatch=False,
            **config.pysyncobj_timing(),
            commandsWaitLeader=True,
            journalFile=str(data_dir / JOURNAL_NAME),
            fullDumpFile=str(self._dump_path),
            serializer=self._write_dump,
            serializeChecker=self._dumps.check,
            deserializer=self._read_dump,
            useFork=False,
            dynamicMembershipChange=True,
            bindAddress=(config.bind_addr or config.self_addr) if config.self_addr else None,
            maxBindRetries=3,
            bindRetryTime=0.2,
            logCompactionMinEntries=config.log_compaction_min_entries,
            logCompactionMinTime=config.log_compaction_min_time_s,
            onStateChanged=self._on_state_changed,
        )
        partners = [a for a in config.voters if a != config.self_addr]
        try:  # without autoTick, a voter binds its Raft port right here
            self._so = RaftBridge(self, config.self_addr, partners, self._conf)
        except SyncObjException as exc:
            raise RaftError(
                f"cannot bind the Raft port {config.bind_addr or config.self_addr}: {exc}"
            ) from exc
        hold_s = config.join_hold_elections_s if config.self_addr else 0.0
        if hold_s > 0:  # set after construction (pysyncobj checks timeouts < connection timeout)
            self._conf.raftMinTimeout, self._conf.raftMaxTimeout = hold_s, hold_s * 1.5  # see _on_tick
            self._so._SyncObj__raftElectionDeadline = _pso.monotonicTime() + hold_s  # pysyncobj's clock
            # the voters drop its connections until the leader has added it: try again often, so it
            # hears the leader soon after it was added (not up to connection_retry_s later)
            self._conf.connectionRetryTime = min(config.connection_retry_s, JOINING_CONNECT_RETRY_S)
        self._poller = PacedPoller(self._so._poller)
        self._so._poller = self._poller
        self._so.addOnTickCallback(self._on_tick)
        self._so.round_pacer = self._pacer  # an idle leader's append rounds (heartbeat_rounds.py)
        self._so.idle_round_s = config.idle_heartbeat_period_s
        # The Raft thread stops once the thread that owns the store has exited. We build it in a trio
        # worker thread (trio reaps idle workers after ~10 s): tie it to the trio thread instead.
        self._replay_to = self._so.raftCommitIndex  # the journal's: what this node had committed
        self._so.start_ticking(owner_thread or threading.current_thread())
        self._voter_changes = VoterChanges(
            self._compute_status,
            self._call_raft,
            self._membership_barrier,
            self._so.addNodeToCluster,
            self._so.removeNodeFromCluster,
        )

    # --- public API (trio side) ------------------------------------------------------------------

    def snapshot(self) -> ClusterState:
        """The current committed state as applied on this node (immutable)."""
        return self._state

    def role_event(self) -> trio.Event:
        """An event set at the next change of this node's Raft role (follower, candidate, leader): take it
        before reading ``status()``, then wait on it, and no change is missed (trio thread)."""
        return self._role_event

    def leader_event(self) -> trio.Event:
        """As ``role_event``, set when the leader this node sees changes (another, or none): the Raft
        thread's status refresh notices it (within a second when idle)."""
        return self._leader_event

    def leader_commit_now(self) -> int | None:
        """This node's commit index if it leads at this moment (read live, never cached), else None."""
        return self._so.leader_commit_now()

    def status(self) -> RaftStatus:
        """Latest Raft status (at most ``status_refresh_s`` old)."""
        with self._status_lock:
            status, at = self._status, self._status_at
        if status is None or time.monotonic() - at > self.config.status_refresh_s:
            last, status = status, self._compute_status()
            if status is not last:  # the last status, kept after a failed read, is not stamped fresh
                with self._status_lock:
                    self._status, self._status_at = status, time.monotonic()
        return status

    async def propose(self, command: bytes, timeout_s: float = 5.0) -> dict[str, Any]:
        """Replicate one encoded command from any node and return its FSM result map.

        FSM refusals (conflict, not found, invalid) come back as ``{"ok": False, ...}``. Raises
        ProposalTimeout if no result arrived in time or the outcome became unknowable (leader changed
        after the command was forwarded): the command may still commit, so retry with a condition."""
        return (await self.propose_together([command], timeout_s))[0]

    async def propose_together(self, commands: list[bytes], timeout_s: float = 5.0) -> list[dict[str, Any]]:
        """Replicate ``commands`` in one Raft entry (one group of the submit loop, never split: a batch
        takes it whole, alone when larger than ``max_batch_commands``; refused with a WireError when larger
        than an entry holds); their FSM result maps in order. Each applies on its own."""
        if self._closed:
            raise RaftError("the store is closed")
        if self.command_readers is not None:  # a body a member cannot read: older, or NotAllowedError
            commands = [command_gate.admit(command, self.command_readers) for command in commands]
        proposals = queue(self._pending, commands)  # one too large for an entry is refused at once
        self._wakeup.set()
        started = time.monotonic()
        results = await outcomes(proposals, timeout_s, self._abandon)
        if self.commit_observer is not None:
            self.commit_observer(time.monotonic() - started)
        return results

    def _abandon(self, proposal: Proposal) -> None:  # its caller timed out
        proposal.abandoned = True
        with contextlib.suppress(ValueError):
            self._pending.remove(proposal)
        self._give_up(proposal)

    async def write(self, command: bytes, timeout_s: float = 5.0) -> Any:
        """Like :meth:`propose` but returns the result value and raises the FSM error as an exception."""
        return C.raise_for_result(await self.propose(command, timeout_s))

    async def write_together(self, commands: list[bytes], timeout_s: float = 5.0) -> list[Any]:
        """:meth:`propose_together`'s values; raises the first command's FSM error (the rest applied)."""
        return [C.raise_for_result(result) for result in await self.propose_together(commands, timeout_s)]

    @contextlib.asynccontextmanager
    async def subscribe(
        self, max_buffer: float = math.inf
    ) -> AsyncIterator[trio.MemoryReceiveChannel[Change]]:
        """An ordered stream of :class:`Change` records applied after this call.

        A subscriber that lets more than ``max_buffer`` changes pile up is cut off: its channel closes
        (``trio.EndOfChannel``), so a slow API client cannot make the node hold unbounded history.

        Take ``snapshot()`` right after entering: the stream continues exactly from that state
        (first change has version ``snapshot().version + 1`` or is a ``reset``).
        """
        send, receive = trio.open_memory_channel[Change](max_buffer)
        self._subscribers.append(send)
        try:
            async with receive:
                yield receive
        finally:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(send)
            send.close()

    async def add_voter(self, addr: str, timeout_s: float = 10.0) -> None:
        """Add a voter to the Raft configuration (from any node; one change at a time). Returns once the
        change is committed (already committed: at once, after a barrier); ProposalTimeout when that is
        not known in time (retry the same change); RaftError while another change of this node's may be
        uncommitted (``membership_changes``)."""
        _split_addr(addr, "addr")
        await self._voter_changes.change("add", addr, timeout_s)

    async def remove_voter(self, addr: str, timeout_s: float = 10.0) -> None:
        """Remove a voter (as :meth:`add_voter`). The leader cannot remove itself: call
        :meth:`transfer_leadership` first."""
        _split_addr(addr, "addr")
        if addr == self.config.self_addr and self.status().is_leader:
            raise NotLeaderError("the leader cannot remove itself; transfer leadership first", leader=addr)
        await self._voter_changes.change("remove", addr, timeout_s)

    async def _membership_barrier(self, timeout_s: float) -> None:
        """A Noop entry committed and applied here (``membership_changes``: it commits what came before)."""
        await self.propose(C.Noop(at=time.time(), tag="voter change barrier").encode(), timeout_s)

    async def transfer_leadership(self, to: str | None = None, timeout_s: float = 5.0) -> str | None:
        """Hand leadership to ``to`` (default: the most caught-up voter); returns the new leader."""
        if not self.status().is_leader:
            raise NotLeaderError("not the leader", leader=self.status().leader)
        await self._call_raft(lambda cb: self._so.transferLeadership(to, callback=cb), timeout_s)
        with trio.move_on_after(timeout_s):
            while True:
                status = self._compute_status()
                if status.leader and status.leader != self.config.self_addr:
                    return status.leader
                await trio.sleep(0.02)
        raise ProposalTimeout("leadership did not move in time")

    async def wait_leader(self, timeout_s: float = 10.0) -> str:
        """Wait until this node knows a leader; returns its address."""
        with trio.move_on_after(timeout_s):
            while True:
                leader = self._compute_status().leader
                if leader:
                    return leader
                await trio.sleep(0.02)
        raise ProposalTimeout("no leader elected in time")

    # --- submission (trio side) ------------------------------------------------------------------

    async def _submit_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup = trio.Event()
            delay = self._retry_at - trio.current_time()
            if delay > 0:
                await trio.sleep(delay)
            while self._pending and self._inflight.has_room():
                batch = next_batch(self._pending, self.config.max_batch_commands)
                if not batch:
                    continue
                inflight = self._inflight.take(batch)
                callback = functools.partial(self._raft_callback, self._batch_done, inflight)
                self._conf.autoTickPeriod = self._pacer.work(time.monotonic())  # read by the next tick
                self._so.apply_entry(encode_batch([p.command for p in batch]), callback=callback)

    def _raft_callback(self, target: Callable[..., None], *args: Any) -> None:
        """Runs on the Raft thread: hand the outcome to trio without waiting."""
        with contextlib.suppress(trio.RunFinishedError):
            self._token.run_sync_soon(target, *args)

    def _give_up(self, proposal: Proposal) -> None:
        """A proposal timed out: log this store's forwarding state (rate limited); its batch's slot goes
        back once every proposal of the batch has (proposals.py)."""
        now = time.monotonic()
        if now - self._timeout_logged_at >= TIMEOUT_LOG_EVERY_S:
            self._timeout_logged_at = now
            log.warning("raft proposal timed out: %s", self.forwarding())
        if self._inflight.given_up(proposal):
            self._wakeup.set()

    def forwarding(self) -> dict[str, Any]:
        """This store's proposals in flight and its indexes against the leader's (diagnosis)."""
        status = self.status()
        return {
            "batches_in_flight": self._inflight.count,
            "pending": len(self._pending),
            "applied": status.last_applied,
            "commit": status.commit_index,
            "leader_commit": status.leader_commit_index,
            "leader": status.leader,
        } | self._so.forwarding()

    def _batch_done(self, inflight: Batch, results: Any, err: int) -> None:
        if not self._inflight.release(inflight):
            return  # every proposal of it timed out and its slot went back: nobody waits for this
        if retry := settle(inflight, results, err):  # known not in the log: submitted again shortly
            self._pending[:0] = retry
            self._retry_at = trio.current_time() + 0.02
        self._wakeup.set()

    def _deliver(self, state: ClusterState, changes: list[Change]) -> None:
        """Trio side: publish a new state and its changes, in Raft apply order."""
        if state.version < self._state.version:  # only a loaded dump can do this (docs/raft.md)
            log.warning(
                "raft state served went back: version %d -> %d (%s)",
                self._state.version,
                state.version,
                changes[0].kind if changes else "no change",
            )
        self._state = state
        for send in list(self._subscribers):
            for change in changes:
                try:
                    send.send_nowait(change)
                except (trio.ClosedResourceError, trio.BrokenResourceError, trio.WouldBlock):
                    send.close()  # gone, or fell more than its max_buffer behind: cut off
                    with contextlib.suppress(ValueError):
                        self._subscribers.remove(send)
                    break

    async def _call_raft(self, start: Callable[[Callable[[Any, int], None]], None], timeout_s: float) -> int:
        done = trio.Event()
        outcome: list[int] = []

        def on_result(_res: Any, err: int) -> None:
            outcome.append(err)
            done.set()

        start(lambda res, err: self._raft_callback(on_result, res, err))
        with trio.move_on_after(max(timeout_s, 0.0)):
            await done.wait()
        if not outcome:
            raise ProposalTimeout("no answer from the Raft leader in time")
        return outcome[0]

    # --- Raft thread -----------------------------------------------------------------------------

    def _apply_on_raft_thread(self, batch: bytes) -> list[dict[str, Any]]:
        state, results, changes = apply_batch(self._raft_state, batch)
        for result in results:
            if not result["ok"] and undecodable(result):  # a no-op on every replica alike (fsm.py)
                self.undecodable_commands += 1
                log.warning("raft: a committed command did not decode: %s", result["message"])
        if state is not self._raft_state:
            self._raft_state = state
            self._raft_callback(self._deliver, state, changes)
        return results

    @property
    def dumps_written(self) -> int:
        """Full dumps (log compactions) this store wrote to disk."""
        return self._dumps.written

    @property
    def dump_child_pid(self) -> int:
        """The latest dump child's pid (0 before the first dump; benchmarks sample its memory)."""
        return self._dumps.last_pid

    def take_longest_heartbeat_gap(self) -> float:
        """The longest pause between two of this leader's append rounds since the last call (seconds)."""
        gap, self._so.longest_round_gap_s = self._so.longest_round_gap_s, 0.0
        return gap

    def _write_dump(self, file_name: str, data: Any) -> None:
        """pysyncobj's serializer (Raft thread): fork a child that encodes and writes the state as it is
        now (``dumps.py``); the child's copy-on-write view of memory is exactly this version."""
        last, prev, cluster = data
        state = self._raft_state
        head = {
            "format": 1,
            "last": list(last),
            "prev": list(prev),
            "cluster": sorted(n.id for n in cluster if n is not None),
        }

        def encode() -> bytes:  # runs in the forked dump child only (dumps.py)
            return dumps.encode_dump(head, state.to_dict())

        self._dumps.start(file_name, str(self._dump_path), encode)

    def _read_dump(self, file_name: str) -> tuple[Any, Any, Any]:
        body = msgpack.unpackb(Path(file_name).read_bytes(), raw=False, strict_map_key=False)
        state = ClusterState.from_dict(body["state"])
        so = getattr(self, "_so", None)  # applied and commit: pysyncobj's, before it takes the dump's
        at = (getattr(so, "_SyncObj__raftLastApplied", None), getattr(so, "_SyncObj__raftCommitIndex", None))
        log.info(
            "raft dump %s loaded over state version %d, applied/commit %s",
            body["last"][1:],
            self._raft_state.version,
            at,
        )
        self._raft_state = state
        reset = Change("reset", "put", state.cluster_id, state, state.version)
        self._raft_callback(self._deliver, state, [reset])
        cluster = [TCPNode(a) for a in body["cluster"]]
        return tuple(body["last"]), tuple(body["prev"]), cluster

    def _on_state_changed(self, old: int, new: int) -> None:
        self._status_at = self._observed_at = 0.0
        so = getattr(self, "_so", None)  # a role can change while the SyncObj is being built
        if so is not None:
            so.role_changed(old == 2, time.monotonic())
        log.info("raft role %s -> %s", _ROLE_NAMES.get(old, old), _ROLE_NAMES.get(new, new))
        self._raft_callback(self._fire_role_event)

    def _fire_role_event(self, slot: Literal["_role_event", "_leader_event"] = "_role_event") -> None:
        # a status() the trio thread computed before the change and stored after the Raft thread's
        # reset would look fresh: drop it here, on the trio thread, before a waiter reads status()
        with self._status_lock:
            self._status_at = 0.0
        event = getattr(self, slot)
        setattr(self, slot, trio.Event())
        event.set()

    def _on_tick(self) -> None:
        now = time.monotonic()
        replay_to = self._replay_to
        if replay_to is not None and self._so.raftLastApplied >= min(replay_to, self._so.raftCommitIndex):
            self._replay_to = None  # set after every state of the replay reached trio (FIFO)
            self._raft_callback(self._replayed.set)
        self.applied.post(self._so.raftLastApplied, self._raft_callback)  # after this tick's states
        if self._conf.raftMinTimeout != self.config.election_timeout_min_s and self._so._getLeader():
            # a joining voter heard its leader: normal election timeouts from now on
            self._conf.raftMinTimeout = self.config.election_timeout_min_s
            self._conf.raftMaxTimeout = self.config.election_timeout_max_s
            deadline = _pso.monotonicTime() + self.config.election_timeout_max_s  # pysyncobj's clock
            self._so._SyncObj__raftElectionDeadline = deadline  # not 60 s
            self._conf.connectionRetryTime = self.config.connection_retry_s
        busy = self._so.step_forced_dump() or self._inflight.count > 0 or bool(self._pending)
        timer_at = now + self._so.seconds_to_next_timer()
        if self._conf.connectionRetryTime < self.config.connection_retry_s:  # a joining voter's retries
            timer_at = min(timer_at, now + self._conf.connectionRetryTime)
        elif self.config.self_addr is None and not self._so.connected_to_all_voters():
            timer_at = min(timer_at, now + self._conf.connectionRetryTime)  # a replica reconnecting
        period = self._pacer.period(now, self._so.raftCommitIndex, self._so.raftLastApplied, busy, timer_at)
        self._conf.autoTickPeriod = period
        self.tick_lateness.tick(now, period)
        self._poller.timeout_s = period  # this tick's own poll (the callbacks run just before it)
        idle = period > self._pacer.busy_period_s  # idle: refresh every second (status() reads fresh)
        if now - self._observed_at >= (IDLE_STATUS_REFRESH_S if idle else self.config.status_refresh_s):
            try:
                status = self._compute_status(observe_at=now)
            except RaftError:  # unreadable on its own thread: a bug; the status stays stale, never restamped
                if self.status_read_failures % 1000 == 1:
                    log.warning(
                        "raft: the Raft thread's own status read failed (%d)", self.status_read_failures
                    )
                return
            with self._status_lock:
                self._status, self._status_at = status, now
            self._observed_at = now

    def _compute_status(self, observe_at: float | None = None) -> RaftStatus:
        """Read pysyncobj's status; ``observe_at`` (Raft thread only) also advances the lag clocks. An
        unreadable status is never made up: off the Raft thread the last one read stands (not restamped);
        before any, or on the Raft thread (its reads never race), it is read again, then RaftError."""
        raw = self._so.read_status(STATUS_READ_TRIES)
        if raw is None:
            self.status_read_failures += 1
            with self._status_lock:
                last = self._status
            if last is not None and observe_at is None:  # off the Raft thread (whose reads never race)
                return last
            raw = self._so.read_status(FIRST_STATUS_READ_TRIES)
            if raw is None:
                raise RaftError("the Raft status could not be read (pysyncobj's state kept changing)")
        self_addr = self.config.self_addr
        prefix = "partner_node_status_server_"
        others = sorted(k.removeprefix(prefix) for k in raw if k.startswith(prefix))
        connected = sorted(k.removeprefix(prefix) for k, v in raw.items() if k.startswith(prefix) and v == 2)
        voters = tuple(sorted(([self_addr] if self_addr else []) + others))
        leader = raw.get("leader")
        is_leader = self_addr is not None and raw.get("state") == 2
        role = "replica" if self_addr is None else _ROLE_NAMES.get(raw.get("state", 0), "follower")
        commit = int(raw.get("commit_idx", 0))
        applied = int(raw.get("last_applied", 0))
        leader_commit = commit if is_leader else int(raw.get("leader_commit_idx") or 0)
        if observe_at is not None:
            self._lag.observe(observe_at, raw, is_leader, applied, leader_commit, self._so.replica_hosts)
            if self.leader_changes.observe(None if leader is None else str(leader)):
                self._raft_callback(self._fire_role_event, "_leader_event")
        lag_s, peers = self._lag.current
        return RaftStatus(
            self_addr=self_addr,
            role=role,
            is_leader=is_leader,
            leader=None if leader is None else str(leader),
            term=int(raw.get("raft_term", 0)),
            commit_index=int(raw.get("commit_idx", 0)),
            last_applied=int(raw.get("last_applied", 0)),
            voters=voters,
            connected_voters=tuple(connected),
            replicas_connected=int(raw.get("readonly_nodes_count", 0)),
            has_quorum=bool(raw.get("has_quorum", False)),
            ready=bool(self._so.isReady()),
            state_version=self._raft_state.version,
            raft_thread_alive=bool(self._so.tick_thread_alive()),
            leader_commit_index=leader_commit,
            lag_s=lag_s,
            peers=peers,
        )

    def _destroy(self) -> None:
        self._closed = True
        self._so.destroy_synchronous()
        self._dumps.close()


@contextlib.asynccontextmanager
async def open_raft_store(config: StoreConfig) -> AsyncIterator[RaftStore]:
    """Start a store for the lifetime of the block; stops the Raft thread and closes files on exit."""
    token = trio.lowlevel.current_trio_token()
    store = await trio.to_thread.run_sync(RaftStore, config, token, threading.current_thread())
    commit = store._so.raftCommitIndex
    started = time.monotonic()
    try:
        # Readers never see a state older than the one this node served before it reopened the store
        # (a role switch, a key switch): the journal is replayed up to its commit index first.
        with trio.move_on_after(config.replay_wait_s) as waited:
            await store._replayed.wait()
        log.log(
            logging.WARNING if waited.cancelled_caught else logging.INFO,
            "raft store opened: journal replayed to %d (state version %d) in %.3f s%s",
            commit,
            store._state.version,
            time.monotonic() - started,
            " (given up: serving the store anyway)" if waited.cancelled_caught else "",
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store._submit_loop)
            try:
                yield store
            finally:
                nursery.cancel_scope.cancel()
    finally:
        store._closed = True
        log.info("raft store closed at state version %d", store._state.version)
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(store._destroy)
        for proposal in store._pending:
            if not proposal.done.is_set():
                proposal.error = RaftError("the store was closed")
                proposal.done.set()
