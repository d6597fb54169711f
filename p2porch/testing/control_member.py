"""A control-plane-only member process for the control-plane benchmark (shell; never used by the daemon).

    python -m p2porch.testing.control_member --self 127.0.0.1:7101 --voters ... --data-dir D \
        --password-file F --control-port 7201 --api-socket D/api.sock

It runs the daemon's own control-plane components without an engine, overlay or gossip: the Raft
store (:func:`~p2porch.raft.store.open_raft_store`), the leader loop (:func:`~p2porch.leader.loop.
serve_scheduler`, the daemon's task: it plans and commits rounds while this store leads), the service
API (:class:`~p2porch.control.service_ops.ServiceOps` behind :func:`~p2porch.api.server.serve_api`, the
HTTP-over-unix-socket path the CLI uses) and the store's loopback control protocol
(:mod:`p2porch.raft.node`). Two more control ops drive simulated nodes whose agents live here and
write through this store exactly as a real agent writes through its node's store (``store.write``,
forwarded to the leader when this store does not lead):
{"op": "sim_agents", "reporters": K} starts them; {"op": "sim_status"} reads their counters.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import partial
from typing import Any, cast

import trio

from ..api.server import serve_api
from ..clock import SYSTEM_CLOCK
from ..config import Config, SchedulerConfig
from ..context import LocalBoard, LocalNode, MemberContext
from ..control.routes import service_endpoints
from ..control.service_ops import ServiceOps
from ..errors import P2POrchError
from ..leader.loop import serve_scheduler
from ..model import DesiredState, TaskState
from ..raft import commands as C
from ..raft import node as store_node
from ..raft.state import ClusterState
from ..raft.store import RaftStore, StoreConfig, open_raft_store

AGENT_MAX_BATCH = 64  # agent/worker.py's max_batch


class StoreManager:
    """What :class:`ServiceOps` reads of the daemon's cluster manager, over this process's store."""

    def __init__(self, store: RaftStore, config: Config) -> None:
        self.store = store
        self.config = config

    def snapshot(self) -> ClusterState:
        return self.store.snapshot()

    async def write(self, command: bytes) -> Any:
        return await self.store.write(command, timeout_s=self.config.raft.commit_timeout_s)


class SimAgents:
    """Simulated nodes' agents: a fake engine starts each task placed on a node at once and the node
    reports it running, at most ``AGENT_MAX_BATCH`` reports per command, through this store.

    They learn placements from the store's change stream (a real agent reads the same committed state)
    and never decide anything else; every write is ``store.write`` as the agent's ``ctx.write`` is."""

    def __init__(self, store: RaftStore, reporters: int) -> None:
        self.store = store
        self.reporters = reporters
        self.pending: dict[str, list[str]] = {}
        self.seen: set[str] = set()
        self.hosts: dict[str, Callable[[str], str]] = {}
        self.counters = {
            "placed_seen": 0,
            "reported": 0,
            "running": 0,
            "commands": 0,
            "bytes": 0,
            "errors": 0,
        }
        self.first_placed_at = 0.0
        self.last_placed_at = 0.0
        self.last_running_at = 0.0
        self.last_error = ""

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        send, ready = trio.open_memory_channel[str](math.inf)
        async with self.store.subscribe() as changes, trio.open_nursery() as nursery:
            for _ in range(self.reporters):
                nursery.start_soon(self._report, send, ready)
            task_status.started()
            async for change in changes:
                if change.kind == "reset":
                    continue
                task = change.record if change.kind == "task" and change.op == "put" else None
                if task is None or task.node_id is None or task.task_id in self.seen:
                    continue
                if task.state != TaskState.ASSIGNED or task.desired_state != DesiredState.RUNNING:
                    continue
                self.seen.add(task.task_id)
                now = time.monotonic()
                self.first_placed_at = self.first_placed_at or now
                self.last_placed_at = now
                self.counters["placed_seen"] += 1
                queued = task.node_id in self.pending
                self.pending.setdefault(task.node_id, []).append(task.task_id)
                if not queued:
                    send.send_nowait(task.node_id)

    async def _report(self, send: trio.MemorySendChannel[str], ready: trio.MemoryReceiveChannel[str]) -> None:
        async for node_id in ready:
            ids = self.pending.pop(node_id, [])
            batch, rest = ids[:AGENT_MAX_BATCH], ids[AGENT_MAX_BATCH:]
            if rest:
                self.pending[node_id] = rest
                send.send_nowait(node_id)
            if not batch:
                continue
            now = time.time()
            host = self._host_of(node_id)
            reports = tuple(
                C.TaskStatusReport(t, state=TaskState.RUNNING, state_at=now, address=host(t), container_id=t)
                for t in batch
            )
            data = C.ReportTaskStates(at=now, node_id=node_id, reports=reports).encode()
            try:
                value = await self.store.write(data, timeout_s=30.0)
            except P2POrchError as exc:
                self.counters["errors"] += 1
                self.last_error = f"{type(exc).__name__}: {exc.message}"
                continue
            self.counters["reported"] += len(batch)
            self.counters["running"] += len(value.get("applied", ()))
            self.counters["commands"] += 1
            self.counters["bytes"] += len(data)
            self.last_running_at = time.monotonic()

    def _host_of(self, node_id: str) -> Callable[[str], str]:
        """task id -> a distinct host address of the node's subnet (in order of first use)."""
        if node_id not in self.hosts:
            lease = self.store.snapshot().leases[node_id]
            self.hosts[node_id] = subnet_hosts(lease.subnet)
        return self.hosts[node_id]

    def status(self) -> dict[str, Any]:
        return self.counters | {
            "first_placed_at": self.first_placed_at,
            "last_placed_at": self.last_placed_at,
            "last_running_at": self.last_running_at,
            "now": time.monotonic(),
            "last_error": self.last_error,
        }


def subnet_hosts(subnet: str) -> Callable[[str], str]:
    """task id -> a distinct host address of ``subnet`` (in order of first use; simulated agents)."""
    base = int.from_bytes(bytes(int(o) for o in subnet.split("/")[0].split(".")), "big")
    given: dict[str, str] = {}

    def host(task_id: str) -> str:
        if task_id not in given:
            n = base + 2 + len(given)
            given[task_id] = ".".join(str(n >> s & 255) for s in (24, 16, 8, 0))
        return given[task_id]

    return host


class Member:
    """One control member: answers the store's control ops plus the simulated agents' two."""

    def __init__(self, store: RaftStore, nursery: trio.Nursery) -> None:
        self.store = store
        self.nursery = nursery
        self.agents: SimAgents | None = None

    async def handle(self, store: RaftStore, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        if op == "sim_agents":
            if self.agents is None:
                self.agents = SimAgents(store, int(req.get("reporters", 16)))
                await self.nursery.start(self.agents.run)
            return {"ok": True}
        if op == "sim_status":
            return {"ok": True, "agents": self.agents.status() if self.agents else None}
        return await store_node.handle(store, req)


def _context(store: RaftStore, config: StoreConfig) -> MemberContext:
    async def no_answer(host: str) -> dict[str, Any] | None:
        return None

    addr = config.self_addr or ""
    local = LocalNode(
        node_id=f"cp-{addr}",
        node_name=f"cp-{addr.replace(':', '-').replace('.', '-')}",
        advertise_addr=addr.rpartition(":")[0] or "127.0.0.1",
        raft_addr=addr,
        role="voter" if config.self_addr else "replica",
        generation=1,
        gossip_key=b"\0" * 32,
    )
    return MemberContext(
        store=store,
        voter_control=store,
        local=local,
        board=LocalBoard(),
        clock=SYSTEM_CLOCK,
        commit_timeout_s=Config().raft.commit_timeout_s,
        ask_member=no_answer,
    )


async def run(config: StoreConfig, control_port: int, control_host: str, api_socket: str) -> None:
    async with open_raft_store(config) as store, trio.open_nursery() as nursery:
        ctx = _context(store, config)
        await nursery.start(partial(serve_scheduler, ctx, SchedulerConfig()))
        ops = ServiceOps(cast(Any, StoreManager(store, Config())), cast(Any, None), clock=SYSTEM_CLOCK)
        await nursery.start(serve_api, service_endpoints(ops), api_socket)
        member = Member(store, nursery)
        listeners = await trio.open_tcp_listeners(control_port, host=control_host)
        port = listeners[0].socket.getsockname()[1]
        print(f'{{"ready": true, "control_port": {port}, "api_socket": "{api_socket}"}}', flush=True)
        handler = partial(store_node.serve_client, store, handler=member.handle)
        await trio.serve_listeners(handler, listeners)


def main(argv: list[str] | None = None) -> None:
    parser = store_node.arg_parser("python -m p2porch.testing.control_member")
    parser.add_argument("--api-socket", required=True, help="the service API's unix socket")
    args = parser.parse_args(argv)
    trio.run(run, store_node.store_config(args), args.control_port, args.control_host, args.api_socket)


if __name__ == "__main__":
    main()
