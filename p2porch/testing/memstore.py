"""An in-memory Raft group and per-node store handles for fast tests (shell fake; imported by tests only).

``MemoryRaft`` owns one committed log applied through the REAL FSM (``raft.fsm.apply``), the Raft
voter configuration, and a scripted leader: ``set_leader(addr)`` / ``set_leader(None)`` (no leader,
no quorum), ``hold()`` (a leader that cannot commit: proposals wait), ``release()`` (they commit) and
``lose_uncommitted()`` (they fail with ``ProposalTimeout``, as after a leader change, and never
apply). ``MemoryStore`` is one node's handle with the interface the control plane uses from
:class:`~p2porch.raft.store.RaftStore`: ``snapshot()``, ``status()``, ``propose()``/``write()`` of
command bytes, ``subscribe()`` (ordered change stream), ``add_voter``/``remove_voter``,
``transfer_leadership``, ``wait_leader`` and ``config.self_addr``. ``MemoryManager`` is the smaller
double the control ops take (no Raft, one state). Every node of a group sees the same
committed state at once (no replication lag). It never touches sockets, threads or files, and never
reads a clock: timeouts are trio's, so it runs under ``MockClock``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import trio

from ..config import Config
from ..errors import NotLeaderError, ProposalTimeout, RaftError
from ..raft import command_gate
from ..raft import commands as C
from ..raft.fsm import Change, apply
from ..raft.pacer import TickLateness
from ..raft.state import EMPTY_STATE, ClusterState
from ..raft.status import RaftStatus

Listener = Callable[[ClusterState, list[Change]], None]
Done = Callable[[dict[str, Any] | None, Exception | None], None]  # (result, error) of one proposal


@dataclass
class _Held:
    """A proposal waiting for a leader that can commit."""

    command: bytes
    on_done: Done


class MemoryRaft:
    """One Raft group in memory (see the module docstring). Synchronous: the simulator calls
    :meth:`submit` directly; trio code goes through a :class:`MemoryStore`."""

    def __init__(self, voters: Iterable[str] = (), *, leader: str | None = None) -> None:
        self.voters: list[str] = sorted(set(voters))
        self.leader: str | None = None
        self.term = 0
        self.state: ClusterState = EMPTY_STATE
        self.log: list[bytes] = []  # every committed command, in order
        self.holding = False
        self.lost = 0  # proposals dropped by lose_uncommitted
        self._held: list[_Held] = []
        self._listeners: list[Listener] = []
        self.leader_event = trio.Event()  # set (and replaced) at every leader change
        if leader is not None:
            self.set_leader(leader)

    # ----- scripted leadership
    def set_leader(self, addr: str | None) -> None:
        """``addr`` leads from now on (a new term); None: no leader, nothing commits."""
        if addr is not None and addr not in self.voters:
            raise RaftError(f"{addr} is not a voter of {self.voters}")
        if addr != self.leader:
            self.term += 1
            fired, self.leader_event = self.leader_event, trio.Event()
            fired.set()
        self.leader = addr
        self._flush()

    def hold(self) -> None:
        """The leader keeps accepting proposals but commits none of them (a lost quorum, a slow disk)."""
        self.holding = True

    def release(self) -> None:
        """Commit what was held, in order (if there is a leader)."""
        self.holding = False
        self._flush()

    def lose_uncommitted(self) -> int:
        """Drop every held proposal: its caller gets ProposalTimeout and it never applies."""
        held, self._held = self._held, []
        for item in held:
            item.on_done(None, ProposalTimeout("outcome unknown (leader changed); it may have committed"))
        self.lost += len(held)
        return len(held)

    @property
    def held(self) -> int:
        return len(self._held)

    @property
    def can_commit(self) -> bool:
        return self.leader is not None and not self.holding

    # ----- commits
    def submit(self, command: bytes) -> dict[str, Any]:
        """Commit one command now through the FSM and return its result map (raises if it cannot)."""
        if not self.can_commit:
            raise ProposalTimeout("no leader can commit now")
        return self._commit(command)

    def enqueue(self, command: bytes, on_done: Done) -> None:
        """Commit now if possible, else hold ``command`` until a leader can commit or it is lost."""
        self._held.append(_Held(command, on_done))
        self._flush()

    def cancel(self, on_done: Done) -> None:
        """Forget a held proposal whose caller gave up (it never applies)."""
        self._held = [h for h in self._held if h.on_done is not on_done]

    def replace_state(self, state: ClusterState) -> None:
        """Install a whole state (a snapshot from the leader): listeners get one ``reset`` change."""
        self.state = state
        self._notify(state, [Change("reset", "put", state.cluster_id, state, state.version)])

    def new_log(self, voters: Iterable[str], leader: str) -> None:
        """Start an empty log with a new configuration (a forced recovery); the state is empty until
        the first command (``restore_state``) commits."""
        self._held.clear()
        self.voters = sorted(set(voters))
        self.log = []
        self.leader = None
        self.replace_state(EMPTY_STATE)
        self.set_leader(leader)

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(state, changes)`` after every commit that changed something; returns an undo."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _commit(self, command: bytes) -> dict[str, Any]:
        state, result, changes = apply(self.state, command)
        self.log.append(command)
        if changes:
            self.state = state
            self._notify(state, changes)
        return result

    def _flush(self) -> None:
        while self._held and self.can_commit:
            item = self._held.pop(0)
            item.on_done(self._commit(item.command), None)

    def _notify(self, state: ClusterState, changes: list[Change]) -> None:
        for listener in list(self._listeners):
            listener(state, changes)

    # ----- handles
    def store(self, self_addr: str | None) -> MemoryStore:
        """A node's handle: ``self_addr`` its Raft address as a voter, None for a read-only replica."""
        return MemoryStore(self, self_addr)


@dataclass(frozen=True)
class MemoryStoreConfig:
    """The part of ``StoreConfig`` the control plane reads."""

    self_addr: str | None
    voters: tuple[str, ...] = field(default_factory=tuple)


class MemoryStore:
    """One node's view of a :class:`MemoryRaft` with :class:`RaftStore`'s trio interface."""

    def __init__(self, raft: MemoryRaft, self_addr: str | None) -> None:
        self.raft = raft
        self.config = MemoryStoreConfig(self_addr, tuple(raft.voters))
        self.closed = False
        self.proposals = 0
        self.tick_lateness = TickLateness()  # never ticked: 0, unless a test says otherwise
        self.command_readers: command_gate.Readers | None = None  # no write gate (RaftStore's)

    def snapshot(self) -> ClusterState:
        return self.raft.state

    def role_event(self) -> trio.Event:
        """Set at the next leader change of the group (every member's role may change with it)."""
        return self.raft.leader_event

    def leader_event(self) -> trio.Event:
        """Set at the next leader change of the group."""
        return self.raft.leader_event

    def status(self) -> RaftStatus:
        raft, me = self.raft, self.config.self_addr
        is_voter = me is not None and me in raft.voters
        is_leader = me is not None and raft.leader == me
        role = "replica" if me is None else ("leader" if is_leader else "follower")
        return RaftStatus(
            self_addr=me,
            role=role,
            is_leader=is_leader,
            leader=raft.leader,
            term=raft.term,
            commit_index=len(raft.log),
            last_applied=len(raft.log),
            voters=tuple(raft.voters),
            connected_voters=tuple(v for v in raft.voters if v != me) if raft.leader else (),
            replicas_connected=0,
            has_quorum=raft.leader is not None and (is_voter or me is None),
            ready=True,
            state_version=raft.state.version,
            raft_thread_alive=not self.closed,
        )

    async def propose(self, command: bytes, timeout_s: float = 5.0) -> dict[str, Any]:
        """Commit ``command`` through the group's FSM; waits (trio time) while no leader can commit."""
        return (await self.propose_together([command], timeout_s))[0]

    async def propose_together(self, commands: list[bytes], timeout_s: float = 5.0) -> list[dict[str, Any]]:
        """Commit ``commands`` in order, all queued at once (as :meth:`RaftStore.propose_together`)."""
        if self.closed:
            raise RaftError("the store is closed")
        self.proposals += len(commands)
        outcomes: list[list[Any]] = [[] for _ in commands]
        done = [trio.Event() for _ in commands]

        def on_done(index: int, result: dict[str, Any] | None, error: Exception | None) -> None:
            outcomes[index].append((result, error))
            done[index].set()

        callbacks = [partial(on_done, i) for i in range(len(commands))]
        for command, callback in zip(commands, callbacks, strict=True):
            self.raft.enqueue(command, callback)  # queued before the first checkpoint, as RaftStore does
        await trio.lowlevel.checkpoint()
        with trio.move_on_after(timeout_s):
            for event in done:
                await event.wait()
        if not all(outcomes):
            for callback, outcome in zip(callbacks, outcomes, strict=True):
                if not outcome:
                    self.raft.cancel(callback)
            raise ProposalTimeout(f"no commit within {timeout_s:.3g} s; the write may still commit later")
        results = []
        for ((result, error),) in outcomes:
            if error is not None:
                raise error
            assert result is not None
            results.append(result)
        return results

    async def write(self, command: bytes, timeout_s: float = 5.0) -> Any:
        return C.raise_for_result(await self.propose(command, timeout_s))

    async def write_together(self, commands: list[bytes], timeout_s: float = 5.0) -> list[Any]:
        return [C.raise_for_result(r) for r in await self.propose_together(commands, timeout_s)]

    @contextlib.asynccontextmanager
    async def subscribe(
        self, max_buffer: float = math.inf
    ) -> AsyncIterator[trio.MemoryReceiveChannel[Change]]:
        """Changes committed after this call, in order (as :meth:`RaftStore.subscribe`, cut off likewise)."""
        send, receive = trio.open_memory_channel[Change](max_buffer)

        def deliver(_state: ClusterState, changes: list[Change]) -> None:
            for change in changes:
                try:
                    send.send_nowait(change)
                except trio.WouldBlock:
                    send.close()
                    return
                except (trio.ClosedResourceError, trio.BrokenResourceError):
                    return

        undo = self.raft.listen(deliver)
        try:
            async with receive:
                yield receive
        finally:
            undo()
            send.close()

    def _require_leader(self) -> None:
        if self.raft.leader is None:
            raise ProposalTimeout("no leader")

    async def add_voter(self, addr: str, timeout_s: float = 10.0) -> None:
        await trio.lowlevel.checkpoint()
        self._require_leader()
        if addr not in self.raft.voters:
            self.raft.voters = sorted([*self.raft.voters, addr])

    async def remove_voter(self, addr: str, timeout_s: float = 10.0) -> None:
        await trio.lowlevel.checkpoint()
        self._require_leader()
        if addr == self.config.self_addr and self.status().is_leader:
            raise NotLeaderError("the leader cannot remove itself; transfer leadership first", leader=addr)
        self.raft.voters = [v for v in self.raft.voters if v != addr]

    async def transfer_leadership(self, to: str | None = None, timeout_s: float = 5.0) -> str | None:
        await trio.lowlevel.checkpoint()
        if not self.status().is_leader:
            raise NotLeaderError("not the leader", leader=self.raft.leader)
        target = to or next((v for v in self.raft.voters if v != self.config.self_addr), None)
        if target is None:
            raise ProposalTimeout("no other voter to hand leadership to")
        self.raft.set_leader(target)
        return target

    async def wait_leader(self, timeout_s: float = 10.0) -> str:
        with trio.move_on_after(timeout_s):
            while self.raft.leader is None:
                await trio.sleep(0.02)
            return self.raft.leader
        raise ProposalTimeout("no leader elected in time")

    def close(self) -> None:
        self.closed = True


class MemoryManager:
    """What the control ops (``ServiceOps``, ``NetworkOps``, ``StackOps``) need of the node's manager,
    over the real FSM in memory and without Raft: ``snapshot()``, ``write(command)``, ``config``.

    ``state`` is the committed state (a cluster initialised); ``local``, when set, is the node's own stale
    copy that ``snapshot()`` serves instead. ``writes`` counts the writes, ``commands`` keeps their tags.
    """

    def __init__(self) -> None:
        self.config = Config()  # its ports are the ones services may not publish
        self.state = EMPTY_STATE
        self.local: ClusterState | None = None
        self.writes = 0
        self.commands: list[str] = []
        self.command_readers: command_gate.Readers | None = None  # no gate unless a test sets members
        self._apply(C.InitCluster(at=0.0, cluster_id="c0ffee").encode())

    def snapshot(self) -> ClusterState:
        return self.state if self.local is None else self.local

    def require_store(self) -> MemoryManager:
        """The store's part the control ops read besides the state: ``command_readers``."""
        return self

    async def write(self, command: bytes) -> object:
        self.writes += 1
        self.commands.append(C.decode_command(command).TAG)
        return self._apply(command)

    def _apply(self, command: bytes) -> object:
        self.state, result, _ = apply(self.state, command)
        return C.raise_for_result(result)
