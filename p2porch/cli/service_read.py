"""``service ps``, ``service inspect`` and ``service logs``: the service commands that only read (shell).

Owns their flags as Docker's (``ps --filter/--no-trunc``, ``inspect --pretty/--format``, ``logs --since/
--timestamps``) and how they print; never writes to the cluster.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any

from ..errors import NO_SUCH, ConfigError, NotFoundError, P2POrchError
from ..model.units import parse_duration_s
from .docker_paths import docker_path
from .filters import TASK_FILTERS, Match, add_filter, apply_filters
from .goformat import add_inspect_output, add_list_format, inspect_each, listing
from .group import group_spec, group_task_rows
from .service_describe import describe_service
from .service_rows import TASK_COLUMNS, TASK_EXTRA, TASK_JSON, task_extra, task_row
from .util import (
    EXIT_OK,
    ActionAdder,
    DockerText,
    UsageError,
    add_ids_only,
    client_for,
    docker_words,
    emit,
    non_negative_int,
    table,
    wants_json,
)


def add_task_list_flags(
    p: argparse.ArgumentParser, filters: Mapping[str, Match] = TASK_FILTERS
) -> argparse.ArgumentParser:
    """``-q``, ``--running``, ``--no-trunc`` and ``--filter`` (``filters``' keys) of ``service|stack|node
    ps``."""
    add_ids_only(p)
    p.add_argument("--running", action="store_true", help="only tasks that should be running")
    p.add_argument("--no-trunc", action="store_true", help="full task and node ids")
    p.add_argument("--no-resolve", action="store_true", help="node ids instead of node names")
    add_filter(p, filters)
    return add_list_format(p, TASK_COLUMNS, extra=TASK_EXTRA)


def task_table(
    args: argparse.Namespace, rows: list[dict[str, Any]], specs: dict[str, dict[str, Any]] | None = None
) -> str:
    """The tasks as ``service ps`` prints them (a task group's members under its tasks, from ``specs``:
    each service's spec by name)."""
    if args.no_resolve:
        rows = [{**t, "node": t.get("node_id") or t["node"]} for t in rows]
    cells = [task_row(t, no_trunc=args.no_trunc) for t in rows]
    template = getattr(args, "format", None)
    if template is not None:  # one line per task, its members not listed
        if template.strip().startswith("table"):  # as docker/cli's, a table (not a line) indents
            indent_history(cells)
        extras = [task_extra(t, args.no_trunc) for t in rows]
        return listing(args, TASK_COLUMNS, cells, TASK_EXTRA, extras, docker_json=TASK_JSON)
    indent_history(cells)
    if not specs:
        return table(TASK_COLUMNS, cells)
    grouped = [
        row
        for t, cell in zip(rows, cells, strict=True)
        for row in group_task_rows(specs.get(str(t["name"]).rpartition(".")[0]) or {}, [cell])
    ]
    return table(TASK_COLUMNS, grouped)


def emit_tasks(
    args: argparse.Namespace, tasks: list[dict[str, Any]], specs: dict[str, dict[str, Any]] | None = None
) -> None:
    """A task list (``service|stack|node ps``) as ``emit`` prints it, except that ``-q`` prints the ids as
    the table shows them, as Docker's: cut to 12 characters unless ``--no-trunc``."""
    if args.ids_only and not wants_json(args):
        for t in tasks:
            print(t["id"] if args.no_trunc else t["id"][:12])
    else:
        emit(args, tasks, lambda rows: task_table(args, rows, specs))


def indent_history(cells: list[list[Any]]) -> None:
    """Name the earlier tasks of a slot `` \\_ web.1`` under its newest one (the rows come by slot, newest
    first), as Docker's ``service ps`` table shows a slot's history."""
    previous = None
    for cell in cells:
        name = cell[1]
        if name == previous:
            cell[1] = f" \\_ {name}"
        previous = name


def cmd_service_ps(args: argparse.Namespace) -> int:
    """The tasks of every service given, in turn (``docker service ps SERVICE [SERVICE...]``); a missing
    one is docker/cli's ``no such service: X`` on stderr (one line each, exit 1) after the others' tasks."""
    client = client_for(args)
    each, missing = {}, []
    for name in dict.fromkeys(args.service):
        try:
            found = client.get(f"/services/{name}/tasks", all="false" if args.running else "true")
        except NotFoundError as exc:
            if not exc.message.startswith(NO_SUCH):
                raise
            missing.append(f"no such service: {name}")  # docker/cli's words, whatever the daemon said
            continue
        each[name] = apply_filters(found, args.filters, TASK_FILTERS)
    if each:
        _show_tasks(args, client, each)
    if missing:
        raise DockerText("\n".join(missing), field="SERVICE")
    return EXIT_OK


def _show_tasks(args: argparse.Namespace, client: Any, each: dict[str, list[dict[str, Any]]]) -> None:
    tasks = [t for ts in each.values() for t in ts]
    if args.ids_only:  # -q: the IDs alone, without the usage and group lookups
        emit_tasks(args, tasks)
        return
    for name, ts in each.items():
        try:
            usage = client.get(f"/services/{name}/usage")
        except P2POrchError:  # an older daemon, or no answer: the tasks without usage
            usage = {}
        for task in ts:
            task["usage"] = usage.get(task["id"])
    specs = {} if wants_json(args) else {name: group_spec(client, name) for name in each}
    emit_tasks(args, tasks, specs)


def cmd_service_inspect(args: argparse.Namespace) -> int:
    """``service inspect SERVICE...``; a missing one is docker/cli's ``Error: no such service: X``."""
    client = client_for(args)

    def fetch(name: str) -> Any:
        with docker_words(lambda _: f"Error: no such service: {name}"):
            service = client.get(f"/services/{name}")
        if service["spec"].get("autoscale"):
            try:
                service["autoscale_status"] = client.get(f"/services/{name}/autoscale")
            except P2POrchError as exc:
                service["autoscale_status"] = {"available": False, "reason": exc.message}
        return service

    return inspect_each(args, args.services, fetch, describe_service, docker_path)


def since_epoch(text: str, now: float | None = None, flag: str = "--since") -> float:
    """A time flag (``--since``, ``--until``) as Docker takes it: a duration before now (``10m``,
    ``1h30m``), a date or time in RFC 3339 / ISO 8601 (``2026-12-05``, ``2026-12-05T09:30:00Z``; no zone
    is UTC) or Unix seconds (``1700000000.5``); anything else is a usage error naming ``flag``."""
    now = time.time() if now is None else now
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        try:
            return now - parse_duration_s(text, fieldname=flag)
        except ConfigError:
            raise UsageError(
                f"{flag}: {text!r} is neither a duration (10m, 1h30m), a date (2026-12-05T09:30:00Z) "
                "nor Unix seconds",
                field=flag,
            ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def cmd_service_logs(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"follow": str(args.follow).lower(), "tail": args.tail}
    if args.container:
        params["container"] = args.container
    if args.since is not None:
        params["since"] = f"{since_epoch(args.since):.3f}"
    if args.timestamps:
        params["timestamps"] = "true"
    # docker/cli's words for neither a service nor a task, whatever the daemon said
    with docker_words(lambda _: f"no such task or service: {args.service}"):
        _print_logs(args, client_for(args).stream(f"/services/{args.service}/logs", **params))
    return EXIT_OK


def _print_logs(args: argparse.Namespace, items: Iterator[dict[str, Any]]) -> None:
    for item in items:
        if wants_json(args):
            print(json.dumps(item), flush=True)
        elif item.get("task") and args.raw:
            print(item["line"], flush=True)
        elif item.get("task"):
            task = item["task"].rsplit(".", 1)[0] if args.no_task_ids else item["task"]  # web.2.<id>: web.2
            print(f"{task}@{item['node']} | {item['line']}", flush=True)
        elif "line" in item:
            print(f"{item['node']}: {item['line']}", file=sys.stderr, flush=True)
        else:  # an error reported in the stream
            raise P2POrchError(str(item.get("message", item)))


def add_read_commands(action: ActionAdder) -> None:
    """``service ps``, ``inspect`` and ``logs``."""
    ps = action("ps", "List the tasks of services, with errors and explanations", cmd_service_ps)
    ps.add_argument("service", metavar="SERVICE", nargs="+")
    add_task_list_flags(ps)
    inspect = action("inspect", "Show services", cmd_service_inspect)
    inspect.add_argument("services", metavar="SERVICE", nargs="+")
    add_inspect_output(inspect)
    logs = action("logs", "Show the logs of every task of a service, from every node", cmd_service_logs)
    logs.add_argument(
        "service", metavar="SERVICE|TASK", help="a service, or a task's id (prefix) from service ps"
    )
    logs.add_argument("--follow", "-f", action="store_true", help="keep streaming new lines")
    logs.add_argument("--tail", "-n", type=non_negative_int, metavar="N", help="last N lines of each task")
    logs.add_argument("--since", metavar="TIME", help="lines since a duration ago (10m), a date or Unix time")
    logs.add_argument("--timestamps", "-t", action="store_true", help="each line with the engine's time")
    logs.add_argument("--raw", action="store_true", help="only the lines, without TASK@NODE |")
    logs.add_argument("--no-task-ids", action="store_true", help="TASK without its id (web.2@n1 | ...)")
    logs.add_argument(
        "--container", "-c", metavar="NAME", help="a task group's sidecar or init container (default: main)"
    )
