"""Linearizable reads of cluster state through any node: the read barrier (shell; core: ``read_rounds``).

A write acknowledged through node A is applied on node B a little later (B's next append, its fsync,
its Raft thread's apply): a read through B in between answered B's older copy. Every API read of
cluster state now first runs a barrier round, or shares the next one with the reads that arrived while
one ran: one ``Noop`` entry proposed through this node's store, forwarded to the leader when this node
does not lead. Its answer arrives only once the entry is committed (a majority of voters acknowledged
the leader's append, which confirms that leader still leads) and applied on this node, hence after
every write committed before the round began: the read then answers from ``store.snapshot()``. That is
Raft's log read (thesis 6.4): pysyncobj 0.3.17 has no ReadIndex message (no read path at all: a
follower learns the leader's commit index only from appends, which the quiet heartbeats send rarely),
and the entry costs one round trip per batch of reads, a few dozen bytes of journal, and nothing while
no one reads. The sole voter answers at once (no other node can lead). A read whose round failed tries
the next while it has time; one not answered within ``bound_s`` (5 s, or the store's longest election
and two heartbeats when longer: no leader, no quorum, this node cut off) is refused with
:class:`~p2porch.errors.StaleReadRefused` (HTTP 503) naming why, never a stale answer.

A request with ``stale=true`` (the web UI's polling; docs/raft.md "Reads") is answered from this node's
copy at once. A write through a node that does not lead waits for a round the same way before its handler
looks the record up (``linearizable_writes``; ``read_rounds.plan_write``): a client that created a
service through one node and updates it through another at once got "no such service", or had its
``expected_version`` compared with an older copy. Through the leader (its role read live) it waits only
until the state served holds the leader's commit index of the request's arrival (at least its election
no-op's), or until its role changes (deposed before that no-op committed): then the request is planned
again, within the same bound. Owns the rounds of this daemon (one store at a time); never changes a
request's answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import trio

from ..api.server import Endpoint, Handler
from ..errors import ConfigError, ProposalTimeout, RaftError, StaleReadRefused
from ..raft import commands as C
from .read_rounds import ReadPlan, ReadRounds, plan_read, plan_write, refusal

if TYPE_CHECKING:
    from ..raft.store import RaftStore

__all__ = [
    "LOCAL_READS",
    "MEMBERSHIP_WRITES",
    "READS_AS_POST",
    "READ_BARRIER_TIMEOUT_S",
    "ReadBarrier",
    "linearizable_reads",
    "linearizable_writes",
]

READ_BARRIER_TIMEOUT_S = 5.0  # a read waits at least this long for its round (a LAN election fits in it)
RETRY_PAUSE_S = 0.05  # a round whose entry was refused at once (no leader yet) tries again after this
#: GET routes of node-local facts, not cluster state: never behind the barrier
LOCAL_READS = frozenset({"/network", "/cluster/ca"})
#: write routes that change this node's membership: they must work without a leader (init, recover)
MEMBERSHIP_WRITES = frozenset({"/cluster/init", "/cluster/join", "/cluster/leave", "/cluster/recover"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: reads sent as POST (a body too large for a query): wrapped as reads (``stale`` honoured), not as writes
READS_AS_POST = frozenset({("POST", "/stacks/{stack}/plan")})
TRUE = ("1", "true", "yes")


class ReadBarrier:
    """The barrier rounds of one daemon; ``store_of()`` is the current store (None: in no cluster)."""

    def __init__(
        self, store_of: Callable[[], RaftStore | None], timeout_s: float = READ_BARRIER_TIMEOUT_S
    ) -> None:
        self.store_of = store_of
        self.timeout_s = timeout_s
        self.rounds = ReadRounds()
        self._round_ended = trio.Event()

    async def wait(self, stale_ok: bool = False, *, write: bool = False) -> None:
        """Return once this node's snapshot holds every write committed before the call; raise
        StaleReadRefused when that is not known within ``bound_s``. A ``write`` on the leader waits
        only until the state it serves holds its commit index (``plan_write``), no round."""
        started = time.monotonic()
        while True:
            store = self.store_of()
            if store is None:
                return
            role = store.role_event()  # taken before the role is read: no change after it is missed
            # the role read live: a cached status may still say "leader" after this node stepped down
            leader_commit = store.leader_commit_now()
            delivered = store.applied.delivered
            if write:
                plan = plan_write(member=True, leader_commit=leader_commit, delivered=delivered)
            else:
                status = store.status()
                plan = plan_read(
                    member=True,
                    stale_ok=stale_ok,
                    is_leader=status.is_leader,
                    voters=len(status.voters),
                    leader_commit=leader_commit,
                    delivered=delivered,
                )
            if plan is ReadPlan.LOCAL:
                return
            if plan is not ReadPlan.CATCH_UP or leader_commit is None:
                break
            if await self._catch_up(store, leader_commit, write, role, started):
                return
            # the role changed while it waited (deposed before its election no-op committed): plan again
        deadline = started + self.bound_s(store)
        needed = self.rounds.needed()
        ok, why = False, "no barrier round finished in time"
        with trio.move_on_after(deadline - started):
            while not ok:
                outcome = self.rounds.outcome(needed)
                if outcome is None:
                    if self.rounds.may_start(needed):
                        await self._run_round(store, deadline)
                    else:
                        await self._round_ended.wait()
                    continue
                ok, why = outcome
                if not ok:  # its round failed (maybe at an earlier reader's deadline): while this
                    await trio.sleep(RETRY_PAUSE_S)  # reader has time left, it needs the next one
                    now = self.store_of()  # through the store this node has now (it restarted)
                    if now is None:
                        return  # this node left its cluster: nothing to wait for (as at the start)
                    store = now
                    needed = self.rounds.needed()
        if not ok:
            raise StaleReadRefused(
                refusal(why, store.status().leader, time.monotonic() - started, write=write),
                field="consistency",
            )

    async def _catch_up(
        self, store: RaftStore, commit: int, write: bool, role: trio.Event, started: float
    ) -> bool:
        """The leader's write (a sole voter's read): wait until the state served holds ``commit`` (its
        apply was cut short, or its election no-op is not committed yet); True then. False when ``role``
        (the store's role event, taken before the role was read) fired first: the caller plans the request
        again (a round through the new leader), within the same bound."""
        reached = False

        async def reach(cancel: trio.CancelScope) -> None:
            nonlocal reached
            left = started + self.bound_s(store) - time.monotonic()
            reached = await store.applied.wait_for(commit, max(left, 0.0))
            cancel.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reach, nursery.cancel_scope)
            await role.wait()
            nursery.cancel_scope.cancel()
        if reached:
            return True
        if role.is_set():
            return False
        status = store.status()
        if status.commit_index < commit:  # the commit index short of it: the index is the election no-op's
            why = f"this leader's election entry (index {commit}) was not committed: no majority answered"
        else:
            why = f"this leader's state did not reach its commit index {commit}"
        raise StaleReadRefused(
            refusal(why, status.leader, time.monotonic() - started, write=write), field="consistency"
        )

    def bound_s(self, store: RaftStore) -> float:
        """How long a read waits for its round: ``timeout_s``, or longer where this store's election
        takes longer (far voters, ``[raft] rtt_ms``): its longest election timeout and two heartbeats."""
        config = getattr(store, "config", None)
        if config is None:
            return self.timeout_s
        return max(self.timeout_s, config.election_timeout_max_s + 2 * config.heartbeat_period_s)

    async def _run_round(self, store: RaftStore, deadline: float) -> None:
        """One round (shielded: the readers sharing it do not depend on its starter staying)."""
        round_no = self.rounds.start()
        error: str | None = "the round was not run"
        try:
            with trio.CancelScope(shield=True):
                error = await self._commit_barrier(store, deadline)
        finally:
            self.rounds.finish(round_no, error)
            event, self._round_ended = self._round_ended, trio.Event()
            event.set()

    async def _commit_barrier(self, store: RaftStore, deadline: float) -> str | None:
        """Commit one Noop through the leader and see it applied here; None, or why it was not."""
        why = "no answer from the leader"
        while (left := deadline - time.monotonic()) > 0:
            try:
                await store.write(C.Noop(at=time.time(), tag="read barrier").encode(), timeout_s=left)
                return None
            except ProposalTimeout:  # no leader, no quorum, or the leader changed under it
                why = "the barrier entry was not committed and applied here in time"
            except RaftError as exc:  # refused at once: no leader yet, the store closed
                why = exc.message
            if store is not self.store_of():
                return f"this node's store restarted ({why})"
            await trio.sleep(min(RETRY_PAUSE_S, max(deadline - time.monotonic(), 0.0)))
        return why


def linearizable_reads(barrier: ReadBarrier, endpoints: list[Endpoint]) -> list[Endpoint]:
    """``endpoints`` whose GET routes of cluster state (not streams, not ``LOCAL_READS``) and
    ``READS_AS_POST`` first wait for the barrier; ``stale=true`` in the query skips it."""
    return [
        replace(ep, handler=_after_barrier(barrier, ep.handler))
        if (ep.method == "GET" and not ep.streaming and ep.path not in LOCAL_READS)
        or (ep.method, ep.path) in READS_AS_POST
        else ep
        for ep in endpoints
    ]


def linearizable_writes(barrier: ReadBarrier, endpoints: list[Endpoint]) -> list[Endpoint]:
    """``endpoints`` whose write routes (POST, PUT, PATCH, DELETE; not ``MEMBERSHIP_WRITES``) first wait
    for the barrier when this node does not lead (``READS_AS_POST`` are reads): their handlers read this
    node's copy before proposing."""
    return [
        replace(ep, handler=_write_after_barrier(barrier, ep.handler))
        if ep.method in WRITE_METHODS
        and not ep.streaming
        and ep.path not in MEMBERSHIP_WRITES
        and (ep.method, ep.path) not in READS_AS_POST
        else ep
        for ep in endpoints
    ]


def _write_after_barrier(barrier: ReadBarrier, handler: Handler) -> Handler:
    async def handle(body: dict[str, Any], params: dict[str, str]) -> Any:
        await barrier.wait(write=True)
        return await handler(body, params)

    return handle


def _after_barrier(barrier: ReadBarrier, handler: Handler) -> Handler:
    async def handle(body: dict[str, Any], params: dict[str, str]) -> Any:
        stale = body.get("stale")
        if stale is not None:
            text = str(stale).lower()
            if text not in (*TRUE, "0", "false", "no"):
                raise ConfigError(f"stale: {stale!r} is not true or false", field="stale")
            body = {k: v for k, v in body.items() if k != "stale"}
            await barrier.wait(stale_ok=text in TRUE)
        else:
            await barrier.wait()
        return await handler(body, params)

    return handle
