"""Voter changes of one store: one add/remove at a time, done only once committed (shell).

:class:`VoterChanges` owns this store's membership proposals: it proposes a change through pysyncobj,
retries the refusals after which the change is known not to be in the log, and decides when it is
done. A change pysyncobj answered SUCCESS for is committed. One whose answer did not come (a leader
without a quorum, a lost forward) may be appended and uncommitted while the configuration already shows
it (pysyncobj applies a change when it is appended): it is done only once a barrier (a ``Noop`` entry)
committed by the same leader in the same term, ``voter_change.settled`` judges. Until its outcome is
known the change is this store's unsettled one, and no other change of this store starts (pysyncobj
0.3.17 would append a second change while the first is uncommitted: two changes in flight can give two
disjoint majorities); a caller asking while a change runs waits for it (and confirms it, if it is the
same change) instead of being refused. It must never report a change done from a configuration alone,
nor propose a second change while one of its own may be uncommitted; it never touches the replicated
state.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import trio
from pysyncobj import FAIL_REASON

from ..errors import NotLeaderError, ProposalTimeout, RaftError
from .proposals import FAIL_NAMES, RETRYABLE
from .status import RaftStatus
from .voter_change import Verdict, View, next_step, settled

__all__ = ["Kind", "VoterChanges"]

log = logging.getLogger(__name__)

Kind = Literal["add", "remove"]
Method = Callable[..., None]  # pysyncobj's addNodeToCluster / removeNodeFromCluster(addr, callback=)
CallRaft = Callable[[Callable[[Callable[[Any, int], None]], None], float], Awaitable[int]]
Barrier = Callable[[float], Awaitable[object]]  # commit a Noop entry within the timeout, else ProposalTimeout
RETRY_S = 0.1  # between attempts after a refusal or an unknown outcome


def _view(status: RaftStatus) -> View:
    return View(status.leader, status.term, frozenset(status.voters))


class VoterChanges:
    """Proposes voter changes for one store (trio thread only); knows Raft only through its callables."""

    def __init__(
        self,
        status: Callable[[], RaftStatus],
        call_raft: CallRaft,
        barrier: Barrier,
        add: Method,
        remove: Method,
    ) -> None:
        self._status = status
        self._call_raft = call_raft
        self._barrier = barrier
        self._methods: dict[Kind, Method] = {"add": add, "remove": remove}
        self._running: tuple[Kind, str] | None = None  # the change a caller is carrying out now
        self._running_ended = trio.Event()  # set when the running change's caller returns or raises
        self.unsettled: tuple[Kind, str] | None = None  # proposed by this store, outcome not known yet

    async def change(self, kind: Kind, addr: str, timeout_s: float) -> None:
        """Carry out one change: return once it is committed, raise ProposalTimeout when its outcome is
        not known in time (retrying the same change is safe: a committed one is done), RaftError when
        another change of this store is still running at the timeout or may be uncommitted. A change
        already running is waited for (within ``timeout_s``) before this one starts: the same change
        (``node rm`` of a leader beside the autopilot removing that demoted voter) is then confirmed by
        this caller's own round, both callers learning the one outcome; a different one (``node rm``
        of a voter while the autopilot adds a joiner) goes next, one change at a time as before. A waiter
        gives up only at its deadline (a third caller of the same change waits while the second has its
        turn); one whose turn comes with less than ``RETRY_S`` left raises RaftError, proposing nothing."""
        deadline = trio.current_time() + timeout_s
        waited = self._running is not None
        while self._running is not None:  # another caller's turn: a new one may start as it ends
            with trio.move_on_at(deadline):
                await self._running_ended.wait()
            if self._running is None or trio.current_time() < deadline:
                continue
            running_kind, running_addr = self._running
            if self._running == (kind, addr):
                raise ProposalTimeout(
                    f"{kind} voter {addr}: the same change, started by another caller on this node, "
                    f"did not end within {timeout_s:.3g} s; it may still happen: retry the same change"
                )
            raise RaftError(
                f"{kind} voter {addr}: refused, this node's {running_kind} voter {running_addr} was "
                f"still in progress after {timeout_s:.3g} s (one membership change at a time)"
            )
        if waited and deadline - trio.current_time() < RETRY_S:  # no time left to propose and confirm
            raise RaftError(
                f"{kind} voter {addr}: not proposed, this node's membership changes before it took all "
                f"but {max(0.0, deadline - trio.current_time()):.2g} s of {timeout_s:.3g} s; "
                "retry the same change"
            )
        self._running, self._running_ended = (kind, addr), trio.Event()
        try:
            await self._settle_other(kind, addr, deadline)
            await self._carry_out(kind, addr, deadline, timeout_s)
        finally:
            self._running = None
            self._running_ended.set()

    async def _settle_other(self, kind: Kind, addr: str, deadline: float) -> None:
        """Refuse (RaftError) while another change of this store may be uncommitted."""
        if self.unsettled is None or self.unsettled == (kind, addr):
            return
        other_kind, other_addr = self.unsettled
        if await self._confirm(other_kind, other_addr, deadline) == "unknown":
            raise RaftError(
                f"{kind} voter {addr}: refused, this node's {other_kind} voter {other_addr} may still be "
                "uncommitted (one membership change at a time); retry that change first"
            )
        self.unsettled = None

    async def _carry_out(self, kind: Kind, addr: str, deadline: float, timeout_s: float) -> None:
        method, last = self._methods[kind], "no answer"
        while True:
            status = self._status()
            step = next_step(kind, addr, status.voters, status.leader)
            if step == "leader":
                raise NotLeaderError(
                    f"{addr} leads the Raft group: it cannot be removed before leadership moves", leader=addr
                )
            if step == "shown":
                verdict = await self._confirm(kind, addr, deadline, _view(status))
                if verdict == "committed":
                    self.unsettled = None
                    return
                last = f"shown in the configuration, commit {verdict}"
            if trio.current_time() >= deadline:
                raise ProposalTimeout(
                    f"{kind} voter {addr}: not known committed within {timeout_s:.3g} s ({last}); "
                    "it may still happen: retry the same change"
                )
            if step == "shown":
                await trio.sleep(RETRY_S)
                continue
            unsettled_before, self.unsettled = self.unsettled, (kind, addr)
            try:
                err = await self._call_raft(
                    lambda cb: method(addr, callback=cb), deadline - trio.current_time()
                )
            except ProposalTimeout:
                last = "no answer"
                continue  # the next round looks at the configuration again: the change may be appended
            if err == FAIL_REASON.SUCCESS:  # pysyncobj answers SUCCESS once the entry is committed
                self.unsettled = None
                return
            last = FAIL_NAMES.get(err, str(err))
            if err in RETRYABLE:  # known not in the log: only an earlier attempt may be in flight
                self.unsettled = unsettled_before
            await trio.sleep(RETRY_S)  # else (a leader change after forwarding) the outcome is unknown

    async def _confirm(self, kind: Kind, addr: str, deadline: float, before: View | None = None) -> Verdict:
        """Commit a barrier and judge from the views around it whether the change is committed."""
        if before is None:
            before = _view(self._status())
        if before.leader is None:
            return "unknown"
        try:
            await self._barrier(max(deadline - trio.current_time(), 0.0))
        except ProposalTimeout:
            return settled(kind, addr, before, None)
        verdict = settled(kind, addr, before, _view(self._status()))
        log.info("%s voter %s: %s (barrier in term %d)", kind, addr, verdict, before.term)
        return verdict
