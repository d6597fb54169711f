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
{"op": "sim_agents", "nodes": [ids], "start_s": S} starts them (:class:`~p2porch.testing.sim_nodes.
SimNodes`); {"op": "views", "node_id": ID} rebuilds node ID's DNS, ingress/VIP, overlay and policy
views on every burst of commits as a daemon does (:mod:`p2porch.testing.member_views`);
{"op": "sim_status"} reads the agents' and views' counters. ``--views ID`` starts node ID's views with
the process, before it answers, as a daemon starts its member services (so a restarted member runs them
as its first start did). The process exits when its parent dies (``LocalCluster(die_with_parent=True)``).
"""

from __future__ import annotations

import dataclasses
import gc
from functools import partial
from typing import Any, cast

import trio

from ..api.server import serve_api
from ..clock import SYSTEM_CLOCK
from ..config import Config, SchedulerConfig
from ..context import LocalBoard, LocalNode, MemberContext
from ..control.routes import service_endpoints
from ..control.service_ops import ServiceOps
from ..cpu_sampler import start_from_env as start_cpu_sampler
from ..leader.loop import serve_scheduler
from ..raft import node as store_node
from ..raft.state import ClusterState
from ..raft.store import RaftStore, StoreConfig, open_raft_store
from .gc_pauses import GcPauses, install
from .member_views import ViewCounters, serve_views
from .sim_nodes import SimNodes
from .trio_watch import TrioWatch, trio_watch_threshold


class StoreManager:
    """What :class:`ServiceOps` reads of the daemon's cluster manager, over this process's store."""

    def __init__(self, store: RaftStore, config: Config) -> None:
        self.store = store
        self.config = config

    def snapshot(self) -> ClusterState:
        return self.store.snapshot()

    def require_store(self) -> RaftStore:
        return self.store

    async def write(self, command: bytes) -> Any:
        return await self.store.write(command, timeout_s=self.config.raft.commit_timeout_s)


class Member:
    """One control member: answers the store's control ops plus the simulated agents' two."""

    def __init__(self, store: RaftStore, nursery: trio.Nursery, watch: TrioWatch | None = None) -> None:
        self.store = store
        self.nursery = nursery
        self.agents: SimNodes | None = None
        self.views: ViewCounters | None = None
        self.watch = watch
        self.gc = GcPauses()
        install(self.gc)

    async def start_views(self, node_id: str) -> None:
        """Rebuild ``node_id``'s views on every burst of commits from now on (once per process)."""
        if self.views is None:
            self.views = ViewCounters()
            await self.nursery.start(serve_views, self.store, node_id, self.views)

    async def handle(self, store: RaftStore, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        if op == "sim_agents":
            if self.agents is None:
                start_s, bulk = float(req.get("start_s", 0.0)), bool(req.get("bulk"))
                self.agents = SimNodes(store, req["nodes"], start_s, bulk=bulk)
                await self.nursery.start(self.agents.run)
            return {"ok": True}
        if op == "views":
            await self.start_views(str(req["node_id"]))
            return {"ok": True}
        if op == "sim_status":
            views = self.views.status() if self.views else None
            agents = self.agents.status() if self.agents else None
            lates = [dataclasses.asdict(b) for b in self.watch.lates] if self.watch else None
            return {
                "ok": True,
                "agents": agents,
                "views": views,
                "gc": self.gc.summary() | {"threshold": gc.get_threshold(), "frozen": gc.get_freeze_count()},
                "trio_watch": lates,
            }
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


async def run(
    config: StoreConfig, control_port: int, control_host: str, api_socket: str, views: str | None = None
) -> None:
    async with open_raft_store(config) as store, trio.open_nursery() as nursery:
        ctx = _context(store, config)
        watch = None
        if threshold := trio_watch_threshold():  # diagnostics: where a late trio thread is (trio_watch.py)
            watch = TrioWatch(threshold)
            await nursery.start(watch.run)
        await nursery.start(partial(serve_scheduler, ctx, SchedulerConfig()))
        ops = ServiceOps(cast(Any, StoreManager(store, Config())), cast(Any, None), clock=SYSTEM_CLOCK)
        await nursery.start(serve_api, service_endpoints(ops), api_socket)
        member = Member(store, nursery, watch)
        if views is not None:
            await member.start_views(views)
        listeners = await trio.open_tcp_listeners(control_port, host=control_host)
        port = listeners[0].socket.getsockname()[1]
        print(f'{{"ready": true, "control_port": {port}, "api_socket": "{api_socket}"}}', flush=True)
        handler = partial(store_node.serve_client, store, handler=member.handle)
        await trio.serve_listeners(handler, listeners)


def main(argv: list[str] | None = None) -> None:
    parser = store_node.arg_parser("python -m p2porch.testing.control_member")
    parser.add_argument("--api-socket", required=True, help="the service API's unix socket")
    parser.add_argument(
        "--views", default=None, metavar="NODE_ID", help="run this node's views from the start"
    )
    args = parser.parse_args(argv)
    store_node.use_daemon_switch_interval()
    start_cpu_sampler()  # P2PORCH_CPU_PROFILE, as the daemon (cpu_sampler.py: by each thread's own CPU)
    config = store_node.store_config(args)
    trio.run(run, config, args.control_port, args.control_host, args.api_socket, args.views)


if __name__ == "__main__":
    main()
