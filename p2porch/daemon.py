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
from typing import Any

import trio

from . import API_VERSION, __version__
from .api.server import Endpoint, serve_api
from .config import Config, config_to_dict
from .datadir import DataDirLock

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

    def __init__(self, config: Config, *, pid_file: str | None = None) -> None:
        self.config = config
        self.pid_file = pid_file
        self.node_name = config.node.name or _default_node_name()
        self.started_at = time.time()
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
                    await subsystems.start("api", serve_api, self.endpoints(), self.config.api.socket)
                    log.info(
                        "p2porch %s daemon %s ready on unix://%s (data dir %s)",
                        __version__,
                        self.node_name,
                        self.config.api.socket,
                        self.config.node.data_dir,
                    )
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
        return [
            Endpoint("GET", "/version", self.api_version, "Daemon and API version"),
            Endpoint("GET", "/status", self.api_status, "Node and cluster status at a glance"),
            Endpoint("GET", "/config", self.api_config, "The daemon's effective configuration"),
        ]

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
            "cluster": None,
        }

    async def api_config(self, body: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        return config_to_dict(self.config)


def _default_node_name() -> str:
    name = socket.gethostname().split(".")[0].lower()
    return "".join(c if c.isalnum() or c == "-" else "-" for c in name).strip("-") or "node"
