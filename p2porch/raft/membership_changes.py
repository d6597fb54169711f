"""Voter changes of one store: one add/remove at a time, proposed through pysyncobj (shell).

:class:`VoterChanges` owns this store's membership proposals: it proposes a change, retries the
refusals after which the change is known not to be in the log, and decides when it is done. What to do
next from a view of the configuration is ``voter_change`` (pure). It never proposes a second change of
its own while one may be uncommitted, and never touches the replicated state.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

import trio
from pysyncobj import FAIL_REASON

from ..errors import NotLeaderError, ProposalTimeout, RaftError
from .proposals import FAIL_NAMES, RETRYABLE
from .status import RaftStatus
from .voter_change import next_step

__all__ = ["Kind", "VoterChanges"]

Kind = Literal["add", "remove"]
Method = Callable[..., None]  # pysyncobj's addNodeToCluster / removeNodeFromCluster(addr, callback=)
CallRaft = Callable[[Callable[[Callable[[Any, int], None]], None], float], Awaitable[int]]


class VoterChanges:
    """Proposes voter changes for one store (trio thread only); knows Raft only through its callables."""

    def __init__(self, status: Callable[[], RaftStatus], call_raft: CallRaft, add: Method, remove: Method):
        self._status = status
        self._call_raft = call_raft
        self._methods: dict[Kind, Method] = {"add": add, "remove": remove}

    async def change(self, kind: Kind, addr: str, timeout_s: float) -> None:
        """Propose until the configuration is as asked (see ``voter_change``), or fail saying why."""
        method = self._methods[kind]
        deadline, last = trio.current_time() + timeout_s, "no answer"
        while True:
            status = self._status()
            step = next_step(kind, addr, status.voters, status.leader)
            if step == "done":
                return
            if step == "leader":
                raise NotLeaderError(
                    f"{addr} leads the Raft group: it cannot be removed before leadership moves", leader=addr
                )
            if trio.current_time() >= deadline:
                raise ProposalTimeout(
                    f"{kind} voter {addr}: not done within {timeout_s:.3g} s ({last}); it may still happen"
                )
            try:
                err = await self._call_raft(
                    lambda cb: method(addr, callback=cb), deadline - trio.current_time()
                )
            except ProposalTimeout:
                continue  # the next round looks at the configuration again: the change may have happened
            if err == FAIL_REASON.SUCCESS:
                return
            last = FAIL_NAMES.get(err, str(err))
            if err not in RETRYABLE:
                raise RaftError(f"membership change for {addr} failed: {last}")
            await trio.sleep(0.1)
