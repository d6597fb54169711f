"""Re-seal stored secret/config versions under the current cluster key epoch (leader loop, shell).

After ``cluster rotate-keys`` every version stays sealed under the epoch it was written in. While this
node leads Raft, this loop opens each such version with its epoch's secrets key (this node keeps the
older epochs it held) and writes the same value sealed under the current epoch through Raft
(``reseal_secret``, one command per object, conditional on the record's version), so the replicated
state, and after the next compaction the journal and snapshots, hold only current-epoch ciphertext and
the old epoch keys are no longer needed for any stored value. Version numbers do not change, so no
service rolls. It never logs a value; a version it cannot open (an epoch it does not hold) is skipped
and logged by name.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import partial

import trio

from ..context import MemberContext
from ..errors import AuthError, ConflictError, NotFoundError, ProposalTimeout
from ..raft import commands as C
from ..raft.state import ClusterState
from ..supervisor import supervise
from ..vault import digest_of, open_value, seal_value
from .epoch import write_as_leader
from .leading import until_leading

log = logging.getLogger(__name__)

__all__ = ["RESEAL_CHECK_S", "RESEAL_QUIET_CHECK_S", "reseal_commands", "reseal_wait_s", "serve_reseal"]

RESEAL_CHECK_S = 2.0  # after leading starts or a check that wrote: also re-checked on every committed change
#: after a check that found nothing to re-seal: only a committed change can give it work (this node's keys
#: are fixed for the member's life), so the timer is a safety net (issue 19: one wakeup less every 2 s)
RESEAL_QUIET_CHECK_S = 10.0


def reseal_wait_s(wrote: bool) -> float:
    """How long the loop waits for a committed change before checking anyway: soon after a check that
    had versions to re-seal (a write that did not commit is tried again), long after one that had none."""
    return RESEAL_CHECK_S if wrote else RESEAL_QUIET_CHECK_S


def reseal_commands(
    state: ClusterState, keys: Mapping[int, bytes], now: float
) -> tuple[list[C.ResealSecret], list[str]]:
    """One ``reseal_secret`` command per object with a version sealed under an older epoch than the
    state's, and the ``kind:name vN (epoch E)`` of versions it cannot open with ``keys``."""
    current = keys.get(state.key_epoch)
    commands: list[C.ResealSecret] = []
    missing: list[str] = []
    if current is None:
        return commands, missing
    for key, record in sorted(state.secrets.items()):
        fresh = []
        for entry in record.versions:
            epoch = int(entry.get("key_epoch", 0))
            if epoch == state.key_epoch:
                continue
            number = int(entry["version"])
            old = keys.get(epoch)
            if old is None:
                missing.append(f"{key} v{number} (epoch {epoch})")
                continue
            try:
                value = open_value(old, record.kind, record.object_id, number, bytes(entry["sealed"]))
            except AuthError:
                missing.append(f"{key} v{number} (epoch {epoch})")
                continue
            sealed = seal_value(current, record.kind, record.object_id, number, value)
            fresh.append({"version": number, "sealed": sealed.blob, "digest": digest_of(current, value)})
        if fresh:
            commands.append(
                C.ResealSecret(
                    at=now,
                    kind=record.kind,
                    name=record.name,
                    object_id=record.object_id,
                    record_version=record.version,
                    key_epoch=state.key_epoch,
                    versions=tuple(fresh),
                )
            )
    return commands, missing


async def serve_reseal(
    ctx: MemberContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """While this node leads Raft: keep every stored secret/config version sealed under the current epoch."""
    task_status.started()
    await supervise(ctx.board.health, "reseal", partial(_run_reseal, ctx))


async def _run_reseal(ctx: MemberContext) -> None:
    reported: set[str] = set()
    wrote = True  # the first check comes soon after leading starts
    async with ctx.state_changes() as changes:
        while True:
            if await until_leading(ctx.store, changes):  # a follower does not wake for it
                wrote = True
            with trio.move_on_after(reseal_wait_s(wrote)):
                await changes.receive()
            if not ctx.store.status().is_leader:
                continue
            state = ctx.store.snapshot()
            commands, missing = reseal_commands(state, ctx.local.secrets_keys, ctx.clock.now())
            for what in sorted(set(missing) - reported):
                log.warning("cannot re-seal %s: this node does not hold that key epoch", what)
            reported.update(missing)
            wrote = bool(commands)
            for command in commands:
                try:
                    count = await write_as_leader(ctx, command)
                    log.info("re-sealed %d stored version(s) under key epoch %d", count, state.key_epoch)
                except (ConflictError, NotFoundError, ProposalTimeout) as exc:
                    log.info("re-seal not committed (%s): again on the next change", exc.message)
