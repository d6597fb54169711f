"""A store's proposals and the batches that carry them into the Raft log (trio side of ``store.py``).

:class:`Proposal`: one encoded command and its outcome. :class:`Batch`: the proposals submitted as one Raft
entry. :class:`InFlight`: how many batches wait for their answer, bounded by the store's
``max_inflight_batches``. A batch holds its slot until it is answered or until every proposal in it has
timed out: an answer that never comes (a forwarded proposal whose connection to the leader dropped,
issue 19, ``forwarded.py``) then costs its callers their timeout, never the store's later proposals
(before, two such batches stopped a store from proposing anything again). Nothing here talks to
pysyncobj; :func:`settle` maps its answer to the proposals' outcomes, the store submits again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio
from pysyncobj import FAIL_REASON

from ..errors import ProposalTimeout
from ..wire import MAX_FRAME_BYTES
from . import codec as C

# Failures after which the command is known NOT to be in the log: safe to resubmit.
RETRYABLE = {
    FAIL_REASON.QUEUE_FULL,
    FAIL_REASON.MISSING_LEADER,
    FAIL_REASON.DISCARDED,
    FAIL_REASON.NOT_LEADER,
    FAIL_REASON.REQUEST_DENIED,
}
FAIL_NAMES = {v: k for k, v in vars(FAIL_REASON).items() if k.isupper()}
#: a batch entry is one msgpack array of bin items (``fsm.encode_batch``): a header of at most 5 bytes,
#: and at most 5 before each command; the whole entry is at most MAX_FRAME_BYTES (``fsm.apply_batch``)
FRAMING_BYTES = 5
MAX_COMMAND_BYTES = MAX_FRAME_BYTES - 2 * FRAMING_BYTES  # the largest command, alone in its entry


@dataclass(eq=False)
class Proposal:
    command: bytes
    done: trio.Event = field(default_factory=trio.Event)
    result: dict[str, Any] | None = None
    error: Exception | None = None
    abandoned: bool = False  # its caller timed out
    batch: Batch | None = None  # the batch last submitted with it
    group: object | None = None  # shared by the proposals of one propose_together call: one entry


def _entry_bytes(commands: list[bytes]) -> int:
    return FRAMING_BYTES + sum(len(command) + FRAMING_BYTES for command in commands)


def queue(pending: list[Proposal], commands: list[bytes]) -> list[Proposal]:
    """Proposals for ``commands`` (one caller's, to go in one Raft entry: a group :func:`next_batch`
    never splits), appended to ``pending``. Commands that together are larger than one entry holds (one
    larger than :data:`MAX_COMMAND_BYTES` alone) are answered at once with a WireError result and never
    queued (before, one was committed and then refused by every replica, and the whole batch it went in
    with; and a group could be split over entries, then reordered by a retried batch)."""
    group = object() if len(commands) > 1 else None
    proposals = [Proposal(command, group=group) for command in commands]
    size = _entry_bytes(commands)
    if size <= MAX_FRAME_BYTES:
        pending.extend(proposals)
        return proposals
    total = sum(len(command) for command in commands)
    what = (
        f"command of {total} bytes is"
        if len(commands) == 1
        else f"{len(commands)} commands of {total} bytes are"
    )
    message = f"{what} larger than one Raft entry holds ({MAX_COMMAND_BYTES} bytes): not written"
    for proposal in proposals:
        proposal.result = C.error("WireError", message)
        proposal.done.set()
    return proposals


def next_batch(pending: list[Proposal], max_commands: int) -> list[Proposal]:
    """Take the next batch off the head of ``pending``: up to ``max_commands`` proposals not abandoned,
    as many as keep the batch's entry within MAX_FRAME_BYTES (at least one group: each fits alone).
    A group (one ``propose_together`` call) goes whole or waits for the next batch; one larger than
    ``max_commands`` goes alone. Before, a batch was bounded by count only, and two large commands
    proposed together (a 7 MiB spec's update beside another's create) made an entry every replica
    refused, both commands with it."""
    batch: list[Proposal] = []
    size = FRAMING_BYTES
    taken = 0
    while taken < len(pending):
        end = taken + 1
        group = pending[taken].group
        while group is not None and end < len(pending) and pending[end].group is group:
            end += 1
        unit = [p for p in pending[taken:end] if not p.abandoned]
        cost = _entry_bytes([p.command for p in unit]) - FRAMING_BYTES
        if batch and (len(batch) + len(unit) > max_commands or size + cost > MAX_FRAME_BYTES):
            break
        batch.extend(unit)
        size += cost
        taken = end
    del pending[:taken]
    return batch


@dataclass(eq=False)
class Batch:
    """Proposals submitted in one Raft entry."""

    proposals: list[Proposal]
    released: bool = False  # its slot went back (answered, or every proposal timed out)


class InFlight:
    """The batches submitted and not yet answered nor given up (trio thread only)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    def has_room(self) -> bool:
        return self.count < self.limit

    def take(self, proposals: list[Proposal]) -> Batch:
        """A slot for ``proposals`` about to be submitted as one entry."""
        self.count += 1
        batch = Batch(proposals)
        for proposal in proposals:
            proposal.batch = batch
        return batch

    def release(self, batch: Batch) -> bool:
        """Give ``batch``'s slot back; False when it already was (its answer came after all its callers
        timed out: nobody waits for it)."""
        if batch.released:
            return False
        batch.released = True
        self.count -= 1
        return True

    def given_up(self, proposal: Proposal) -> bool:
        """``proposal`` timed out: its batch's slot goes back once every proposal of it has (True then)."""
        batch = proposal.batch
        if batch is None or not all(p.abandoned for p in batch.proposals):
            return False
        return self.release(batch)


def settle(batch: Batch, results: Any, err: int) -> list[Proposal]:
    """Hand each proposal of an answered ``batch`` its result or error; returns the proposals to submit
    again (a failure after which the command is known not to be in the log, callers still waiting)."""
    proposals = batch.proposals
    if err == FAIL_REASON.SUCCESS and isinstance(results, list) and len(results) == len(proposals):
        for proposal, result in zip(proposals, results, strict=True):
            proposal.result = result
            proposal.done.set()
        return []
    if err in RETRYABLE:
        return [p for p in proposals if not p.abandoned]
    reason = FAIL_NAMES.get(err, str(err))
    for proposal in proposals:
        proposal.error = ProposalTimeout(f"outcome unknown ({reason}); the write may have committed")
        proposal.done.set()
    return []


async def outcomes(
    proposals: list[Proposal], timeout_s: float, abandon: Callable[[Proposal], None]
) -> list[dict[str, Any]]:
    """Wait up to ``timeout_s`` for every proposal's outcome; their FSM result maps, in order. On the
    timeout ``abandon`` each one still waiting and raise ProposalTimeout (any may still commit); else
    raise the first proposal's error (not leader, the store closed, ...)."""
    with trio.move_on_after(timeout_s):
        for proposal in proposals:
            await proposal.done.wait()
    late = [p for p in proposals if not p.done.is_set()]
    for proposal in late:
        abandon(proposal)
    if late:
        raise ProposalTimeout(f"no commit within {timeout_s:.3g} s; the write may still commit later")
    results = []
    for proposal in proposals:
        if proposal.error is not None:
            raise proposal.error
        assert proposal.result is not None
        results.append(proposal.result)
    return results
