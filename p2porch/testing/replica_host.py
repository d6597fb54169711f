"""Several read-only replica stores in one process, for the control-plane benchmark (shell; tests only).

    python -m p2porch.testing.replica_host --voters ... --data-dir D --password-file F --stores K

Each store is what a non-voting node of a real cluster runs (``open_raft_store`` without ``self_addr``:
a read-only pysyncobj node the leader sends every append to, ``raft/heartbeats.py``), with its own data
directory ``D/s<k>``. Simulated nodes' agents (:class:`~p2porch.testing.sim_nodes.SimNodes`) live on
each store and write through it, as a real replica node's agent does. Control ops (JSON lines, the
:mod:`p2porch.raft.node` protocol): {"op": "statuses"} (one status per store), {"op": "sim_agents",
"nodes": [[ids of store 0], ...], "start_s": S}, {"op": "sim_status"} (summed), and every store op of
:mod:`p2porch.raft.node` on the first store. Never decides anything; the process exits when its parent
dies (``LocalCluster(die_with_parent=True)``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from functools import partial
from typing import Any

import trio

from ..raft import node as store_node
from ..raft.store import RaftStore, StoreConfig, open_raft_store
from .sim_nodes import SimNodes, merge_status


class ReplicaHost:
    """Answers the control ops of the module docstring over ``stores``."""

    def __init__(self, stores: list[RaftStore], nursery: trio.Nursery) -> None:
        self.stores = stores
        self.nursery = nursery
        self.agents: list[SimNodes] = []

    async def handle(self, store: RaftStore, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        if op == "statuses":
            return {
                "ok": True,
                "statuses": [(await store_node.handle(s, {"op": "status"}))["status"] for s in self.stores],
            }
        if op == "sim_agents":
            if not self.agents:
                start_s = float(req.get("start_s", 0.0))
                for s, nodes in zip(self.stores, req["nodes"], strict=True):
                    agents = SimNodes(s, nodes, start_s, bulk=bool(req.get("bulk")))
                    await self.nursery.start(agents.run)
                    self.agents.append(agents)
            return {"ok": True}
        if op == "sim_status":
            return {
                "ok": True,
                "agents": merge_status(a.status() for a in self.agents) if self.agents else None,
            }
        return await store_node.handle(store, req)


async def run(config: StoreConfig, stores: int, control_port: int, control_host: str) -> None:
    async with contextlib.AsyncExitStack() as stack:
        opened = []
        for k in range(stores):
            one = dataclasses.replace(config, data_dir=config.data_dir / f"s{k}")
            opened.append(await stack.enter_async_context(open_raft_store(one)))
        nursery = await stack.enter_async_context(trio.open_nursery())
        host = ReplicaHost(opened, nursery)
        listeners = await trio.open_tcp_listeners(control_port, host=control_host)
        port = listeners[0].socket.getsockname()[1]
        print(f'{{"ready": true, "control_port": {port}, "stores": {stores}}}', flush=True)
        handler = partial(store_node.serve_client, opened[0], handler=host.handle)
        await trio.serve_listeners(handler, listeners)


def main(argv: list[str] | None = None) -> None:
    parser = store_node.arg_parser("python -m p2porch.testing.replica_host")
    parser.add_argument("--stores", type=int, default=1, help="replica stores in this process")
    parser.add_argument(
        "--nice", type=int, default=0, help="lower this process's CPU priority by this much (os.nice)"
    )
    args = parser.parse_args(argv)
    store_node.use_daemon_switch_interval()
    if args.self_addr is not None:
        parser.error("--self: a replica host runs replicas only")
    if args.stores < 1:
        parser.error("--stores must be at least 1")
    if (
        args.nice
    ):  # the benchmark's stand-ins for other machines yield the CPU to the voters they share it with
        os.nice(args.nice)
    trio.run(run, store_node.store_config(args), args.stores, args.control_port, args.control_host)


if __name__ == "__main__":
    main()
