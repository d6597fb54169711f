"""The p2porch daemon: one trio nursery that wires every subsystem (shell).

Owns the process lifecycle: the data-dir lock, the pid file, the control socket, signal handling and
the ordered start and stop of subsystems. It is the only module that wires packages together; it holds
no protocol or placement logic of its own.
"""

from __future__ import annotations

import logging
import math
import os
import resource
import signal
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import trio
from starlette.routing import BaseRoute

from . import API_VERSION, __version__
from .api.server import Endpoint, serve_api
from .clock import SYSTEM_CLOCK, Clock
from .config import Config, config_to_dict
from .control.access_ops import AccessOps, access_endpoints
from .control.event_feed import serve_event_history
from .control.events import EventHistory
from .control.logs import LogOps
from .control.metrics_view import ClusterMetrics, metrics_route
from .control.network_ops import NetworkOps, network_endpoints
from .control.node_ops import NodeOps
from .control.read_barrier import ReadBarrier, linearizable_reads, linearizable_writes
from .control.remote_api import RemoteApi, remote_app
from .control.routes import cluster_endpoints, service_endpoints
from .control.secret_ops import SecretOps, secret_endpoints
from .control.service_ops import ServiceOps
from .control.stack_ops import StackOps, stack_endpoints
from .control.store_wait import waiting_for_store
from .control.usage_ops import USAGE_OP, UsageOps, usage_endpoints
from .datadir import DataDirLock
from .errors import DaemonError
from .host_shutdown import ASK_TIMEOUT_S, host_shutting_down
from .leader.autopilot_loop import serve_autopilot
from .leader.autoscale_loop import serve_autoscaler
from .leader.loop import serve_scheduler
from .leader.reseal import serve_reseal
from .member.agent import serve_agent
from .member.dns import serve_cluster_dns
from .member.gossip import announce_leave, announce_restart, serve_gossip_membership
from .member.netpolicy import serve_network_policy
from .member.overlay import serve_overlay
from .member.stats import serve_usage_sampler
from .member.traffic import serve_traffic
from .membership import removal
from .membership.manager import ClusterManager
from .membership.runtime import MemberService, secrets_key
from .memtrim import fix_mmap_threshold, limit_malloc_arenas, trim_heap_periodically
from .metrics import Metrics
from .model import Node
from .ui import PUBLIC_PATHS as UI_PUBLIC_PATHS
from .ui import PUBLIC_PREFIXES as UI_PUBLIC_PREFIXES
from .ui import ui_routes

log = logging.getLogger(__name__)


def raise_open_file_limit() -> tuple[int, int]:
    """Raise RLIMIT_NOFILE's soft limit to the hard limit; returns (before, after).

    Idle connections on one port must not use up the descriptors every other subsystem needs (each
    listener also has its own connection cap, docs/security.md)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == resource.RLIM_INFINITY or soft >= hard:
        return soft, soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:
        log.warning("could not raise the open-file limit from %d to %d: %s", soft, hard, exc)
        return soft, soft
    return soft, hard


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
        clock: Clock = SYSTEM_CLOCK,
        host_shutting_down: Callable[[], bool] = host_shutting_down,
    ) -> None:
        self.config = config
        self.pid_file = pid_file
        self._host_shutting_down = host_shutting_down  # asked (blocking) before a restart is announced
        self.node_name = config.node.name or _default_node_name()
        self.clock = clock
        self.metrics = Metrics()
        self.started_at = clock.monotonic()
        self.cluster = ClusterManager(
            config,
            self.node_name,
            member_services=member_services(config, self._usage_report),
            join_streams={"logs": lambda request: self.logs.local_logs(request)},
            join_ops={USAGE_OP: lambda request: self.usage.local_report(request)},
            clock=clock,
            metrics=self.metrics,
        )
        self.metrics.add_source(ClusterMetrics(self.cluster).collect)
        self.logs = LogOps(self.cluster)
        self.nodes = NodeOps(self.cluster)
        self.services = ServiceOps(self.cluster, self.logs, clock=clock)
        self.networks = NetworkOps(self.cluster, clock=clock)
        self.stacks = StackOps(self.services, self.networks)
        self.secrets = SecretOps(self.cluster, self._secrets_key, clock=clock)
        self.access = AccessOps(self.cluster, clock=clock)
        self.remote = RemoteApi(config.api, self.cluster, config.node.data_dir, self.node_name)
        self.reads = ReadBarrier(lambda: self.cluster.store)  # linearizable API reads (docs/raft.md)
        if config.api.addr:
            self.metrics.add_source(self.remote.collect_metrics)
        self.usage = UsageOps(self.cluster, clock=clock)
        self._on_ready = on_ready
        self._lock = DataDirLock(config.node.data_dir)
        self._subsystems: Subsystems | None = None
        self._stop = trio.Event()

    async def _usage_report(self, node: Node) -> dict[str, Any] | None:
        """A node's usage report, for the autoscaler (this node's own or over the join port)."""
        return await self.usage.node_report(node)

    def _secrets_key(self) -> tuple[int, bytes]:
        """(epoch, key) of the current cluster key epoch: new values are sealed under it."""
        local = self.cluster.local
        if local is None:
            raise DaemonError("this node is not in a cluster", field="cluster")
        return local.key_epoch, secrets_key(local.keys)

    # ----- lifecycle
    async def run(self) -> None:
        """Run until SIGTERM/SIGINT or :meth:`request_stop`; always releases lock, pid file and socket."""
        before, after = raise_open_file_limit()
        if after != before:
            log.info("open-file limit raised from %d to %d", before, after)
        if not limit_malloc_arenas():  # before the Raft and worker threads start: one malloc arena
            log.debug("mallopt is not available: each thread may get a malloc arena")
        fix_mmap_threshold()  # transient buffers of >= 64 KiB never in the brk heap (memtrim.py)
        self._lock.acquire()
        try:
            self._write_pid_file()
            async with trio.open_nursery() as nursery:
                subsystems = Subsystems(nursery)
                self._subsystems = subsystems
                nursery.start_soon(self._watch_signals, nursery.cancel_scope)
                try:
                    await subsystems.start("cluster", self.cluster.run)
                    await subsystems.start(
                        "api",
                        partial(
                            serve_api,
                            extra_routes=self.extra_routes(),
                            on_response=self._count_request,
                            request_timeout_s=self.config.api.request_timeout_s,
                            on_timeout=self.metrics.api_request_timeouts.labels("unix").inc,
                        ),
                        self.endpoints(),
                        self.config.api.socket,
                    )
                    if self.config.api.addr:
                        app = remote_app(
                            self.endpoints(),
                            self.access.verify,
                            extra_routes=[*self.extra_routes(), *ui_routes()],
                            public_prefixes=UI_PUBLIC_PREFIXES,
                            public_paths=UI_PUBLIC_PATHS,
                            on_response=self._count_request,
                            request_timeout_s=self.config.api.request_timeout_s,
                            on_timeout=self.metrics.api_request_timeouts.labels("tls").inc,
                        )
                        await subsystems.start("remote-api", self.remote.serve, app)
                    log.info(
                        "p2porch %s daemon %s ready on unix://%s (data dir %s)",
                        __version__,
                        self.node_name,
                        self.config.api.socket,
                        self.config.node.data_dir,
                    )
                    if self._on_ready is not None:
                        await self._on_ready(self)
                    nursery.start_soon(trim_heap_periodically)
                    await self._stop.wait()
                finally:
                    with trio.CancelScope(shield=True):
                        try:
                            if self._stop.is_set():  # an orderly stop (a signal): the node will be back
                                await self._announce_restart()
                        except Exception:  # never in the way of the stop: the node is then down as lost
                            log.warning("the restart announcement failed; stopping anyway", exc_info=True)
                        finally:  # whatever the announcement does, the subsystems stop
                            await subsystems.stop_all()
                    nursery.cancel_scope.cancel()
        finally:
            self._remove_pid_file()
            self._lock.release()
            log.info("daemon stopped")

    def request_stop(self) -> None:
        self._stop.set()

    async def _announce_restart(self) -> None:
        """Tell the cluster in gossip that this daemon stops to restart: the leader holds its node ready
        with its tasks for ``[scheduler] restart_grace_s`` (leader/restart_hold.py; nothing is announced
        when it is 0). A crash says nothing, nor does a stop that is part of a host shutdown
        (``host_shutdown.py``), whatever the grace: that one leaves gossip, so every member takes its
        tasks out of the DNS answers and backends at once and the leader marks it down (its containers
        stop with the host; ``member/held.py``). The question and the leave each have their own timeout:
        a slow answer never cuts the leave short."""
        grace_s = self.config.scheduler.restart_grace_s
        gossip = self.cluster.board.gossip
        if self.cluster.local is None or gossip is None:
            return
        shutting_down = False  # an init system that does not answer in time: unknown, taken as a restart
        with trio.move_on_after(2 * ASK_TIMEOUT_S):
            shutting_down = await trio.to_thread.run_sync(self._host_shutting_down, abandon_on_cancel=True)
        if shutting_down:
            log.info("the host is shutting down: no restart announced, leaving gossip (node down)")
            await announce_leave(gossip)  # bounded by its own timeout
            return
        if grace_s <= 0:
            return
        until = math.ceil(self.clock.now() + grace_s)
        log.info("announcing a restart in gossip: the node stays ready with its tasks for %.0f s", grace_s)
        await announce_restart(gossip, until)

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
        """The daemon's own routes, then the control API's tables."""
        cluster_tables = [
            *cluster_endpoints(self.cluster, self.nodes, self.services),
            *service_endpoints(self.services),
            *stack_endpoints(self.stacks),
            *secret_endpoints(self.secrets),
            *access_endpoints(self.access),
            Endpoint("GET", "/cluster/ca", self.api_cluster_ca, "The CA bundle remote clients pin"),
            *network_endpoints(self.networks),
            *usage_endpoints(self.usage),
        ]
        return [
            Endpoint("GET", "/version", self.api_version, "Daemon and API version"),
            Endpoint("GET", "/status", self.api_status, "Node and cluster status at a glance"),
            Endpoint("GET", "/config", self.api_config, "The daemon's effective configuration"),
            # a role or key switch restarts the store; then a read of cluster state, and a write through a
            # node that does not lead, waits for the barrier (docs/raft.md "Reads", "Writes")
            *waiting_for_store(
                self.cluster,
                linearizable_writes(self.reads, linearizable_reads(self.reads, cluster_tables)),
            ),
        ]

    def extra_routes(self) -> list[BaseRoute]:
        """Routes outside /v1: ``/metrics`` (Prometheus text; on TCP any valid token may scrape)."""
        return [metrics_route(self.metrics)]

    def _count_request(self, route: str, method: str, code: int) -> None:
        self.metrics.api_requests.labels(route, method, str(code)).inc()

    async def api_cluster_ca(self, body: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        return self.remote.ca_info()

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
                "uptime_s": round(self.clock.monotonic() - self.started_at, 3),
                "subsystems": self._subsystems.names if self._subsystems else [],
            },
            "cluster": self.nodes.status(),
            "removed": None if self.cluster.local else removal.status(self.config.node.data_dir),
            "remote_api": self.remote.status() if self.config.api.addr else None,
        }

    async def api_config(self, body: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        return config_to_dict(self.config)


def member_services(
    config: Config, usage_fetch: Callable[[Node], Awaitable[dict[str, Any] | None]] | None = None
) -> list[tuple[str, MemberService]]:
    """The member services in start order, each bound to its config section; ``usage_fetch`` (a node's
    usage report) feeds the autoscaler, which does not run without it."""
    services: list[tuple[str, MemberService]] = [
        ("gossip", partial(serve_gossip_membership, section=config.gossip)),
        (
            "overlay",
            partial(
                serve_overlay,
                section=config.overlay,
                dns_port=config.dns.port,
                docker_host=config.node.docker_host,
            ),
        ),
        ("dns", partial(serve_cluster_dns, section=config.dns)),
        ("traffic", serve_traffic),
        ("netpolicy", serve_network_policy),
        (
            "agent",
            partial(
                serve_agent,
                docker_host=config.node.docker_host,
                task_files_dir=os.path.join(os.path.dirname(config.api.socket), "task-files"),
                drain_s=config.dns.drain_s,
                drain_grace_s=config.overlay.drain_grace_s,
                drain_max_s=config.overlay.drain_max_s,
                listen_max_s=config.overlay.listen_max_s,
            ),
        ),
        ("stats", partial(serve_usage_sampler, section=config.autoscale)),
        ("scheduler", partial(serve_scheduler, section=config.scheduler)),
        ("autopilot", partial(serve_autopilot, section=config.raft)),
        ("reseal", serve_reseal),
        # this node's events, kept for events --since while the daemon runs (in memory, as Docker's)
        ("events", partial(serve_event_history, history=EventHistory())),
    ]
    if usage_fetch is not None:
        services.append(
            ("autoscaler", partial(serve_autoscaler, section=config.autoscale, fetch=usage_fetch))
        )
    return services


def _default_node_name() -> str:
    name = socket.gethostname().split(".")[0].lower()
    return "".join(c if c.isalnum() or c == "-" else "-" for c in name).strip("-") or "node"
