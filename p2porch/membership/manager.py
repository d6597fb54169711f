"""This node's membership in a cluster: init, join, leave, and the services that run while a member.

Owns the lifecycle of the Raft store and the join service, ``cluster.json``, and the decisions a
member makes when another node asks to join (which role it gets, which writes that takes). It never
applies state itself: every change goes through the Raft store as a command.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import trio

from ..config import Config
from ..control.events import describe_change, leader_event
from ..errors import AuthError, ConfigError, ConflictError, NotFoundError, P2POrchError, RaftError
from ..leader.autopilot import voters_target
from ..model import Availability, Node, NodeRole, NodeStatus
from ..raft import commands as C
from ..raft.state import ClusterState
from ..raft.store import RaftStore, StoreConfig, open_raft_store
from . import localstate, voter_role
from .join_service import JoinService, request_join, request_stream
from .localstate import LocalClusterState
from .token import JoinToken, new_token, parse_token

log = logging.getLogger(__name__)

RAFT_DIR = "raft"
LEADER_POLL_S = 0.5  # how often the event stream checks for a leader change
LEAVE_STOP_GRACE_S = 3.0  # how long a leaving node's containers get to stop
MemberService = Callable[..., Awaitable[None]]
StorePreparation = Callable[[RaftStore], Awaitable[None]]


def guess_advertise_addr() -> str:
    """The source address of this host's default route (a UDP connect sends no packet)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
            return str(probe.getsockname()[0])
        except OSError as exc:
            raise ConfigError(
                "cannot determine an advertise address (no default route); pass --advertise-addr",
                field="--advertise-addr",
            ) from exc


def host_capacity() -> tuple[int, int]:
    """(nano CPUs, memory bytes) of this host; the agent refines it from the Docker engine."""
    memory = 0
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    memory = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    return (os.cpu_count() or 1) * 1_000_000_000, memory


def raft_role(node: Node, leader: str | None) -> str:
    return "leader" if leader is not None and node.raft_addr == leader else node.role


class ClusterManager:
    """Membership of this node and the member-only services (Raft store, join port, and more).

    ``member_services`` are started, in order, every time this node becomes a member (after init,
    join or a restart) and stopped before it leaves; each is ``fn(manager, task_status=...)``.
    """

    def __init__(
        self, config: Config, node_name: str, member_services: list[tuple[str, MemberService]] | None = None
    ) -> None:
        self.config = config
        self.node_name = node_name
        self.data_dir = config.node.data_dir
        self.raft_dir = Path(self.data_dir) / RAFT_DIR
        self.local: LocalClusterState | None = localstate.load(self.data_dir)
        self.store: RaftStore | None = None
        self.join_service = JoinService(
            self.current_token,
            self._handle_join,
            streams={"logs": self._serve_logs},
            member_ops={"membership": self._answer_membership},
            get_member_token=lambda: self.local.cluster_token if self.local is not None else None,
        )
        self._member_services = list(member_services or [])
        self._nursery: trio.Nursery | None = None
        self._member_scope: trio.CancelScope | None = None
        self._member_done: trio.Event | None = None
        self._lock = trio.Lock()  # one init/join/leave at a time
        # Filled in by member services (see p2porch/member/); read by the API.
        self.health: dict[str, str] = {}
        self.overlay: Any = None
        self.overlay_ready = trio.Event()
        self.resolver: Any = None
        self.executor: Any = None  # the agent's Docker executor while it runs
        self.gossip: Any = None  # the gossip handle while gossip runs
        self.membership_changed = trio.Event()  # set by gossip events, wakes the leader loop

    # ----- lifecycle
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            if self.local is not None:
                self.local = await self._role_on_return(self.local)
                log.info(
                    "rejoining cluster %s as %s (%s)",
                    self.local.cluster_id,
                    self.local.node_name,
                    self.local.role,
                )
                await self._start_member(self.local)
            task_status.started()
            await trio.sleep_forever()

    async def _start_member(self, local: LocalClusterState, prepare: StorePreparation | None = None) -> None:
        assert self._nursery is not None
        scope = trio.CancelScope()
        done = trio.Event()
        self._member_scope, self._member_done = scope, done

        async def member(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            try:
                with scope:
                    await self._run_member(local, task_status, prepare)
            finally:
                self.store = None
                done.set()

        await self._nursery.start(member)

    async def _stop_member(self) -> None:
        if self._member_scope is not None and self._member_done is not None:
            self._member_scope.cancel()
            await self._member_done.wait()
        self._member_scope = self._member_done = None

    async def _role_on_return(self, local: LocalClusterState) -> LocalClusterState:
        """A restarting node asks its peers how the cluster records it now (see voter_role.py)."""
        checked = await voter_role.role_on_return(local, self.join_port)
        if checked != local:
            self._set_aside_old_generation(local, checked)
            localstate.save(self.data_dir, checked)
        return checked

    def _set_aside_old_generation(self, old: LocalClusterState, new: LocalClusterState) -> None:
        """A forced recovery started a new Raft log: keep this node's old one aside, start empty."""
        if new.generation != old.generation and self.raft_dir.exists():
            aside = self.raft_dir.with_name(f"{RAFT_DIR}.generation-{old.generation}-{int(time.time())}")
            self.raft_dir.rename(aside)
            log.warning(
                "the cluster was recovered (generation %d): old Raft log kept in %s", new.generation, aside
            )

    async def _answer_membership(self, request: dict[str, Any]) -> dict[str, Any]:
        return voter_role.membership_answer(self, request)

    def switch_role_soon(self, expected: LocalClusterState, local: LocalClusterState) -> None:
        """Restart the member services with the store in ``local.role`` and ``local.generation`` (called
        from inside them); skipped if this node's state is no longer ``expected`` by then (a recover,
        leave or another switch came first)."""
        assert self._nursery is not None
        self._nursery.start_soon(self._switch_role, expected, local)

    async def _switch_role(self, expected: LocalClusterState, local: LocalClusterState) -> None:
        async with self._lock:
            if self.local is not expected:
                return
            await self._stop_member()
            try:
                self._set_aside_old_generation(expected, local)
                localstate.save(self.data_dir, local)
                self.local = local
                await self._start_member(local)
                log.info("running as %s now (generation %d)", local.role, local.generation)
            except Exception as exc:  # never take the daemon down: go back to how it ran before
                log.error("restarting as %s failed (%r): running as %s again", local.role, exc, expected.role)
                localstate.save(self.data_dir, expected)
                self.local = expected
                await self._start_member(expected)

    async def recover(self, body: dict[str, Any]) -> dict[str, Any]:
        """``recover --force-new-cluster``: after quorum loss, restart the cluster from this node's state
        as its only voter, in a new Raft generation (see docs/failure-model.md for the risks)."""
        if not body.get("force_new_cluster"):
            raise ConfigError(
                "recover discards the Raft log of every other node and keeps only this node's state: "
                "confirm with --force-new-cluster",
                field="--force-new-cluster",
            )
        async with self._lock:
            if self.local is None:
                raise ConflictError("this node is not part of a cluster", field="cluster")
            store = self.require_store()
            status, state = store.status(), store.snapshot()
            if status.has_quorum:
                raise ConflictError(
                    f"the cluster has a quorum (leader {status.leader}): recovering would throw its "
                    "log away; nothing was changed",
                    field="--force-new-cluster",
                )
            if not state.initialized:
                raise ConflictError("this node holds no cluster state to recover from", field="cluster")
            old = self.local
            new = replace(old, role="voter", voters=(old.raft_addr,), generation=state.generation + 1)
            nodes = {
                node_id: replace(n, role=NodeRole.VOTER if node_id == old.node_id else NodeRole.REPLICA)
                for node_id, n in state.nodes.items()
            }
            restored = state.evolve(nodes=nodes)
            now = time.time()

            async def restore(fresh: RaftStore) -> None:
                await fresh.wait_leader(timeout_s=15)
                restore_command = C.RestoreState(at=now, state=restored).encode()
                await fresh.write(restore_command, timeout_s=self.config.raft.commit_timeout_s)
                localstate.save(self.data_dir, new)  # right after the new log holds the state

            await self._stop_member()
            backup = self.raft_dir.with_name(f"{RAFT_DIR}.before-recovery-{int(now)}")
            try:
                self.raft_dir.rename(backup)
                self.local = new
                await self._start_member(new, prepare=restore)
            except BaseException:
                with trio.CancelScope(shield=True):  # put everything back as it was
                    await self._stop_member()
                    if backup.exists():
                        shutil.rmtree(self.raft_dir, ignore_errors=True)
                        backup.rename(self.raft_dir)
                    localstate.save(self.data_dir, old)
                    self.local = old
                    await self._start_member(old)
                raise
            log.warning(
                "recovered cluster %s from this node's state as its only voter (generation %d); "
                "old Raft log kept in %s",
                new.cluster_id,
                new.generation,
                backup,
            )
            return {
                "cluster_id": new.cluster_id,
                "generation": new.generation,
                "state_version": state.version,
                "nodes": len(state.nodes),
                "old_raft_log": str(backup),
            }

    def gossip_states(self) -> dict[str, str]:
        """``node id -> alive | suspect | dead | left`` as this node's gossip sees it ({} before it runs)."""
        gossip = self.gossip
        if gossip is None:
            return {}
        return {name: member.state for name, member in gossip.members().items()}

    def unreachable_nodes(self) -> set[str]:
        """Node ids that gossip currently considers dead (the overlay stops programming them)."""
        return {node_id for node_id, state in self.gossip_states().items() if state == "dead"}

    async def _run_member(
        self,
        local: LocalClusterState,
        task_status: trio.TaskStatus[None],
        prepare: StorePreparation | None = None,
    ) -> None:
        self.overlay_ready = trio.Event()
        self.health = {}
        store_config = StoreConfig(
            self_addr=local.raft_addr if local.role == "voter" else None,
            voters=local.voters,
            data_dir=self.raft_dir,
            password=local.cluster_token.raft_password(local.generation),
            tick_period_s=self.config.raft.tick_s,
        )
        async with open_raft_store(store_config) as store, trio.open_nursery() as nursery:
            self.store = store
            if prepare is not None:  # before any member service sees the store
                await prepare(store)
            if self.config.join.port:
                await nursery.start(self.join_service.serve, local.advertise_addr, self.config.join.port)
            for name, service in self._member_services:
                await nursery.start(service, self)
                log.info("started %s", name)
            nursery.start_soon(voter_role.watch_role, self, local)
            task_status.started()
            await trio.sleep_forever()

    # ----- helpers
    @property
    def join_port(self) -> int:
        """The join port peers listen on (this node's setting; 0 = closed here, peers use the default)."""
        return self.config.join.port or 7948

    def _advertise_addr(self) -> str:
        return self.config.node.advertise_addr or guess_advertise_addr()

    def current_token(self) -> JoinToken | None:
        if self.local is None or self.store is None:
            return None
        join_token = self.store.snapshot().join_token
        return parse_token(join_token) if join_token else self.local.cluster_token

    async def rotate_token(self) -> JoinToken:
        """A new join secret for joiners; members keep their keys (derived from the cluster token)."""
        if self.local is None:
            raise ConflictError("this node is not part of a cluster", field="cluster")
        token = new_token(self.local.cluster_id)
        await self.write(C.SetJoinToken(at=time.time(), join_token=str(token)).encode())
        return token

    def require_store(self) -> RaftStore:
        if self.store is None or self.local is None:
            raise ConflictError(
                "this node is not part of a cluster (run `p2porch init` or `p2porch join`)", field="cluster"
            )
        return self.store

    def snapshot(self) -> ClusterState:
        return self.require_store().snapshot()

    async def write(self, command: bytes) -> Any:
        return await self.require_store().write(command, timeout_s=self.config.raft.commit_timeout_s)

    def _refuse_if_member(self) -> None:
        if self.local is not None:
            raise ConflictError(
                f"this node is already part of cluster {self.local.cluster_id}; run `p2porch leave` first",
                field="cluster",
            )
        if self.raft_dir.exists() and any(self.raft_dir.iterdir()):
            raise ConflictError(
                f"data dir {self.data_dir} already holds Raft state ({self.raft_dir}); "
                "nothing was changed. Use another --data-dir, or remove that directory "
                "to discard the old cluster's state",
                field="node.data_dir",
            )

    def _node_request(self, body: dict[str, Any], node_id: str) -> dict[str, Any]:
        addr = body.get("advertise_addr") or self._advertise_addr()
        labels = body.get("labels") or self.config.node.labels
        cpu_nanos, memory_bytes = host_capacity()
        return {
            "node_id": node_id,
            "name": body.get("name") or self.node_name,
            "addr": addr,
            "raft_port": self.config.raft.port,
            "gossip_port": self.config.gossip.port,
            "labels": dict(labels),
            "cpu_nanos": cpu_nanos,
            "memory_bytes": memory_bytes,
        }

    # ----- init / join / leave
    async def init(self, body: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:
            self._refuse_if_member()
            token = parse_token(body["token"]) if body.get("token") else new_token()
            node_id = secrets.token_hex(8)
            me = self._node_request(body, node_id)
            raft_addr = f"{me['addr']}:{me['raft_port']}"
            local = LocalClusterState(
                cluster_id=token.cluster_id,
                token=str(token),
                node_id=node_id,
                node_name=me["name"],
                role="voter",
                raft_addr=raft_addr,
                voters=(raft_addr,),
            )
            self.local = local
            try:
                await self._start_member(local)
                store = self.require_store()
                await store.wait_leader(timeout_s=15)
                now = time.time()
                init = C.InitCluster(
                    at=now,
                    cluster_id=token.cluster_id,
                    domain=body.get("domain") or self.config.dns.domain,
                    cluster_cidr=body.get("cluster_cidr") or self.config.overlay.cluster_cidr,
                    subnet_prefix_len=self.config.overlay.subnet_prefixlen,
                )
                await self.write(init.encode())
                await self.write(C.AddNode(at=now, node=Node(**{**me, "role": NodeRole.VOTER})).encode())
                await self.write(C.LeaseSubnet(at=now, node_id=node_id).encode())
            except BaseException:
                with trio.CancelScope(shield=True):
                    await self._abandon_membership()
                raise
            localstate.save(self.data_dir, local)
            log.info("initialised cluster %s", token.cluster_id)
            return {
                "cluster_id": token.cluster_id,
                "node_id": node_id,
                "token": str(token),
                "join_addr": f"{me['addr']}:{self.config.join.port}",
            }

    async def join(self, body: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:
            self._refuse_if_member()
            peer = str(body.get("peer") or "")
            if not peer:
                raise ConfigError("join needs PEER[:PORT]", field="PEER")
            host, _, port_text = peer.partition(":")
            if port_text and not port_text.isdigit():
                raise ConfigError(f"PEER {peer!r}: port must be a number", field="PEER")
            port = int(port_text) if port_text else self.join_port
            token = parse_token(str(body.get("token") or ""))
            node_id = secrets.token_hex(8)
            me = self._node_request(body, node_id)
            reply = await request_join(host, port, token, me)
            try:
                cluster_token = parse_token(str(reply["cluster_token"]))
                local = LocalClusterState(
                    cluster_id=str(reply["cluster_id"]),
                    token=str(cluster_token),
                    node_id=node_id,
                    node_name=me["name"],
                    role=str(reply["role"]),
                    raft_addr=f"{me['addr']}:{me['raft_port']}",
                    voters=tuple(str(v) for v in reply["voters"]),
                    generation=int(reply.get("generation", 0)),
                )
            except (KeyError, TypeError, AuthError) as exc:
                raise AuthError(f"join: malformed reply from {peer}: {exc}") from exc
            self.local = local
            try:
                await self._start_member(local)
                await self._wait_for_self(node_id, timeout_s=30)
            except BaseException:
                with trio.CancelScope(shield=True):
                    await self._abandon_membership()
                raise
            localstate.save(self.data_dir, local)
            log.info("joined cluster %s as %s", local.cluster_id, local.role)
            return {"cluster_id": local.cluster_id, "node_id": node_id, "role": local.role}

    async def _wait_for_self(self, node_id: str, timeout_s: float) -> None:
        with trio.move_on_after(timeout_s):
            while True:
                store = self.require_store()
                if node_id in store.snapshot().nodes:
                    return
                await trio.sleep(0.05)
        raise RaftError(f"joined, but this node's record did not replicate here within {timeout_s:.0f} s")

    async def _abandon_membership(self) -> None:
        """Stop member services and discard local cluster state (the cluster forgets us separately)."""
        await self._stop_member()
        self.local = None
        localstate.remove(self.data_dir)
        shutil.rmtree(self.raft_dir, ignore_errors=True)

    async def leave(self, body: dict[str, Any]) -> dict[str, Any]:
        """Leave the cluster: stop this node's tasks and overlay, tell the cluster, stop the store.

        The final write marks the node ``left``; the store stops right after it, so this node can never
        campaign once the leader has dropped it from the voters (see ``autopilot.py``).
        """
        force = bool(body.get("force"))
        async with self._lock:
            if self.local is None:
                raise ConflictError("this node is not part of a cluster", field="cluster")
            local = self.local
            others = self._other_members(local)
            if not others and not force:
                raise ConflictError(
                    "this is the last node of the cluster: leaving destroys the cluster and its "
                    "state; use `p2porch leave --force` to do it anyway",
                    field="--force",
                )
            await self._stop_local_tasks()
            if self.overlay is not None:
                removed = await self.overlay.teardown()
                log.info("overlay removed: %s", removed)
            if others:
                try:
                    now = time.time()
                    await self.write(C.ReleaseSubnet(at=now, node_id=local.node_id).encode())
                    left = C.UpdateNode(at=now, node_id=local.node_id, status=NodeStatus.LEFT)
                    await self.write(left.encode())
                except P2POrchError as exc:
                    if not force:
                        raise
                    log.warning("leave --force: the cluster was not told (%s); leaving anyway", exc.message)
            await self._abandon_membership()
            return {"left": local.cluster_id, "node_id": local.node_id}

    def _other_members(self, local: LocalClusterState) -> list[Node]:
        state = self.require_store().snapshot()
        return [n for n in state.nodes.values() if n.node_id != local.node_id and n.status != "left"]

    async def _stop_local_tasks(self) -> None:
        """Remove the containers of this node's tasks: a node that left runs nothing of the cluster."""
        executor = self.executor
        if executor is None:
            return
        async with trio.open_nursery() as nursery:
            for container in await executor.list_containers():
                nursery.start_soon(
                    partial(executor.remove, container.container_id, stop_grace_s=LEAVE_STOP_GRACE_S)
                )

    # ----- member side of a join
    async def _handle_join(self, request: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:
            store = self.require_store()
            assert self.local is not None
            state = store.snapshot()
            name = str(request.get("name", ""))
            existing = state.node_by_name(name)
            if existing is not None:
                if existing.status != "left":
                    raise ConflictError(
                        f"a node named {name!r} is already in the cluster; "
                        "choose another --name or `p2porch node rm` it",
                        field="--name",
                    )
                await self.write(C.RemoveNode(at=time.time(), node_id=existing.node_id).encode())
            state = store.snapshot()
            live = [n for n in state.nodes.values() if n.status != "left"]
            voters = [n for n in live if n.role == "voter"]
            role = "voter" if len(voters) < voters_target(self.config, len(live) + 1) else "replica"
            request = {**request, "role": role}
            try:
                record = Node(
                    **{
                        k: request[k]
                        for k in (
                            "node_id",
                            "name",
                            "addr",
                            "raft_port",
                            "gossip_port",
                            "labels",
                            "cpu_nanos",
                            "memory_bytes",
                            "role",
                        )
                    }
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ConfigError(f"malformed join request: {exc}", field="request") from exc
            now = time.time()
            await self.write(C.AddNode(at=now, node=record).encode())
            await self.write(C.LeaseSubnet(at=now, node_id=record.node_id).encode())
            # A voter joins the Raft configuration through the leader's autopilot, once it answers that
            # its store runs as a voter of this generation (adding it earlier could stall commits).
            log.info("node %s (%s) joined as %s", record.name, record.addr, role)
            return {
                "cluster_id": self.local.cluster_id,
                "cluster_token": self.local.token,
                "role": role,
                "voters": sorted(n.raft_addr for n in voters),
                "generation": state.generation,
            }

    # ----- task logs across nodes
    @asynccontextmanager
    async def _serve_logs(self, request: dict[str, Any]) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """A peer asks for this node's log lines of one service."""
        async with self.local_logs(request) as lines:
            yield lines

    @asynccontextmanager
    async def local_logs(self, request: dict[str, Any]) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        executor = self.executor
        if executor is None:
            raise ConflictError("the agent is not running on this node", field="agent")
        tail = request.get("tail")
        async with executor.open_logs(
            service_name=str(request.get("service", "")),
            follow=bool(request.get("follow")),
            tail=int(tail) if isinstance(tail, int) else None,
        ) as channel:

            async def lines() -> AsyncIterator[dict[str, Any]]:
                async for task_id, line in channel:
                    yield {"task_id": task_id, "line": line}

            yield lines()

    @asynccontextmanager
    async def node_logs(
        self, node: Node, request: dict[str, Any]
    ) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """Log lines of one node's tasks: local from the executor, remote over the join port."""
        if self.local is not None and node.node_id == self.local.node_id:
            async with self.local_logs(request) as lines:
                yield lines
            return
        if self.local is None:
            raise ConflictError("this node is not part of a cluster", field="cluster")
        yield request_stream(node.addr, self.join_port, self.local.cluster_token, request)

    # ----- events
    @asynccontextmanager
    async def events(self) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """Cluster events from now on: node/service/task changes as committed here, and leader changes."""
        store = self.require_store()
        async with store.subscribe() as changes:

            async def stream() -> AsyncIterator[dict[str, Any]]:
                start = store.snapshot()
                last: dict[tuple[str, str], Any] = {("node", k): r for k, r in start.nodes.items()}
                last.update({("service", k): r for k, r in start.services.items()})
                last.update({("task", k): r for k, r in start.tasks.items()})
                leader = store.status().leader
                while True:
                    with trio.move_on_after(LEADER_POLL_S):
                        change = await changes.receive()
                        key = (change.kind, change.key)
                        event = describe_change(change, last.get(key), store.snapshot(), time.time())
                        last[key] = change.record
                        if event is not None:
                            yield event
                    current = store.status().leader
                    if current != leader:
                        leader = current
                        yield leader_event(leader, time.time())

            yield stream()

    # ----- queries and node commands
    def status(self) -> dict[str, Any] | None:
        if self.local is None:
            return None
        base: dict[str, Any] = {
            "cluster_id": self.local.cluster_id,
            "node_id": self.local.node_id,
            "raft_role": self.local.role,
        }
        if self.store is None:
            return {**base, "ready": False}
        raft = self.store.status()
        state = self.store.snapshot()
        if self.gossip is not None:
            base["gossip"] = {
                "members": self.gossip_states(),
                "metrics": dict(self.gossip.metrics),
                "health_score": self.gossip.health_score(),
            }
        base["services_health"] = dict(self.health)
        return {
            **base,
            "ready": raft.ready,
            "leader": raft.leader,
            "is_leader": raft.is_leader,
            "has_quorum": raft.has_quorum,
            "term": raft.term,
            "commit_index": raft.commit_index,
            "state_version": state.version,
            "voters": list(raft.voters),
            "nodes": len(state.nodes),
            "domain": state.domain,
            "cluster_cidr": state.cluster_cidr,
        }

    def node_view(self, node: Node, state: ClusterState, leader: str | None) -> dict[str, Any]:
        lease = state.leases.get(node.node_id)
        return {
            "id": node.node_id,
            "name": node.name,
            "address": node.addr,
            "raft_role": raft_role(node, leader),
            "availability": node.availability,
            "status": node.status,
            "labels": dict(node.labels),
            "cpu_nanos": node.cpu_nanos,
            "memory_bytes": node.memory_bytes,
            "joined_at": node.joined_at,
            "subnet": lease.subnet if lease else None,
            "gossip": self.gossip_states().get(node.node_id, "unknown"),
            "self": node.node_id == (self.local.node_id if self.local else None),
        }

    def nodes(self) -> list[dict[str, Any]]:
        store = self.require_store()
        state, leader = store.snapshot(), store.status().leader
        return [self.node_view(n, state, leader) for n in sorted(state.nodes.values(), key=lambda n: n.name)]

    def find_node(self, ref: str) -> Node:
        state = self.snapshot()
        node = state.node_by_name(ref) or state.nodes.get(ref)
        if node is None:
            matches = [n for n in state.nodes.values() if n.node_id.startswith(ref)] if len(ref) >= 4 else []
            if len(matches) == 1:
                return matches[0]
            raise NotFoundError(f"no node {ref!r} in the cluster", field="NODE")
        return node

    async def update_node(self, ref: str, body: dict[str, Any]) -> dict[str, Any]:
        """Change a node's availability and labels (``label_add`` map, ``label_rm`` list)."""
        node = self.find_node(ref)
        fields: dict[str, Any] = {}
        availability = body.get("availability")
        if availability is not None:
            if availability not in ("active", "drain", "pause"):
                raise ConfigError(
                    f"--availability {availability!r}: must be active, drain or pause", field="--availability"
                )
            fields["availability"] = Availability(availability)
        label_add = body.get("label_add") or {}
        label_rm = body.get("label_rm") or []
        if not isinstance(label_add, dict) or not isinstance(label_rm, list):
            raise ConfigError("label_add must be a map and label_rm a list", field="--label-add")
        if label_add or label_rm:
            labels = {k: v for k, v in node.labels.items() if k not in label_rm}
            labels.update({str(k): str(v) for k, v in label_add.items()})
            fields["labels"] = labels
        if not fields:
            raise ConfigError(
                "nothing to update: give --availability, --label-add or --label-rm", field="--availability"
            )
        update = C.UpdateNode(at=time.time(), node_id=node.node_id, node_version=node.version, **fields)
        await self.write(update.encode())
        store = self.require_store()
        return self.node_view(self.find_node(node.node_id), store.snapshot(), store.status().leader)

    async def remove_node(self, ref: str, force: bool) -> dict[str, Any]:
        node = self.find_node(ref)
        store = self.require_store()
        if self.local is not None and node.node_id == self.local.node_id:
            raise ConflictError("a node cannot remove itself: run `p2porch leave` on it", field="NODE")
        if node.status == "ready" and not force:
            raise ConflictError(
                f"node {node.name} is {node.status}; make it leave first (`p2porch leave` on "
                "it) or use --force",
                field="--force",
            )
        if node.role == "voter" and node.raft_addr in store.status().voters:
            await store.remove_voter(node.raft_addr)
        await self.write(C.RemoveNode(at=time.time(), node_id=node.node_id).encode())
        return {"removed": node.node_id, "name": node.name}
