"""One member run: the Raft store, the join port, the member services and the voter-role watcher (shell).

:class:`MemberRuntime` starts them (the store and the join port first, then the member services all at
once) each time this node becomes a member (init, join, a
restart, a role switch or a recovery) and stops them before it leaves. Each member service is
``fn(ctx, task_status=...)`` with a fresh :class:`~p2porch.context.MemberContext`; the daemon binds
each one's config section beforehand. The runtime never decides membership: its owner
(:class:`~p2porch.membership.manager.ClusterManager`) says when to start, stop or switch.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import trio

from ..clock import Clock
from ..config import Config
from ..context import LocalBoard, LocalNode, MemberContext
from ..gossip.keyring import KEY_SWITCH_GRACE_S
from ..member.command_reads import board_readers
from ..memtrim import trim_heap_after
from ..metrics import Metrics
from ..raft.store import RaftStore, StoreConfig, open_raft_store
from ..raft.timing import timing_for_rtt
from . import voter_role
from .join_service import JoinService
from .keys import ClusterKeys
from .localstate import LocalClusterState
from .recovery import GenerationConflict

log = logging.getLogger(__name__)

__all__ = [
    "MemberRuntime",
    "MemberService",
    "StorePreparation",
    "local_node",
    "secrets_key",
    "secrets_keys",
    "start_member_services",
]

MemberService = Callable[..., Awaitable[None]]
MEMBER_TRIM_AFTER_S = 20.0  # after the member services start: the join or init and its first rounds are over
JOIN_HOLD_ELECTIONS_S = 60.0  # a joined voter that no leader added by then campaigns after all
StorePreparation = Callable[[RaftStore], Awaitable[None]]


def local_node(local: LocalClusterState, key_switch_recent: bool = False) -> LocalNode:
    """This node's identity as member services see it (right after a key switch, gossip still accepts
    the previous epoch's key: peers that have not switched yet seal with it)."""
    previous = local.keys_of_epoch(local.key_epoch - 1) if key_switch_recent else None
    return LocalNode(
        node_id=local.node_id,
        node_name=local.node_name,
        advertise_addr=local.advertise_addr,
        listen_addr=local.bind_addr,
        gossip_port=local.gossip_port,
        raft_addr=local.raft_addr,
        role=local.role,
        generation=local.generation,
        gossip_key=local.keys.gossip_key,
        previous_gossip_key=previous.gossip_key if previous is not None else None,
        secrets_keys=secrets_keys(local),
        key_epoch=local.key_epoch,
    )


def secrets_key(keys: ClusterKeys) -> bytes:
    """The ONE place the secrets/configs master key comes from: derived from one epoch's cluster key.

    Re-point this when the cluster key abstraction changes; everything else takes the 32 bytes."""
    return keys.derive("secrets")


def secrets_keys(local: LocalClusterState) -> dict[int, bytes]:
    """The secrets master key of every cluster key epoch this node holds (current and kept older ones)."""
    out = {local.key_epoch: secrets_key(local.keys)}
    for epoch, _text in local.previous_keys:
        keys = local.keys_of_epoch(epoch)
        if keys is not None:
            out[epoch] = secrets_key(keys)
    return out


async def start_member_services(
    nursery: trio.Nursery, services: list[tuple[str, MemberService]], ctx: MemberContext
) -> None:
    """Start every member service in ``nursery``, all at once; returns once each has started (called
    its ``task_status.started()``). A service that fails before it started fails this, the other starts
    cancelled, as before. At once, not one after another: every service says it started first thing and
    waits on the board or the store for what it needs (never on another's start), while each start
    waited a turn or two of the trio loop, which on a joiner also runs the started services' first work:
    eleven starts in a row were 0.25-0.4 s of a join's 0.7 s with 8 joins at once (docs/performance.md,
    "The seventeenth round")."""

    async def start(name: str, service: MemberService) -> None:
        await nursery.start(service, ctx)
        log.info("started %s", name)

    async with trio.open_nursery() as starting:
        for name, service in services:
            starting.start_soon(start, name, service, name=f"start {name}")


def no_store_reason(member: bool) -> str:
    """Why a request finds no store: this node is in no cluster, or (``member``) its store restarts."""
    if member:
        return "this node's cluster store is restarting (a Raft role or key change); try again in a moment"
    return "this node is not part of a cluster (run `p2porch init` or `p2porch join`)"


class MemberRuntime:
    """Runs (and stops) this node's member services around one Raft store; holds their board."""

    def __init__(
        self,
        config: Config,
        raft_dir: Path,
        join_service: JoinService,
        member_services: list[tuple[str, MemberService]],
        clock: Clock,
        *,
        save_voters: Callable[[LocalClusterState], None],
        switch_role: Callable[[LocalClusterState, LocalClusterState], None],
        removed: Callable[[LocalClusterState, str], None] = lambda local, why: None,
        metrics: Metrics | None = None,
    ) -> None:
        self.metrics = metrics if metrics is not None else Metrics()
        self.config = config
        self.raft_dir = raft_dir
        self.join_service = join_service
        self.member_services = member_services
        self.clock = clock
        self._save_voters = save_voters
        self._switch_role = switch_role
        self._removed = removed
        self.store: RaftStore | None = None
        self.generation_conflict: GenerationConflict | None = None  # a newer generation not followed
        self.key_switched_at: float | None = None  # monotonic time of this node's last key switch
        self.board = LocalBoard()  # replaced at every start; read by the API and by leave
        self._nursery: trio.Nursery | None = None
        self._scope: trio.CancelScope | None = None
        self._done: trio.Event | None = None
        self._running = trio.Event()  # set once start() returned; a fresh one when that run ends

    @property
    def join_port(self) -> int:
        """The join port peers listen on (this node's setting; 0 = closed here, peers use the default)."""
        return self.config.join.port or 7948

    def attach(self, nursery: trio.Nursery) -> None:
        """The nursery member runs live in (the manager's, for the daemon's lifetime)."""
        self._nursery = nursery

    async def start(
        self,
        local: LocalClusterState,
        prepare: StorePreparation | None = None,
        *,
        joining: bool = False,
        greeting: bool = False,
    ) -> None:
        """Open the store as ``local`` says and start everything; returns once all services started.

        ``joining``: this node is not in the Raft configuration yet (it just joined a running cluster, or
        is a promoted replica): a voter then waits for the leader to add it before it ever campaigns, see
        ``StoreConfig.join_hold_elections_s``. ``greeting``: the manager greets the member that admitted
        it (a real join only), and gossip's first seeding waits for that greeting (member/gossip.py)."""
        assert self._nursery is not None, "attach() first"
        scope = trio.CancelScope()
        done = trio.Event()
        self._scope, self._done = scope, done

        async def member(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            try:
                with scope:
                    await self._run(local, task_status, prepare, joining, greeting)
            finally:
                self.store = None
                if self._running.is_set():
                    self._running = trio.Event()
                done.set()

        await self._nursery.start(member)
        self._running.set()

    async def wait_running(self, timeout_s: float) -> None:
        """Wait, at most ``timeout_s``, until a store runs again (returns at once while one runs): a role
        or key switch stops the store and starts it again, and what asks meanwhile waits for it."""
        with trio.move_on_after(timeout_s):
            await self._running.wait()

    async def stop(self) -> None:
        if self._scope is not None and self._done is not None:
            self._scope.cancel()
            await self._done.wait()
        self._scope = self._done = None

    async def _run(
        self,
        local: LocalClusterState,
        task_status: trio.TaskStatus[None],
        prepare: StorePreparation | None = None,
        joining: bool = False,
        greeting: bool = False,
    ) -> None:
        board = self.board = LocalBoard()
        # only a join greets (the manager's _greet sets it): a promoted replica's gossip, which nothing
        # greets, would wait GREETING_WAIT_S before its first seeding
        if greeting:  # the manager greets the admitting member, gossip waits for it (member/gossip.py)
            board.greeting = trio.Event()
        timing = timing_for_rtt(self.config.raft.rtt_ms / 1000.0)  # the defaults up to ~50 ms
        store_config = StoreConfig(
            self_addr=local.raft_addr if local.role == "voter" else None,
            bind_addr=f"{local.bind_addr}:{self.config.raft.port}",
            voters=local.voters,
            data_dir=self.raft_dir,
            password=local.keys.raft_password(local.generation),
            tick_period_s=self.config.raft.tick_s,
            heartbeat_period_s=timing.heartbeat_s,
            idle_heartbeat_period_s=timing.idle_heartbeat_s,
            election_timeout_min_s=timing.election_min_s,
            election_timeout_max_s=timing.election_max_s,
            join_hold_elections_s=JOIN_HOLD_ELECTIONS_S if joining and local.role == "voter" else 0.0,
        )
        async with open_raft_store(store_config) as store, trio.open_nursery() as nursery:
            self.store = store
            store.commit_observer = self.metrics.raft_commit_seconds.observe
            # no write uses a command version some member does not read (raft/command_gate.py)
            store.command_readers = board_readers(store.snapshot, board)
            if prepare is not None:  # before any member service sees the store
                await prepare(store)
            if self.config.join.port:
                await nursery.start(self.join_service.serve, local.bind_addr, self.config.join.port)
            ctx = MemberContext(
                store=store,
                voter_control=store,
                local=local_node(local, self._key_switch_recent()),
                board=board,
                clock=self.clock,
                commit_timeout_s=self.config.raft.commit_timeout_s,
                ask_member=partial(self._ask_member, local),
                metrics=self.metrics,
            )
            await start_member_services(nursery, self.member_services, ctx)
            watch = voter_role.RoleWatch(
                store=store,
                board=board,
                join_port=self.join_port,
                clock=self.clock,
                save_voters=self._save_voters,
                switch_role=self._switch_role,
                report_conflict=self._report_conflict,
                removed=self._removed,
            )
            nursery.start_soon(voter_role.watch_role, watch, local)
            # the join, the catch-up and (leader) admitting the others freed heap after the daemon's own
            # first trim: trim once more when they are over
            nursery.start_soon(trim_heap_after, MEMBER_TRIM_AFTER_S, "the member started")
            task_status.started()
            await trio.sleep_forever()

    def _key_switch_recent(self) -> bool:
        switched = self.key_switched_at
        return switched is not None and self.clock.monotonic() - switched < KEY_SWITCH_GRACE_S

    def _report_conflict(self, conflict: GenerationConflict | None) -> None:
        self.generation_conflict = conflict

    async def _ask_member(self, local: LocalClusterState, host: str) -> dict[str, Any] | None:
        return await voter_role.ask_node(local, host, self.join_port)
