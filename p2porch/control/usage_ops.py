"""Live resource usage behind the API and the join port: `service stats`, `node stats`, `service ps` CPU and
memory, the autoscaler's recommendation (shell).

Each node keeps its own tasks' recent usage (``board.usage``, filled by ``member/stats.py``) and answers
the ``usage`` join-port request with it; while it leads, the answer also carries the autoscaler's latest
decisions. This module asks the nodes (this node's own book directly, others over the join port, in
parallel, each bounded by ``ASK_TIMEOUT_S``) and presents the answers with percentages of the tasks'
limits. It never writes to Raft.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import trio

from ..api.server import Endpoint
from ..clock import SYSTEM_CLOCK, Clock
from ..errors import P2POrchError, no_such
from ..leader.autoscale_inputs import limits_of
from ..leader.autoscale_loop import gather_reports
from ..membership.join_service import request_join
from ..model import Node
from ..raft.state import ClusterState
from .service_names import service_by_swarm_name

if TYPE_CHECKING:
    from ..membership.manager import ClusterManager

__all__ = ["ASK_TIMEOUT_S", "USAGE_OP", "UsageOps", "usage_endpoints"]

USAGE_OP = "usage"
ASK_TIMEOUT_S = 3.0


def _percent(value: Any, limit: float | None) -> float | None:
    if not limit or not isinstance(value, int | float):
        return None
    return round(100.0 * float(value) / limit, 1)


class UsageOps:
    """Asks nodes for their tasks' usage and presents it; never writes state."""

    def __init__(self, cluster: ClusterManager, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.cluster = cluster
        self.clock = clock

    # ----- this node
    async def local_report(self, request: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """This node's answer to ``usage``: its book's report and, while it leads, the autoscaler's
        decisions (``autoscale``: service id -> decision)."""
        board = self.cluster.board
        book = board.usage
        report: dict[str, Any] = (
            book.report(self.clock.monotonic())
            if book is not None
            else {
                "window_s": None,
                "sample_s": None,
                "dropped": 0,
                "tasks": [],
                "unavailable": "not sampling",
            }
        )
        local = self.cluster.local
        report["node_id"] = local.node_id if local is not None else ""
        store = self.cluster.store
        if store is not None and store.status().is_leader:
            report["autoscale"] = dict(board.autoscale)
        return report

    async def node_report(self, node: Node) -> dict[str, Any] | None:
        """One node's report (None when it does not answer within ``ASK_TIMEOUT_S``, or when another node
        answers). Asked at its advertised join port (``join_target``): behind a NAT several nodes share
        one address, and the cluster's default port there is another node's forward."""
        local = self.cluster.local
        if local is None:
            return None
        if node.node_id == local.node_id:
            return await self.local_report()
        try:
            answer = await request_join(
                node.join_target,
                self.cluster.join_port,
                local.keys,
                {"op": USAGE_OP},
                timeout_s=ASK_TIMEOUT_S,
                member=True,
            )
        except P2POrchError:
            return None
        if not isinstance(answer, dict) or answer.get("node_id") not in (None, "", node.node_id):
            return None  # another node's book is not this node's usage
        return answer

    async def _reports(self, nodes: Iterable[Node]) -> dict[str, Mapping[str, Any] | None]:
        return await gather_reports(self.node_report, [n for n in nodes if n.status != "left"])

    # ----- presented
    @staticmethod
    def task_rows(
        state: ClusterState, reports: Mapping[str, Mapping[str, Any] | None]
    ) -> dict[str, dict[str, Any]]:
        """task id -> usage with percent of its limit, for the tasks some report has."""
        out: dict[str, dict[str, Any]] = {}
        limits: dict[str, tuple[float | None, int | None]] = {}
        for report in reports.values():
            for row in (report or {}).get("tasks") or ():
                task = state.tasks.get(str(row.get("task_id")))
                if task is None:
                    continue
                if task.service_id not in limits:
                    service = state.services.get(task.service_id)
                    limits[task.service_id] = limits_of(service.spec) if service else (None, None)
                cpu_limit, memory_limit = limits[task.service_id]
                out[task.task_id] = {
                    "cpu_cores": row.get("cpu_cores"),
                    "cpu_percent": _percent(row.get("cpu_cores"), cpu_limit),
                    "memory_bytes": row.get("memory_bytes"),
                    "memory_percent": _percent(row.get("memory_bytes"), memory_limit),
                    "covered_s": row.get("covered_s"),
                    "full": bool(row.get("full")),
                }
        return out

    async def service_task_usage(self, service_id: str) -> dict[str, dict[str, Any]]:
        """Usage of one service's tasks (for ``service ps``)."""
        state = self.cluster.snapshot()
        node_ids = {t.node_id for t in state.tasks_of_service(service_id) if t.node_id}
        reports = await self._reports(state.nodes[n] for n in node_ids if n in state.nodes)
        return self.task_rows(state, reports)

    async def service_stats(self, service_ids: list[str]) -> list[dict[str, Any]]:
        """Per service: running tasks, tasks with usage, CPU (cores, mean % of limit), memory."""
        state = self.cluster.snapshot()
        node_ids = {t.node_id for sid in service_ids for t in state.tasks_of_service(sid) if t.node_id}
        reports = await self._reports(state.nodes[n] for n in node_ids if n in state.nodes)
        rows = self.task_rows(state, reports)
        out = []
        for sid in service_ids:
            service = state.services[sid]
            running = [
                t
                for t in state.tasks_of_service(sid)
                if t.desired_state == "running" and t.state == "running"
            ]
            used = [
                rows[t.task_id]
                for t in running
                if t.task_id in rows and rows[t.task_id]["cpu_cores"] is not None
            ]

            def mean(key: str, rows_: list[dict[str, Any]] = used) -> float | None:
                values = [r[key] for r in rows_ if r[key] is not None]
                return round(sum(values) / len(values), 1) if values else None

            out.append(
                {
                    "service": service.name,
                    "id": sid,
                    "tasks_running": len(running),
                    "tasks_reporting": len(used),
                    "cpu_cores": round(sum(r["cpu_cores"] for r in used), 4) if used else None,
                    "cpu_percent": mean("cpu_percent"),
                    "memory_bytes": sum(r["memory_bytes"] or 0 for r in used) if used else None,
                    "memory_percent": mean("memory_percent"),
                    "nodes_unanswered": sorted(
                        state.nodes[n].name for n, r in reports.items() if r is None and n in state.nodes
                    ),
                }
            )
        return out

    async def node_stats(self, node_ids: list[str]) -> list[dict[str, Any]]:
        """Per node: tasks sampled, CPU cores and memory they use, and as percent of the node's capacity.
        Only the tasks the state has running there count: a node's book keeps a stopped (or removed)
        task's window until its next sample, ``node stats`` must not (as ``service stats``); a node
        removed since ``node_ids`` were read is left out."""
        state = self.cluster.snapshot()
        node_ids = [n for n in node_ids if n in state.nodes]
        reports = await self._reports(state.nodes[n] for n in node_ids)
        running = {
            (t.node_id, t.task_id)
            for t in state.tasks.values()
            if t.desired_state == "running" and t.state == "running"
        }
        out = []
        for node_id in node_ids:
            node = state.nodes[node_id]
            report = reports.get(node_id)
            tasks = [
                r
                for r in (report or {}).get("tasks") or ()
                if r.get("cpu_cores") is not None and (node_id, str(r.get("task_id"))) in running
            ]
            cpu = sum(float(r["cpu_cores"]) for r in tasks)
            memory = sum(int(r.get("memory_bytes") or 0) for r in tasks)
            out.append(
                {
                    "node": node.name,
                    "id": node_id,
                    "answered": report is not None,
                    "tasks": len(tasks),
                    "cpu_cores": round(cpu, 4) if report is not None else None,
                    "cpu_percent": _percent(cpu, node.cpu_nanos / 1e9) if report is not None else None,
                    "memory_bytes": memory if report is not None else None,
                    "memory_percent": _percent(memory, node.memory_bytes) if report is not None else None,
                    "window_s": (report or {}).get("window_s"),
                }
            )
        return out

    async def autoscale_status(self, service_id: str) -> dict[str, Any]:
        """The leader's latest decision for a service, or why there is none."""
        store = self.cluster.require_store()
        state, leader = store.snapshot(), store.status().leader
        node = next((n for n in state.nodes.values() if leader and n.raft_addr == leader), None)
        if node is None:
            return {"available": False, "reason": "no leader known to this node"}
        with trio.move_on_after(ASK_TIMEOUT_S + 1):
            report = await self.node_report(node)
            if report is None:
                return {"available": False, "reason": f"the leader {node.name} did not answer"}
            decision = (report.get("autoscale") or {}).get(service_id)
            if decision is None:
                return {
                    "available": False,
                    "leader": node.name,
                    "reason": "the leader has not decided yet: it decides every autoscale.sync_s",
                }
            return {"available": True, "leader": node.name, **decision}
        return {"available": False, "reason": f"the leader {node.name} did not answer in time"}

    def service_ids(self, state: ClusterState, ref: str | None) -> list[str]:
        if ref is None:
            return [s.service_id for s in sorted(state.services.values(), key=lambda s: s.name)]
        service = state.service_by_name(ref) or state.services.get(ref) or service_by_swarm_name(state, ref)
        if service is None:
            raise no_such("service", ref, field="SERVICE")
        return [service.service_id]

    def node_ids(self, state: ClusterState, ref: str | None) -> list[str]:
        if ref is None:
            return [
                n.node_id for n in sorted(state.nodes.values(), key=lambda n: n.name) if n.status != "left"
            ]
        node = state.node_by_name(ref) or state.nodes.get(ref)
        if node is None:
            raise no_such("node", ref, field="NODE")
        return [node.node_id]


def usage_endpoints(ops: UsageOps) -> list[Endpoint]:
    """Service and node stats, a service's task usage and its autoscaler decision."""

    async def services(body: dict[str, Any], params: dict[str, str]) -> Any:
        ref = body.get("service")
        return await ops.service_stats(ops.service_ids(ops.cluster.snapshot(), str(ref) if ref else None))

    async def nodes(body: dict[str, Any], params: dict[str, str]) -> Any:
        ref = body.get("node")
        return await ops.node_stats(ops.node_ids(ops.cluster.snapshot(), str(ref) if ref else None))

    async def task_usage(body: dict[str, Any], params: dict[str, str]) -> Any:
        (sid,) = ops.service_ids(ops.cluster.snapshot(), params["service"])
        return await ops.service_task_usage(sid)

    async def autoscale(body: dict[str, Any], params: dict[str, str]) -> Any:
        (sid,) = ops.service_ids(ops.cluster.snapshot(), params["service"])
        return await ops.autoscale_status(sid)

    return [
        Endpoint("GET", "/stats/services", services, "Live CPU/memory of services (service stats)"),
        Endpoint("GET", "/stats/nodes", nodes, "Live CPU/memory of the tasks on each node (node stats)"),
        Endpoint("GET", "/services/{service}/usage", task_usage, "Live CPU/memory of a service's tasks"),
        Endpoint("GET", "/services/{service}/autoscale", autoscale, "The autoscaler's latest decision"),
    ]
