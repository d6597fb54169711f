"""Member service: SWIM gossip with the other members (who is alive, fast), encrypted with the cluster key
(shell).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import partial
from typing import Any, Protocol

import trio

from ..config import GossipConfig as GossipSection
from ..context import MemberContext
from ..gossip.config import GossipConfig
from ..gossip.keyring import KEY_SWITCH_GRACE_S, Keyring
from ..gossip.messages import RESTART_META_KEY, MemberEvent, NodeMeta, restart_hint
from ..gossip.runner import serve_gossip
from ..raft import command_gate
from ..supervisor import drain, supervise
from .seed_plan import SeedPlan

log = logging.getLogger(__name__)

__all__ = ["announce_leave", "announce_restart", "serve_gossip_membership"]


GOSSIP_SEED_CHECK_S = 5.0
# A member that did not answer yet (a joiner starts its gossip a few ms after its record commits) is
# tried again soon, then less and less often, up to GOSSIP_SEED_CHECK_S.
GOSSIP_SEED_RETRY_S = 0.1
#: at most this long a joiner's gossip waits for its greeting before it seeds on its own (the greeting
#: itself gives up after 0.5 s: ``membership.manager.GREET_TIMEOUT_S``)
GREETING_WAIT_S = 1.0
LEAVE_ANNOUNCE_TIMEOUT_S = 2.0  # the leave message spreads for gossip.leave_propagate_s (1 s) at most


async def serve_gossip_membership(
    ctx: MemberContext,
    section: GossipSection,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run SWIM gossip with the other members (who is alive, fast), encrypted with the cluster key."""
    task_status.started()
    await supervise(ctx.board.health, "gossip", partial(_run_gossip, ctx, section))


async def _run_gossip(ctx: MemberContext, section: GossipSection) -> None:
    local, board = ctx.local, ctx.board
    store = ctx.store
    state = store.snapshot()
    addr = local.advertise_addr
    presets = {
        "fast-lan": GossipConfig.fast_lan,
        "lan": GossipConfig.lan,
        "wan": GossipConfig.wan,
        "local": GossipConfig.local,
    }
    me = state.nodes.get(local.node_id)
    config = presets[section.preset](
        node_name=local.node_id,
        advertise_host=addr,
        port=section.port,
        bind_host=local.bind_addr,  # behind NAT: bind the own address, advertise the NAT's forward
        advertise_port=local.gossip_port or (me.gossip_port if me is not None else 0),
    )
    meta = NodeMeta(
        advertise_addr=addr,
        vtep_addr=addr,
        labels=dict(me.labels) if me else {},
        capacity={"memory_bytes": me.memory_bytes, "cpu_millis": me.cpu_nanos // 1_000_000} if me else {},
        generation=local.generation,
        traffic_index=board.traffic_index,
        engine_version=board.engine_version,
        architecture=board.architecture,
        key_epoch=local.key_epoch,  # member services restart on a key switch: always the current one
        command_versions=command_gate.advertisement(),  # the Raft command versions this node reads
    )

    def on_event(event: MemberEvent) -> None:
        if event.kind in ("dead", "alive", "left", "joined"):
            log.info("gossip: %s is %s", event.name, event.kind)
            board.gossip_changed()
        elif event.kind == "updated" and restart_hint(event.meta):  # the leader holds it (restart_hold.py)
            log.info("gossip: %s announces a restart", event.name)
            board.gossip_changed()

    previous = [local.previous_gossip_key] if local.previous_gossip_key else []
    keyring = Keyring(local.gossip_key, previous)  # the previous key only right after a key switch
    async with ctx.state_changes() as changes, trio.open_nursery() as nursery:
        gossip = await nursery.start(partial(serve_gossip, config, keyring, meta, [], on_event))
        if keyring.accepts_previous:
            nursery.start_soon(drop_previous_gossip_key, keyring)
        board.gossip = gossip
        try:
            if board.greeting is not None:  # a joiner: one push/pull, its greeting, teaches it every member;
                with trio.move_on_after(GREETING_WAIT_S):  # seeding meanwhile raced it (issue 19)
                    await board.greeting.wait()
            # Raft is the authority on who is a member: gossip with the members it does not know yet, each
            # after a grace and only a few members at a time (seed_plan.py: the greeting usually does it)
            plan = SeedPlan.for_gossip(local.node_id, config.gossip_interval_s)
            retry_s = GOSSIP_SEED_RETRY_S
            while True:
                known = gossip.members()
                members = {
                    n.node_id: f"{n.addr}:{n.gossip_port}"
                    for n in store.snapshot().nodes.values()
                    if n.node_id != local.node_id and n.status != "left"
                }
                missing = [node_id for node_id in members if node_id not in known]
                alone = all(name == local.node_id for name in known)
                leader = bool(missing) and store.status().is_leader
                everyone = [*members, local.node_id]
                due, wait_s = plan.due(ctx.clock.monotonic(), missing, everyone, alone, leader)
                wait_s = min(wait_s, GOSSIP_SEED_CHECK_S)
                if due and not await seed_missing(gossip, [(node_id, members[node_id]) for node_id in due]):
                    wait_s, retry_s = min(wait_s, retry_s), min(2 * retry_s, GOSSIP_SEED_CHECK_S)
                elif due or not missing:
                    retry_s = GOSSIP_SEED_RETRY_S
                with trio.move_on_after(wait_s):
                    await changes.receive()
                drain(changes)
        finally:
            board.gossip = None


class Leaving(Protocol):
    """What ``announce_leave`` needs of :class:`p2porch.gossip.runner.GossipHandle`."""

    async def leave(self) -> None: ...


async def announce_leave(gossip: Leaving | None) -> None:
    """Broadcast that this node leaves the cluster (``p2porch leave``): the other members' gossip shows
    it ``left`` at once instead of ``alive`` until their probes fail. Never fails the leave."""
    if gossip is None:
        return
    with trio.move_on_after(LEAVE_ANNOUNCE_TIMEOUT_S):
        try:
            await gossip.leave()
        except Exception as exc:  # the leave goes on without it (the others' probes find out)
            log.debug("gossip leave announcement failed: %r", exc)


class Announcing(Protocol):
    """What ``announce_restart`` needs of :class:`p2porch.gossip.runner.GossipHandle`."""

    async def announce(self, key: str, value: Any) -> None: ...


async def announce_restart(gossip: Announcing | None, until: int) -> None:
    """Tell the other members that this daemon stops to restart and asks to be held ready until
    ``until`` (unix seconds; ``leader/restart_hold.py``), before its gossip stops as in a crash (no
    leave: it is still a member). Never fails the stop."""
    if gossip is None:
        return
    with trio.move_on_after(LEAVE_ANNOUNCE_TIMEOUT_S):
        try:
            await gossip.announce(RESTART_META_KEY, until)
        except Exception as exc:  # the stop goes on without it (the node is then down as after a crash)
            log.debug("gossip restart announcement failed: %r", exc)


class Seeding(Protocol):
    """What ``seed_missing`` needs of :class:`p2porch.gossip.runner.Gossip`."""

    def members(self) -> Mapping[str, object]: ...

    async def join(self, seeds: list[str]) -> int: ...


async def seed_missing(gossip: Seeding, missing: list[tuple[str, str]]) -> bool:
    """Push/pull with each ``(node id, gossip address)`` in turn, skipping the ones an earlier answer
    taught gossip about (a push/pull brings the other side's whole member list: a joiner that missed
    its greeting learnt every member from its first answer, where it pushed/pulled with all N-1 of
    them, O(N²) of merges per join); True when every one tried answered."""
    known: Mapping[str, object] = {}
    answered = True
    for node_id, address in missing:
        if node_id in known:
            continue
        if await gossip.join([address]):
            known = gossip.members()  # once per answer (one that does not answer teaches nothing)
        else:
            answered = False  # the others are tried all the same (a member that is down blocks none)
    return answered


async def drop_previous_gossip_key(keyring: Keyring, grace_s: float = KEY_SWITCH_GRACE_S) -> None:
    """End the gossip key switch after ``grace_s``: the old epoch's key opens nothing any more."""
    await trio.sleep(grace_s)
    keyring.drop_previous()
