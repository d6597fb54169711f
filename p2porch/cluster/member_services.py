"""Services a node runs while it is a cluster member: overlay and DNS, fed from committed state (shell).

Each ``serve_*`` is a member service of :class:`~p2porch.cluster.manager.ClusterManager`: it is started
after the Raft store is open, reads only the store's snapshots and change stream, and reports its
health in ``manager.health``. A failing service is retried with back-off and never takes the daemon
(or the other services) down. None of them writes cluster state.
"""

from __future__ import annotations

import logging
import math
import random
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from ..agent.docker_executor import open_docker_executor
from ..agent.model import NodeCapacity, TaskAssignment, TaskReport
from ..agent.worker import run_agent
from ..dns.resolver import Resolver
from ..dns.server import serve_dns
from ..errors import ConflictError, ProposalTimeout, RaftError
from ..gossip.config import GossipConfig
from ..gossip.keyring import Keyring
from ..gossip.messages import MemberEvent, NodeMeta
from ..gossip.runner import serve_gossip
from ..model import Node, NodeRole, Service, TaskHealth, TaskState
from ..netoverlay.dockernet import DockerNetwork
from ..netoverlay.driver import NetlinkDriver
from ..netoverlay.firewall import Firewall
from ..netoverlay.plan import OverlaySettings
from ..netoverlay.reconciler import OverlayReconciler, run_overlay
from ..raft import commands as C
from ..raft.state import ClusterState
from ..raft.store import RaftStore
from ..scheduler import Orchestrator
from . import voter_role
from .autopilot import VoterChange, next_voter_change, voters_target
from .scheduling import node_status_updates, plan_round
from .views import (
    dns_zone,
    gateway_of,
    local_overlay_node,
    overlay_peers,
    shutdown_assignment,
    task_assignment,
)

if TYPE_CHECKING:
    from .manager import ClusterManager

log = logging.getLogger(__name__)


@asynccontextmanager
async def state_changes(manager: ClusterManager) -> AsyncIterator[trio.MemoryReceiveChannel[Any]]:
    """A channel that receives one item per committed change batch (the items themselves are opaque)."""
    store = manager.require_store()
    async with store.subscribe() as changes:
        yield changes


async def supervise(manager: ClusterManager, name: str, body: Callable[[], Awaitable[None]]) -> None:
    """Run ``body`` forever, recording failures in ``manager.health`` and retrying with back-off."""
    delay_s = 0.5
    while True:
        try:
            manager.health[name] = "running"
            await body()
            return
        except Exception as exc:  # a member service must not take the daemon down
            manager.health[name] = f"failed: {type(exc).__name__}: {exc}"
            log.error("%s failed, retrying in %.1f s: %s", name, delay_s, exc, exc_info=log.isEnabledFor(10))
        await trio.sleep(delay_s)
        delay_s = min(delay_s * 2, 30.0)


async def wait_for_lease(manager: ClusterManager, changes: trio.MemoryReceiveChannel[Any]) -> str:
    """This node's leased overlay subnet, waiting for the lease to be committed if needed."""
    assert manager.local is not None
    while True:
        lease = manager.require_store().snapshot().leases.get(manager.local.node_id)
        if lease is not None:
            return lease.subnet
        await changes.receive()


async def serve_overlay(
    manager: ClusterManager, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Program this node's VXLAN overlay and Docker network from leases and live nodes."""
    task_status.started()
    await supervise(manager, "overlay", partial(_run_overlay, manager))


async def _run_overlay(manager: ClusterManager) -> None:
    assert manager.local is not None
    node_id = manager.local.node_id
    store = manager.require_store()
    async with state_changes(manager) as changes:
        await wait_for_lease(manager, changes)
        state = store.snapshot()
        local = local_overlay_node(state, node_id)
        assert local is not None
        config = manager.config
        settings = OverlaySettings(
            cluster_cidr=state.cluster_cidr,
            vni=config.overlay.vni,
            vxlan_port=config.overlay.vxlan_port,
            dns_port=config.dns.port,
        )
        send, receive = trio.open_memory_channel[Any](math.inf)

        def peers() -> list[Any]:
            return overlay_peers(store.snapshot(), node_id, frozenset(manager.unreachable_nodes()))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(_forward, changes, send)
            reconciler: OverlayReconciler = await nursery.start(
                partial(
                    run_overlay,
                    local,
                    peers,
                    NetlinkDriver(),
                    settings=settings,
                    network=DockerNetwork(config.node.docker_host or None),
                    firewall=Firewall(),
                    changes=receive,
                )
            )
            manager.overlay = reconciler
            manager.overlay_ready.set()
            try:
                await trio.sleep_forever()
            finally:
                manager.overlay = None


def drain(channel: trio.MemoryReceiveChannel[Any]) -> None:
    """Discard whatever is already queued on ``channel``."""
    while True:
        try:
            channel.receive_nowait()
        except trio.WouldBlock:
            return


async def _forward(source: trio.MemoryReceiveChannel[Any], sink: trio.MemorySendChannel[Any]) -> None:
    async for item in source:
        sink.send_nowait(item)


async def serve_cluster_dns(
    manager: ClusterManager, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Answer the cluster domain from committed state on the bridge gateway and the advertise address."""
    task_status.started()
    await supervise(manager, "dns", partial(_run_dns, manager))


async def _run_dns(manager: ClusterManager) -> None:
    assert manager.local is not None
    store = manager.require_store()
    config = manager.config
    async with state_changes(manager) as changes:
        subnet = await wait_for_lease(manager, changes)
        await manager.overlay_ready.wait()  # the gateway address exists once the Docker network does
        gateway = gateway_of(subnet)
        advertise = manager.local.advertise_addr
        resolver = Resolver(dns_zone(store.snapshot(), (advertise,)), ttl_s=config.dns.ttl_s)
        manager.resolver = resolver
        upstreams = [_parse_upstream(u) for u in config.dns.upstreams] or None
        listen = [(gateway, config.dns.port), (advertise, config.dns.port)]
        async with trio.open_nursery() as nursery:
            await nursery.start(
                partial(serve_dns, resolver, listen, upstreams, timeout_s=config.dns.forward_timeout_s)
            )
            log.info(
                "cluster DNS for %s. on %s", store.snapshot().domain, ", ".join(f"{h}:{p}" for h, p in listen)
            )
            async for _ in changes:
                drain(changes)  # one zone rebuild per burst of commits
                resolver.update_zone(dns_zone(store.snapshot(), (advertise,)))


def _parse_upstream(text: str) -> tuple[str, int]:
    host, _, port = text.partition(":")
    return host, int(port) if port else 53


async def serve_agent(
    manager: ClusterManager, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run the tasks committed to this node through its Docker engine and report their states."""
    task_status.started()
    await supervise(manager, "agent", partial(_run_agent, manager))


async def _run_agent(manager: ClusterManager) -> None:
    assert manager.local is not None
    node_id, node_name = manager.local.node_id, manager.local.node_name
    store = manager.require_store()
    executor = await open_docker_executor(manager.config.node.docker_host or None)
    manager.executor = executor
    try:
        await _record_capacity(manager, await executor.capacity())
        await manager.overlay_ready.wait()  # tasks attach to the node's overlay network

        def assignments() -> list[TaskAssignment]:
            state = store.snapshot()
            lease = state.leases.get(node_id)
            dns = gateway_of(lease.subnet) if lease else ""
            out = []
            for task in state.tasks.values():
                if task.node_id != node_id:
                    continue
                service = state.services.get(task.service_id)
                if service is None:  # its service is gone: the task can only be stopped
                    out.append(shutdown_assignment(task, node_name))
                    continue
                network = OverlaySettings().network_name
                out.append(task_assignment(task, service.spec, node_name, network, dns, state.domain))
            return out

        async def report(reports: list[TaskReport]) -> None:
            command = C.ReportTaskStates(
                at=time.time(), node_id=node_id, reports=tuple(status_report(r) for r in reports)
            )
            await manager.write(command.encode())

        async with state_changes(manager) as changes, trio.open_nursery() as nursery:
            await nursery.start(partial(run_agent, executor, node_name, assignments, changes, report))
            await trio.sleep_forever()
    finally:
        manager.executor = None
        with trio.CancelScope(shield=True):
            await executor.aclose()


async def _record_capacity(manager: ClusterManager, capacity: NodeCapacity) -> None:
    """Store the engine's CPU and memory as this node's capacity when they differ from the record."""
    assert manager.local is not None
    node = manager.require_store().snapshot().nodes.get(manager.local.node_id)
    if node is None or (node.cpu_nanos, node.memory_bytes) == (capacity.cpu_nanos, capacity.memory_bytes):
        return
    update = C.UpdateNode(
        at=time.time(), node_id=node.node_id, cpu_nanos=capacity.cpu_nanos, memory_bytes=capacity.memory_bytes
    )
    await manager.write(update.encode())


def status_report(report: TaskReport) -> C.TaskStatusReport:
    """An agent report as the ``ReportTaskStates`` command carries it (every field reported)."""
    return C.TaskStatusReport(
        task_id=report.task_id,
        state=TaskState(report.state),
        state_at=report.at,
        error=report.error,
        container_id=report.container_id,
        address=report.address,
        health=TaskHealth(report.health),
        exit_code=report.exit_code,
        reports_exit_code=True,
    )


async def serve_scheduler(
    manager: ClusterManager, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """While this node leads Raft: reconcile services with tasks and commit placements."""
    task_status.started()
    await supervise(manager, "scheduler", partial(_run_scheduler, manager))


async def sync_node_statuses(manager: ClusterManager, state: ClusterState) -> bool:
    """Leader only: write node statuses that gossip contradicts (ready <-> down); True if any changed."""
    updates = node_status_updates(state, manager.gossip_states())
    for node_id, status in updates.items():
        log.info("node %s is %s (gossip)", state.nodes[node_id].name, status)
        try:
            update = C.UpdateNode(
                at=time.time(), node_id=node_id, status=status, node_version=state.nodes[node_id].version
            )
            await manager.write(update.encode())
        except (ConflictError, ProposalTimeout) as exc:
            log.info("node status write for %s not committed: %s", node_id, exc.message)
    return bool(updates)


async def apply_update_failures(manager: ClusterManager, state: ClusterState, failures: list[Any]) -> None:
    """A task of a rolling update failed: pause the update, or roll the service back, as configured."""
    for service_id in sorted({f.service_id for f in failures}):
        service = state.services.get(service_id)
        if service is None or service.update_paused:
            continue
        action = next(f.action for f in failures if f.service_id == service_id)
        now = time.time()
        if action == "rollback" and service.previous_spec is not None:
            update = C.UpdateService.of(
                service, at=now, spec=service.previous_spec, previous_spec=service.spec
            )
            log.warning("update of %s failed: rolling back", service.name)
        else:
            update = C.UpdateService.of(service, at=now, update_paused=True)
            log.warning("update of %s failed: paused", service.name)
        await write_service_bookkeeping(manager, service, update, "update failure action")


async def finish_rebalance_requests(
    manager: ClusterManager, state: ClusterState, service_ids: list[str]
) -> None:
    """Clear `service rebalance` requests of services found balanced."""
    for service_id in service_ids:
        service = state.services[service_id]
        update = C.UpdateService.of(service, at=time.time(), rebalance_requested=0.0)
        log.info("rebalance of %s done", service.name)
        await write_service_bookkeeping(manager, service, update, "clearing the rebalance request")


async def write_service_bookkeeping(
    manager: ClusterManager, service: Service, update: C.UpdateService, what: str
) -> None:
    """Leader bookkeeping on a service (``update`` is conditional on the version read); a lost race is
    logged (the next round decides again)."""
    try:
        await manager.write(update.encode())
    except (ConflictError, ProposalTimeout) as exc:
        log.info("%s for %s not committed: %s", what, service.name, exc.message)


async def wait_any(*waits: Callable[[], Awaitable[Any]]) -> None:
    """Return as soon as one of the waits returns."""
    async with trio.open_nursery() as nursery:

        async def one(wait: Callable[[], Awaitable[Any]]) -> None:
            await wait()
            nursery.cancel_scope.cancel()

        for wait in waits:
            nursery.start_soon(one, wait)


async def serve_autopilot(
    manager: ClusterManager, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """While this node leads Raft: keep the configured number of healthy voters (see autopilot.py)."""
    task_status.started()
    await supervise(manager, "autopilot", partial(_run_autopilot, manager))


AUTOPILOT_CHECK_S = 0.5


async def _run_autopilot(manager: ClusterManager) -> None:
    store = manager.require_store()
    while True:
        await trio.sleep(AUTOPILOT_CHECK_S)
        status = store.status()
        if not status.is_leader or store.config.self_addr is None:
            continue
        state = store.snapshot()
        live = [n for n in state.nodes.values() if n.status != "left"]
        alive = {node_id for node_id, seen in manager.gossip_states().items() if seen == "alive"}
        change = next_voter_change(
            state.nodes.values(),
            status.voters,
            alive,
            await voters_running(manager, state, status.voters),
            time.time(),
            target=voters_target(manager.config, len(live)),
            grace_s=manager.config.raft.replace_dead_voter_s,
            self_addr=store.config.self_addr,
        )
        if change is not None:
            await apply_voter_change(manager, store, state, change)


async def voters_running(
    manager: ClusterManager, state: ClusterState, raft_voters: Collection[str]
) -> set[str]:
    """Raft addresses of nodes recorded as voters, not in the configuration yet, that answer (join port)
    that their store runs as a voter of this generation."""
    pending = [
        n
        for n in state.nodes.values()
        if n.role == "voter" and n.status == "ready" and n.raft_addr not in raft_voters
    ]
    running: set[str] = set()
    local = manager.local
    assert local is not None

    async def ask(node: Node) -> None:
        answer = await voter_role.ask_node(local, node.addr, manager.join_port)
        if answer and (answer.get("running_role"), answer.get("running_generation")) == (
            "voter",
            state.generation,
        ):
            running.add(node.raft_addr)

    async with trio.open_nursery() as nursery:
        for node in pending:
            nursery.start_soon(ask, node)
    return running


async def apply_voter_change(
    manager: ClusterManager, store: RaftStore, state: ClusterState, change: VoterChange
) -> None:
    """Carry out one autopilot step; a failure is logged and the next check decides again."""
    log.warning("autopilot: %s %s (%s)", change.kind, change.addr, change.reason)
    try:
        if change.kind == "add":
            await store.add_voter(change.addr, timeout_s=15)
        elif change.kind == "remove":
            await store.remove_voter(change.addr)
        else:
            assert change.node_id is not None
            node = state.nodes[change.node_id]
            role = NodeRole.VOTER if change.kind == "promote" else NodeRole.REPLICA
            update = C.UpdateNode(at=time.time(), node_id=node.node_id, role=role, node_version=node.version)
            await manager.write(update.encode())
    except (RaftError, ConflictError, ProposalTimeout) as exc:
        log.warning("autopilot: %s %s failed: %s", change.kind, change.addr, exc.message)
        await trio.sleep(1.0)


async def serve_gossip_membership(
    manager: ClusterManager, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run SWIM gossip with the other members (who is alive, fast), encrypted with the cluster key."""
    task_status.started()
    await supervise(manager, "gossip", partial(_run_gossip, manager))


async def _run_gossip(manager: ClusterManager) -> None:
    assert manager.local is not None
    local = manager.local
    store = manager.require_store()
    state = store.snapshot()
    addr = local.advertise_addr
    presets = {
        "fast-lan": GossipConfig.fast_lan,
        "lan": GossipConfig.lan,
        "wan": GossipConfig.wan,
        "local": GossipConfig.local,
    }
    config = presets[manager.config.gossip.preset](
        node_name=local.node_id, advertise_host=addr, port=manager.config.gossip.port
    )
    me = state.nodes.get(local.node_id)
    meta = NodeMeta(
        advertise_addr=addr,
        vtep_addr=addr,
        labels=dict(me.labels) if me else {},
        capacity={"memory_bytes": me.memory_bytes, "cpu_millis": me.cpu_nanos // 1_000_000} if me else {},
        generation=local.generation,
    )

    def on_event(event: MemberEvent) -> None:
        if event.kind in ("dead", "alive", "left", "joined"):
            log.info("gossip: %s is %s", event.name, event.kind)
            manager.membership_changed.set()

    async with state_changes(manager) as changes, trio.open_nursery() as nursery:
        gossip = await nursery.start(
            partial(serve_gossip, config, Keyring(local.cluster_token.gossip_key), meta, [], on_event)
        )
        manager.gossip = gossip
        try:
            # Raft is the authority on who is a member: gossip with every member it does not know yet.
            while True:
                known = gossip.members()
                missing = [
                    f"{n.addr}:{n.gossip_port}"
                    for n in store.snapshot().nodes.values()
                    if n.node_id != local.node_id and n.status != "left" and n.node_id not in known
                ]
                if missing:
                    await gossip.join(missing)
                with trio.move_on_after(GOSSIP_SEED_CHECK_S):
                    await changes.receive()
                drain(changes)
        finally:
            manager.gossip = None


GOSSIP_SEED_CHECK_S = 5.0
LEADER_DEBOUNCE_S = 0.02
LEADER_IDLE_CHECK_S = 1.0


async def _run_scheduler(manager: ClusterManager) -> None:
    store = manager.require_store()
    orchestrator = Orchestrator(
        random.Random(secrets.randbits(64)), down_grace_s=manager.config.scheduler.down_grace_s
    )
    wake_at: float | None = None
    async with state_changes(manager) as changes:
        while True:
            timeout = (
                LEADER_IDLE_CHECK_S
                if wake_at is None
                else min(LEADER_IDLE_CHECK_S, max(0.0, wake_at - time.time()))
            )
            with trio.move_on_after(timeout):
                await wait_any(changes.receive, manager.membership_changed.wait)
                await trio.sleep(LEADER_DEBOUNCE_S)
            manager.membership_changed = trio.Event()
            drain(changes)
            if not store.status().is_leader:
                wake_at = None
                continue
            state = store.snapshot()
            if await sync_node_statuses(manager, state):
                continue  # the status writes change the state: plan on the new one
            now = time.time()
            plan = plan_round(
                state, now, orchestrator, rebalance_max_moves=manager.config.scheduler.rebalance_max_moves
            )
            wake_at = plan.wake_at
            if plan.update_failures:
                await apply_update_failures(manager, state, plan.update_failures)
                continue  # the service changed: plan again on the new spec
            if plan.rebalanced:
                await finish_rebalance_requests(manager, state, plan.rebalanced)
                continue  # the services changed: plan again on the new specs
            if plan.empty:
                continue
            try:
                put = C.PutTasks(at=now, items=tuple(plan.items), expected_version=state.version)
                await manager.write(put.encode())
            except ConflictError:
                wake_at = time.time()  # the state moved under us: plan again at once
            except ProposalTimeout as exc:
                log.warning("scheduling round not committed: %s", exc.message)
