"""Simulated nodes for the control-plane benchmark: each node's agent reports through one store (shell).

A real node's agent (``member/agent.py`` + ``agent/worker.py``) sees its task placed in its own store,
reports it STARTING, starts the container, reports it RUNNING, and delivers its reports in batches of
its own (``agent/report_window.py``: 0.1 s after a batch's first report, up to 1 s while it holds only
STARTING reports, or 64 reports; one batch in flight per node, newest report per task wins) through
``ctx.write``: ``store.write``, forwarded to the leader by pysyncobj when the store does not lead.
:class:`SimNodes` does the same for a set of nodes hosted on one store, with the agent's own
batching code (one :class:`~p2porch.agent.worker.NodeAgent` per node, only its report queue and flush
loop run) and a fake engine whose start takes ``start_s``. It never plans a node (``plan_node`` and the
node's assignment view are each node's own CPU in a real cluster) and never decides anything else.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable, Iterable
from typing import Any, cast

import trio

from ..agent.model import TaskReport
from ..agent.worker import NodeAgent
from ..member.views import status_report
from ..model import DesiredState, TaskState
from ..raft import commands as C
from ..raft.store import RaftStore

COMMIT_TIMEOUT_S = 30.0
FLUSH_INTERVAL_S = 0.1  # agent/worker.py's defaults, as member/agent.py runs it
MAX_BATCH = 64
# ``bulk``: the benchmark's quick way to the same state (docs/performance.md, the tenth round): no
# STARTING report, RUNNING at once, a node's reports gathered for a second into one command
BULK_FLUSH_INTERVAL_S = 1.0
BULK_MAX_BATCH = 4096


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


class SimNodes:
    """The agents of ``node_ids``, all writing through ``store`` (see the module docstring).

    Counters: ``placed_seen`` (tasks seen placed on these nodes), ``starting``/``running`` (reports of
    that state the FSM applied), ``commands``/``bytes`` (report commands written), ``failures``
    (deliveries that failed and were retried by the agent's flush loop)."""

    def __init__(self, store: RaftStore, node_ids: Iterable[str], start_s: float, bulk: bool = False) -> None:
        self.store = store
        self.start_s = start_s
        self.bulk = bulk
        self.node_ids = set(node_ids)
        self.agents: dict[str, NodeAgent] = {}
        self.seen: set[str] = set()
        self.hosts: dict[str, Callable[[str], str]] = {}
        self.counters = dict.fromkeys(("placed_seen", "starting", "running", "commands", "bytes"), 0)
        self.first_placed_at = 0.0
        self.last_placed_at = 0.0
        self.last_running_at = 0.0
        self.last_error = ""

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        # (due on trio's clock, node, task): FIFO, as every start takes the same time
        starts: collections.deque[tuple[float, str, str]] = collections.deque()
        started = trio.Event()
        async with self.store.subscribe() as changes, trio.open_nursery() as nursery:
            for node_id in sorted(self.node_ids):
                agent = NodeAgent(
                    cast(Any, None),  # no engine: only the report queue and flush loop run
                    node_id,
                    list,
                    self._reporter(node_id),
                    flush_interval_s=BULK_FLUSH_INTERVAL_S if self.bulk else FLUSH_INTERVAL_S,
                    max_batch=BULK_MAX_BATCH if self.bulk else MAX_BATCH,
                )
                self.agents[node_id] = agent
                nursery.start_soon(agent._flush_loop)  # the agent's own batching and retry
            nursery.start_soon(self._engine, starts, lambda: started)
            task_status.started()
            async for change in changes:
                if change.kind != "task" or change.op != "put":
                    continue
                task = change.record
                if task.node_id not in self.node_ids or task.task_id in self.seen:
                    continue
                if task.state != TaskState.ASSIGNED or task.desired_state != DesiredState.RUNNING:
                    continue
                self.seen.add(task.task_id)
                now = time.monotonic()
                self.first_placed_at = self.first_placed_at or now
                self.last_placed_at = now
                self.counters["placed_seen"] += 1
                agent = self.agents[task.node_id]
                if self.bulk:  # the record a STARTING then RUNNING pair leaves, in one report
                    self._running(task.node_id, task.task_id)
                    continue
                agent._record(TaskReport(task.task_id, TaskState.STARTING, time.time()))  # plan_node's
                starts.append((trio.current_time() + self.start_s, task.node_id, task.task_id))
                started.set()
                started = trio.Event()

    async def _engine(
        self, starts: collections.deque[tuple[float, str, str]], wake: Callable[[], trio.Event]
    ) -> None:
        """The fake engine: each start completes ``start_s`` after it began (in order: same delay)."""
        while True:
            while not starts:
                await wake().wait()
            due, node_id, task_id = starts[0]
            if due > trio.current_time():
                await trio.sleep_until(due)
                continue
            starts.popleft()
            self._running(node_id, task_id)

    def _running(self, node_id: str, task_id: str) -> None:
        host = self._host_of(node_id)
        report = TaskReport(
            task_id, TaskState.RUNNING, time.time(), container_id=task_id, address=host(task_id)
        )
        self.agents[node_id]._record(report)  # outcome_report's RUNNING

    def _reporter(self, node_id: str) -> Callable[[list[TaskReport]], Any]:
        async def report(reports: list[TaskReport]) -> None:  # member/agent.py's report()
            command = C.ReportTaskStates(
                at=time.time(), node_id=node_id, reports=tuple(status_report(r) for r in reports)
            )
            data = command.encode()
            try:
                value = await self.store.write(data, timeout_s=COMMIT_TIMEOUT_S)
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                raise  # the flush loop logs, re-queues and retries, as for a real agent
            applied = set(value.get("applied", ()))
            for r in reports:
                if r.task_id in applied:
                    key = "running" if r.state == TaskState.RUNNING else "starting"
                    self.counters[key] += 1
            self.counters["commands"] += 1
            self.counters["bytes"] += len(data)
            if any(r.state == TaskState.RUNNING for r in reports):
                self.last_running_at = time.monotonic()

        return report

    def _host_of(self, node_id: str) -> Callable[[str], str]:
        if node_id not in self.hosts:
            self.hosts[node_id] = subnet_hosts(self.store.snapshot().leases[node_id].subnet)
        return self.hosts[node_id]

    def status(self) -> dict[str, Any]:
        failures = sum(a.report_failures for a in self.agents.values())
        return self.counters | {
            "nodes": len(self.node_ids),
            "failures": failures,
            "first_placed_at": self.first_placed_at,
            "last_placed_at": self.last_placed_at,
            "last_running_at": self.last_running_at,
            "last_error": self.last_error,
        }


def merge_status(parts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The sum of several :meth:`SimNodes.status` (times: the latest; CLOCK_MONOTONIC is system-wide)."""
    out: dict[str, Any] = {"last_error": ""}
    for part in parts:
        for key, value in part.items():
            if key == "last_error":
                out[key] = out[key] or value
            elif key == "first_placed_at":
                out[key] = min(out.get(key) or math.inf, value or math.inf)
            elif key.endswith("_at"):
                out[key] = max(out.get(key, 0.0), value)
            else:
                out[key] = out.get(key, 0) + value
    if out.get("first_placed_at") == math.inf:
        out["first_placed_at"] = 0.0
    return out
