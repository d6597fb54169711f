"""``p2porch stack ...``: deploy a Compose file as a stack, list stacks, their tasks, remove one (shell).

Owns reading the Compose file and the files it names (``env_file``) on the CLI's machine, validating
the whole stack locally first (exit code 2 naming the key's path, nothing sent), and showing results.
The daemon validates again and does the work (``p2porch.control.stack_ops``).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from ..errors import ConfigError
from ..stack import StackDefinition, check_stack_name, load_stack
from .service import task_row
from .util import EXIT_OK, Parser, UsageError, client_for, emit, table

STACK_COLUMNS = ["name", "services", "tasks"]
TASK_COLUMNS = ["id", "name", "node", "desired", "state", "since", "error / explanation"]


def read_compose(path: str, stack: str) -> tuple[StackDefinition, dict[str, Any]]:
    """Validate ``path`` for ``stack`` and build the deploy request body (compose text, env files)."""
    try:
        check_stack_name(stack)
    except ConfigError as exc:
        raise UsageError(exc.message, field="NAME") from exc
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"-c {path}: cannot read the Compose file: {exc}", field="-c") from exc
    base_dir = os.path.dirname(os.path.abspath(path))
    files: dict[str, str] = {}

    def read_file(name: str) -> str:
        with open(os.path.join(base_dir, name), encoding="utf-8") as handle:
            files[name] = handle.read()
        return files[name]

    try:
        definition = load_stack(stack, text, read_file, base_dir=base_dir)
    except ConfigError as exc:
        raise UsageError(f"-c {path}: {exc.message}", field=exc.field) from exc
    body = {"compose": text, "files": files, "base_dir": base_dir}
    return definition, body


def _deploy_text(result: dict[str, Any]) -> str:
    width = max((len(s["action"]) for s in result["services"]), default=0)
    lines = [f"{s['action'].ljust(width)}  {s['name']}" for s in result["services"]]
    return "\n".join(lines + [f"stack {result['stack']} deployed"])


def cmd_stack_deploy(args: argparse.Namespace) -> int:
    _, body = read_compose(args.compose_file, args.stack)
    body["prune"] = not args.no_prune
    result = client_for(args).post(f"/stacks/{args.stack}", body)
    emit(args, result, _deploy_text)
    return EXIT_OK


def cmd_stack_ls(args: argparse.Namespace) -> int:
    emit(
        args,
        client_for(args).get("/stacks"),
        lambda rows: table(
            STACK_COLUMNS, [[r["name"], r["services"], f"{r['running']}/{r['desired']}"] for r in rows]
        ),
    )
    return EXIT_OK


def cmd_stack_ps(args: argparse.Namespace) -> int:
    tasks = client_for(args).get(f"/stacks/{args.stack}/tasks", all="false" if args.running else "true")
    emit(args, tasks, lambda rows: table(TASK_COLUMNS, [task_row(t) for t in rows]))
    return EXIT_OK


def cmd_stack_rm(args: argparse.Namespace) -> int:
    result = client_for(args).delete(f"/stacks/{args.stack}")
    emit(
        args,
        result,
        lambda r: "\n".join([f"removed  {name}" for name in r["removed"]] + [f"stack {r['stack']} removed"]),
    )
    return EXIT_OK


def add_stack_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    stack = sub.add_parser("stack", parents=[common], help="Deploy and manage Compose stacks")
    actions = stack.add_subparsers(dest="stack_command", metavar="ACTION", parser_class=Parser)
    actions.required = True

    def action(name: str, help_text: str, fn: Any) -> argparse.ArgumentParser:
        p = actions.add_parser(name, parents=[common], help=help_text, description=help_text)
        p.set_defaults(func=fn)
        return p

    deploy = action(
        "deploy",
        "Create or update a stack from a Compose v3 file (services named STACK-SERVICE)",
        cmd_stack_deploy,
    )
    deploy.add_argument(
        "--compose-file", "-c", required=True, metavar="FILE", help="Compose file (docker-compose.yml)"
    )
    deploy.add_argument(
        "--no-prune", action="store_true", help="keep services of the stack that the file no longer has"
    )
    deploy.add_argument("stack", metavar="NAME")
    action("ls", "List stacks", cmd_stack_ls)
    ps = action("ps", "List the tasks of every service of a stack", cmd_stack_ps)
    ps.add_argument("stack", metavar="NAME")
    ps.add_argument("--running", action="store_true", help="only tasks that should be running")
    action("rm", "Remove every service of a stack", cmd_stack_rm).add_argument("stack", metavar="NAME")
