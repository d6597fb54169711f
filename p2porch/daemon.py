"""The p2porch daemon: one trio nursery that wires every subsystem (shell).

Owns the process lifecycle: the data-dir lock, the pid file, the control socket, signal handling and
the ordered start and stop of subsystems. It is the only module that wires packages together; it holds
no protocol or placement logic of its own.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import trio

from . import API_VERSION, __version__
from .api.server import Endpoint, serve_api
from .config import Config, config_to_dict
from .control.service_ops import ServiceOps
from .control.stack_ops import StackOps, stack_endpoints
from .datadir import DataDirLock
from .errors import ConfigError
from .leader.autopilot_loop import serve_autopilot
from .leader.loop import serve_scheduler
from .member.agent import serve_agent
from .member.dns import serve_cluster_dns
from .member.gossip import serve_gossip_membership
from .member.overlay import serve_overlay
from .membership.manager import ClusterManager

log = logging.getLogger(__name__)

StartFn = Callable[..., Awaitable[None]]


@dataclass
class _Subsystem:
    name: str
    scope: trio.CancelScope
    done: trio.Event = field(default_factory=trio.Event)


class Subsystems:
    """Starts long-running services in order and stops them in reverse order."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self._running: list[_Subsystem] = []

    async def start(self, name: str, fn: StartFn, *args: Any) -> Any:
        """Start ``fn(*args, task_status=...)``; returns once it reports started, so bind errors surface."""
        entry = _Subsystem(name, trio.CancelScope())

        async def runner(task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
            try:
                with entry.scope:
                    await fn(*args, task_status=task_status)
            finally:
                entry.done.set()

        value = await self._nursery.start(runner)
        self._running.append(entry)
        log.info("started %s", name)
        return value

    async def stop_all(self) -> None:
        for entry in reversed(self._running):
            entry.scope.cancel()
            with trio.move_on_after(10):
                await entry.done.wait()
            log.info("stopped %s", entry.name)
        self._running.clear()

    @property
    def names(self) -> list[str]:
        return [e.name for e in self._running]


class Daemon:
    """One node's daemon; its API endpoints read and drive the subsystems it wires."""

    def __init__(
        self,
        config: Config,
        *,
        pid_file: str | None = None,
        on_ready: Callable[[Daemon], Awaitable[None]] | None = None,
    ) -> None:
        self.config = config
        self.pid_file = pid_file
        self.node_name = config.node.name or _default_node_name()
        self.started_at = time.time()
        self.cluster = ClusterManager(
            config,
            self.node_name,
            member_services=[
                ("gossip", serve_gossip_membership),
                ("overlay", serve_overlay),
                ("dns", serve_cluster_dns),
                ("agent", serve_agent),
                ("scheduler", serve_scheduler),
                ("autopilot", serve_autopilot),
            ],
        )
        self.services = ServiceOps(self.cluster)
        self.stacks = StackOps(self.services)
        self._on_ready = on_ready
        self._lock = DataDirLock(config.node.data_dir)
        self._subsystems: Subsystems | None = None
        self._stop = trio.Event()

    # ----- lifecycle
    async def run(self) -> None:
        """Run until SIGTERM/SIGINT or :meth:`request_stop`; always releases lock, pid file and socket."""
        self._lock.acquire()
        try:
            self._write_pid_file()
            async with trio.open_nursery() as nursery:
                subsystems = Subsystems(nursery)
                self._subsystems = subsystems
                nursery.start_soon(self._watch_signals, nursery.cancel_scope)
                try:
                    await subsystems.start("cluster", self.cluster.run)
                    await subsystems.start("api", serve_api, self.endpoints(), self.config.api.socket)
                    log.info(
                        "p2porch %s daemon %s ready on unix://%s (data dir %s)",
                        __version__,
                        self.node_name,
                        self.config.api.socket,
                        self.config.node.data_dir,
                    )
                    if self._on_ready is not None:
                        await self._on_ready(self)
                    await self._stop.wait()
                finally:
                    with trio.CancelScope(shield=True):
                        await subsystems.stop_all()
                    nursery.cancel_scope.cancel()
        finally:
            self._remove_pid_file()
            self._lock.release()
            log.info("daemon stopped")

    def request_stop(self) -> None:
        self._stop.set()

    async def _watch_signals(self, scope: trio.CancelScope) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                log.info("received %s, stopping", signal.Signals(signum).name)
                self.request_stop()

    def _write_pid_file(self) -> None:
        if self.pid_file:
            os.makedirs(os.path.dirname(self.pid_file) or ".", exist_ok=True)
            tmp = f"{self.pid_file}.tmp"
            with open(tmp, "w") as handle:
                handle.write(f"{os.getpid()}\n")
            os.replace(tmp, self.pid_file)

    def _remove_pid_file(self) -> None:
        if self.pid_file:
            try:
                os.unlink(self.pid_file)
            except FileNotFoundError:
                pass

    # ----- API
    def endpoints(self) -> list[Endpoint]:
        cluster = self.cluster
        return [
            Endpoint("GET", "/version", self.api_version, "Daemon and API version"),
            Endpoint("GET", "/status", self.api_status, "Node and cluster status at a glance"),
            Endpoint("GET", "/config", self.api_config, "The daemon's effective configuration"),
            Endpoint("POST", "/cluster/init", lambda b, p: cluster.init(_node_body(b)), "Create a cluster"),
            Endpoint("POST", "/cluster/join", lambda b, p: cluster.join(_node_body(b)), "Join a cluster"),
            Endpoint("POST", "/cluster/leave", lambda b, p: cluster.leave(b), "Leave the cluster"),
            Endpoint(
                "POST",
                "/cluster/recover",
                lambda b, p: cluster.recover(b),
                "After quorum loss: restart the cluster from this node's state as its only voter",
            ),
            Endpoint("GET", "/token", self.api_token, "The current join token"),
            Endpoint("POST", "/token", self.api_token, 'Rotate the join token with {"rotate": true}'),
            Endpoint("GET", "/nodes", self.api_nodes, "List the cluster's nodes"),
            Endpoint("GET", "/nodes/{node}", self.api_node, "Inspect one node"),
            Endpoint("DELETE", "/nodes/{node}", self.api_node_rm, "Remove a node that left or is down"),
            Endpoint("POST", "/nodes/{node}/update", self.api_node_update, "Change availability or labels"),
            Endpoint(
                "GET", "/network", self.api_network, "This node's overlay: lease, VTEP, programmed peers"
            ),
            Endpoint("GET", "/events", self.api_events, "Stream cluster events (JSON lines)", streaming=True),
            *self.service_endpoints(),
            *stack_endpoints(self.stacks),
        ]

    def service_endpoints(self) -> list[Endpoint]:
        ops = self.services

        async def create(body: dict[str, Any], params: dict[str, str]) -> Any:
            return await ops.create(body)

        async def listing(body: dict[str, Any], params: dict[str, str]) -> Any:
            return ops.list_all()

        async def inspect(body: dict[str, Any], params: dict[str, str]) -> Any:
            return ops.view(ops.find(params["service"]))

        async def tasks(body: dict[str, Any], params: dict[str, str]) -> Any:
            return ops.tasks(
                params["service"], include_history=str(body.get("all", "true")).lower() != "false"
            )

        async def update(body: dict[str, Any], params: dict[str, str]) -> Any:
            return await ops.update(params["service"], body)

        async def scale(body: dict[str, Any], params: dict[str, str]) -> Any:
            return await ops.scale(params["service"], body.get("replicas"))

        async def rollback(body: dict[str, Any], params: dict[str, str]) -> Any:
            return await ops.rollback(params["service"])

        async def rebalance(body: dict[str, Any], params: dict[str, str]) -> Any:
            return await ops.rebalance(params["service"])

        async def remove(body: dict[str, Any], params: dict[str, str]) -> Any:
            return await ops.remove(params["service"])

        async def logs(body: dict[str, Any], params: dict[str, str]) -> Any:
            tail = body.get("tail")
            if tail is not None and not str(tail).isdigit():
                raise ConfigError("--tail must be a number of lines", field="--tail")
            follow = str(body.get("follow", "false")).lower() in ("1", "true", "yes")
            service = ops.find(params["service"])  # an unknown service is an error before the stream
            return partial(
                ops.logs, service.service_id, follow=follow, tail=int(tail) if tail is not None else None
            )

        return [
            Endpoint("POST", "/services", create, "Create a service from a spec"),
            Endpoint("GET", "/services", listing, "List services with running/desired counts"),
            Endpoint("GET", "/services/{service}", inspect, "Inspect a service"),
            Endpoint("GET", "/services/{service}/tasks", tasks, "A service's tasks (service ps)"),
            Endpoint("POST", "/services/{service}/update", update, "Change some fields of a service's spec"),
            Endpoint("POST", "/services/{service}/scale", scale, "Set a replicated service's replicas"),
            Endpoint("POST", "/services/{service}/rollback", rollback, "Go back to the previous spec"),
            Endpoint(
                "POST", "/services/{service}/rebalance", rebalance, "Spread tasks onto nodes that joined"
            ),
            Endpoint("DELETE", "/services/{service}", remove, "Remove a service and its tasks"),
            Endpoint(
                "GET",
                "/services/{service}/logs",
                logs,
                "Stream the logs of every task (JSON lines)",
                streaming=True,
            ),
        ]

    async def api_token(self, body: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        cluster = self.cluster
        cluster.require_store()
        token = await cluster.rotate_token() if body.get("rotate") else cluster.current_token()
        assert token is not None and cluster.local is not None
        join = join_command(cluster.local.advertise_addr, self.config.join.port, str(token))
        return {"token": str(token), "join_command": join}

    async def api_events(self, body: dict[str, Any], params: dict[str, str]) -> Any:
        self.cluster.require_store()
        return self.cluster.events

    async def api_network(self, body: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        self.cluster.require_store()
        overlay = self.cluster.overlay
        if overlay is None:
            return {"ready": False, "health": self.cluster.health.get("overlay", "not started")}
        return {"ready": True, **overlay.status()}

    async def api_nodes(self, body: dict[str, Any], params: dict[str, str]) -> list[dict[str, Any]]:
        return self.cluster.nodes()

    async def api_node(self, body: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        node = self.cluster.find_node(params["node"])
        store = self.cluster.require_store()
        return self.cluster.node_view(node, store.snapshot(), store.status().leader)

    async def api_node_update(self, body: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        return await self.cluster.update_node(params["node"], body)

    async def api_node_rm(self, body: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        return await self.cluster.remove_node(params["node"], bool(body.get("force")))

    async def api_version(self, body: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        return {"version": __version__, "api_version": API_VERSION}

    async def api_status(self, body: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        return {
            "node": {
                "name": self.node_name,
                "advertise_addr": self.config.node.advertise_addr or None,
                "data_dir": self.config.node.data_dir,
                "labels": self.config.node.labels,
            },
            "daemon": {
                "pid": os.getpid(),
                "version": __version__,
                "uptime_s": round(time.time() - self.started_at, 3),
                "subsystems": self._subsystems.names if self._subsystems else [],
            },
            "cluster": self.cluster.status(),
        }

    async def api_config(self, body: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        return config_to_dict(self.config)


def join_command(addr: str, port: int, token: str) -> str:
    return f"p2porch join {addr}:{port} --token {token}"


def _node_body(body: dict[str, Any]) -> dict[str, Any]:
    """Validate the node options of an init/join request (labels as a map of strings)."""
    labels = body.get("labels")
    if labels is not None and (
        not isinstance(labels, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items())
    ):
        raise ConfigError("labels must be a map of strings", field="labels")
    for key in ("name", "advertise_addr", "token", "peer", "domain", "cluster_cidr"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise ConfigError(f"{key} must be a string", field=key)
    return body


def _default_node_name() -> str:
    name = socket.gethostname().split(".")[0].lower()
    return "".join(c if c.isalnum() or c == "-" else "-" for c in name).strip("-") or "node"
