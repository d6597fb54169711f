"""``p2porch service stats [S]`` and ``p2porch node stats [N]``: live CPU and memory like ``docker stats``;
the usage columns of ``service ps`` and the autoscaler lines of ``service inspect`` (shell).

Usage is each node's mean over its sampling window (``autoscale.window_s``, default 30 s); CPU percent is of
the tasks' CPU limit (or reservation), node CPU percent of the node's CPUs. With ``--watch`` the first poll
passes the daemon's read barrier (it sees a service or node just made through another node) and the later
ones read the daemon's own copy (``stale``): a barrier round is a Raft entry, one per poll for as long as the
watch runs, while the figures are each node's live samples whatever the copy's age.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from ..model import format_bytes
from .util import EXIT_OK, client_for, emit, positive_seconds, table, wants_json

__all__ = ["add_node_stats", "add_service_stats", "autoscale_lines", "usage_cells"]

SERVICE_STATS_COLUMNS = ["name", "tasks", "cpu", "cpu % limit", "mem", "mem % limit", "unanswered"]
NODE_STATS_COLUMNS = ["node", "tasks", "cpu", "cpu % node", "mem", "mem % node"]


def _cores(value: Any) -> str:
    return "-" if value is None else f"{float(value):.3f}"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f}%"


def _mem(value: Any) -> str:
    return "-" if value is None else format_bytes(int(value))


def usage_cells(usage: dict[str, Any] | None) -> list[str]:
    """CPU and MEM cells of one task in ``service ps`` (``-`` before its first sample)."""
    if not usage or usage.get("cpu_cores") is None:
        return ["-", "-"]
    cpu = _cores(usage["cpu_cores"]) + (
        f" ({_pct(usage['cpu_percent'])})" if usage.get("cpu_percent") else ""
    )
    mem = _mem(usage.get("memory_bytes")) + (
        f" ({_pct(usage['memory_percent'])})" if usage.get("memory_percent") else ""
    )
    return [cpu, mem]


def autoscale_lines(status: dict[str, Any]) -> list[str]:
    """The autoscaler's latest decision as ``service inspect`` prints it."""
    if not status.get("available"):
        return [f"Recommendation: none yet ({status.get('reason', 'unknown')})"]
    verb = "scaling" if status.get("changes") else "holding at"
    target = (
        f"{status['current']} -> {status['desired']}" if status.get("changes") else str(status["current"])
    )
    raw = "" if status.get("recommended") is None else f"raw {status['recommended']}, "
    return [
        f"Recommendation: {verb} {target} ({raw}leader {status.get('leader')})",
        f"  because: {status.get('reason')}",
    ]


def _service_rows(rows: list[dict[str, Any]]) -> str:
    return table(
        SERVICE_STATS_COLUMNS,
        [
            [
                r["service"],
                f"{r['tasks_reporting']}/{r['tasks_running']}",
                _cores(r["cpu_cores"]),
                _pct(r["cpu_percent"]),
                _mem(r["memory_bytes"]),
                _pct(r["memory_percent"]),
                ",".join(r["nodes_unanswered"]) or "",
            ]
            for r in rows
        ],
    )


def _node_rows(rows: list[dict[str, Any]]) -> str:
    return table(
        NODE_STATS_COLUMNS,
        [
            [
                r["node"] + ("" if r["answered"] else " (no answer)"),
                r["tasks"],
                _cores(r["cpu_cores"]),
                _pct(r["cpu_percent"]),
                _mem(r["memory_bytes"]),
                _pct(r["memory_percent"]),
            ]
            for r in rows
        ],
    )


def _watch(
    args: argparse.Namespace, fetch: Callable[[dict[str, str]], Any], render: Callable[[Any], str]
) -> int:
    """Print once, or with --watch every ``--interval`` seconds until interrupted (JSON: one line each);
    ``fetch(params)`` gets ``stale=true`` from the second poll on."""
    params: dict[str, str] = {}
    while True:
        data = fetch(params)
        params = {"stale": "true"}
        if args.watch and not wants_json(args):
            print("\033[2J\033[H", end="")  # clear the screen as `docker stats` does
        emit(args, data, render)
        if not args.watch:
            return EXIT_OK
        try:
            time.sleep(args.interval)
        except KeyboardInterrupt:
            return EXIT_OK


def cmd_service_stats(args: argparse.Namespace) -> int:
    client = client_for(args)
    return _watch(args, lambda p: client.get("/stats/services", service=args.service, **p), _service_rows)


def cmd_node_stats(args: argparse.Namespace) -> int:
    client = client_for(args)
    return _watch(args, lambda p: client.get("/stats/nodes", node=args.node, **p), _node_rows)


def _stats_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--watch", "-w", action="store_true", help="refresh until interrupted")
    p.add_argument(
        "--interval", type=positive_seconds, default=2.0, metavar="SECONDS", help="--watch refresh period"
    )


def add_service_stats(service_action: Any) -> None:
    """``service stats [S]``, added through the service noun's action adder."""
    stats = service_action("stats", "Live CPU and memory of services, like docker stats", cmd_service_stats)
    stats.add_argument("service", metavar="SERVICE", nargs="?", help="one service (default: all)")
    _stats_flags(stats)


def add_node_stats(node_parsers: Any, common: argparse.ArgumentParser) -> None:
    """``node stats [N]``."""
    node = node_parsers.add_parser("stats", parents=[common], help="Live CPU and memory of each node's tasks")
    node.add_argument("node", metavar="NODE", nargs="?", help="node name or id (default: all)")
    _stats_flags(node)
    node.set_defaults(func=cmd_node_stats)
