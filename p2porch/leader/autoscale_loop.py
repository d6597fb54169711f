"""The autoscaler loop: while this node leads Raft, scale autoscaled services on their usage (shell).

Every ``sync_s`` it asks the nodes that run tasks of autoscaled services for their usage (the ``usage``
join-port request, through the injected ``fetch``), folds the answers into one
:class:`~p2porch.leader.autoscale.ServiceUsage` per service, and calls the pure
:func:`~p2porch.leader.autoscale.recommend`. A change is written the way ``service scale`` writes one:
``UpdateService`` with the new ``replicas``, conditional on the service version it read, together with
``autoscale_last`` (when, from, to, why, the inputs) in the same command, so the step and its record
commit or fail together and ``p2porch events`` shows it. The raw-recommendation history and the time
this leader started observing live here and are dropped when leadership is lost: a new leader waits a
full window (rule 7 of the recommender) instead of acting on a history it does not have.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import trio

from ..config import AutoscaleConfig
from ..context import MemberContext
from ..errors import ConflictError, ProposalTimeout
from ..model import Node
from ..raft.state import ClusterState
from ..supervisor import supervise
from .autoscale import Decision, recommend
from .autoscale_inputs import is_rolling, last_scale_at, policy_of, scale_command, service_usage
from .epoch import write_as_leader

log = logging.getLogger(__name__)

__all__ = ["AutoscaleMemory", "UsageFetch", "autoscale_round", "decision_view", "serve_autoscaler"]

UsageFetch = Callable[[Node], Awaitable[Mapping[str, Any] | None]]
"""A node's ``usage`` report (this node's from its board, others' over the join port); None: no answer."""


@dataclass
class AutoscaleMemory:
    """What one leadership term remembers: raw recommendations and when it started observing each service."""

    histories: dict[str, tuple[tuple[float, int], ...]] = field(default_factory=dict)
    observing_since: dict[str, float] = field(default_factory=dict)

    def forget_except(self, service_ids: set[str]) -> None:
        for table in (self.histories, self.observing_since):
            for stale in set(table) - service_ids:
                del table[stale]


async def serve_autoscaler(
    ctx: MemberContext,
    section: AutoscaleConfig,
    *,
    fetch: UsageFetch,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """While this node leads Raft: one autoscale round every ``section.sync_s``."""
    task_status.started()
    await supervise(ctx.board.health, "autoscaler", partial(_run_autoscaler, ctx, section, fetch))


async def _run_autoscaler(ctx: MemberContext, section: AutoscaleConfig, fetch: UsageFetch) -> None:
    memory = AutoscaleMemory()
    try:
        while True:
            await trio.sleep(section.sync_s)
            if not ctx.store.status().is_leader:
                memory = AutoscaleMemory()  # a later term starts observing afresh
                ctx.board.autoscale.clear()
                continue
            await autoscale_round(ctx, memory, fetch)
    finally:
        ctx.board.autoscale.clear()


async def gather_reports(fetch: UsageFetch, nodes: list[Node]) -> dict[str, Mapping[str, Any] | None]:
    """Every node's report, asked in parallel (``fetch`` bounds its own time)."""
    reports: dict[str, Mapping[str, Any] | None] = {}

    async def one(node: Node) -> None:
        reports[node.node_id] = await fetch(node)

    async with trio.open_nursery() as nursery:
        for node in nodes:
            nursery.start_soon(one, node)
    return reports


def _autoscaled(state: ClusterState) -> dict[str, Any]:
    """service id -> (spec, policy) of every service with an autoscale policy."""
    out: dict[str, Any] = {}
    for service in state.services.values():
        policy = policy_of(service.spec)
        if policy is not None:
            out[service.service_id] = (service.spec, policy)
    return out


async def autoscale_round(ctx: MemberContext, memory: AutoscaleMemory, fetch: UsageFetch) -> list[Decision]:
    """Decide every autoscaled service once and write the changes; returns the decisions."""
    targets = _autoscaled(ctx.store.snapshot())
    memory.forget_except(set(targets))
    for stale in set(ctx.board.autoscale) - set(targets):
        del ctx.board.autoscale[stale]
    if not targets:
        return []
    state = ctx.store.snapshot()
    node_ids = sorted(
        {
            t.node_id
            for sid in targets
            for t in state.tasks_of_service(sid)
            if t.node_id and t.desired_state == "running" and t.node_id in state.nodes
        }
    )
    reports = await gather_reports(fetch, [state.nodes[n] for n in node_ids])
    state = ctx.store.snapshot()  # the answers took time: decide on what is committed now
    now = ctx.clock.now()
    decisions = []
    for sid, (spec, policy) in sorted(targets.items()):
        service = state.services.get(sid)
        if service is None:
            continue
        decision = recommend(
            policy,
            int(spec.replicas),
            service_usage(state, sid, spec, reports),
            memory.histories.get(sid, ()),
            now,
            last_scale_at=last_scale_at(service),
            observing_since=memory.observing_since.setdefault(sid, now),
            rolling=is_rolling(state, sid, spec),
        )
        memory.histories[sid] = decision.history
        view = decision_view(decision)
        decisions.append(decision)
        if decision.changes:
            log.warning(
                "autoscale %s %d -> %d: %s", service.name, decision.current, decision.desired, decision.reason
            )
            try:
                await write_as_leader(ctx, scale_command(service, decision))
            except (ConflictError, ProposalTimeout) as exc:
                view["committed"] = False
                view["reason"] = f"{decision.reason} (not committed: {exc.message}; deciding again)"
                log.info("autoscale step for %s not committed: %s", service.name, exc.message)
            else:
                view["committed"] = True
        ctx.board.autoscale[sid] = view
    return decisions


def decision_view(decision: Decision) -> dict[str, Any]:
    """A decision as ``service inspect`` shows it."""
    return {
        "at": decision.at,
        "current": decision.current,
        "desired": decision.desired,
        "recommended": decision.raw,
        "changes": decision.changes,
        "reason": decision.reason,
        "inputs": dict(decision.inputs),
    }
