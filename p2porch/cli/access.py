"""``p2porch access``: access tokens of the remote API (create prints the token once, ls, rm) (shell)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .util import EXIT_OK, client_for, emit, noun_actions, table


def add_access_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    action = noun_actions(sub, common, "access", "Access tokens of the remote API (tcp://)")
    create = action("create", "Create an access token; it is printed once, only its hash is kept", cmd_create)
    create.add_argument("name", metavar="NAME")
    create.add_argument(
        "--role",
        choices=["read", "operate", "admin"],
        default="read",
        help="read: look; operate: scale/update/rollback/deploy, drain nodes; admin: everything",
    )
    action("ls", "List access tokens (names, roles, ids; never a token)", cmd_ls)
    rm = action("rm", "Revoke access tokens", cmd_rm)
    rm.add_argument("names", nargs="+", metavar="NAME")


def cmd_create(args: argparse.Namespace) -> int:
    result = client_for(args).post("/access", {"name": args.name, "role": args.role})
    if not getattr(args, "json", False):
        print(f"access token {result['name']} ({result['role']}); it is shown only now:", file=sys.stderr)
    emit(args, result, lambda d: str(d["token"]))
    return EXIT_OK


def cmd_ls(args: argparse.Namespace) -> int:
    import time

    result = client_for(args).get("/access")
    emit(
        args,
        result,
        lambda rows: table(
            ["name", "role", "id", "created"],
            [
                [
                    r["name"],
                    r["role"],
                    r["id"],
                    time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created_at"])),
                ]
                for r in rows
            ],
        ),
    )
    return EXIT_OK


def cmd_rm(args: argparse.Namespace) -> int:
    client = client_for(args)
    removed = [client.delete(f"/access/{name}")["removed"] for name in args.names]
    emit(args, removed, lambda names: "\n".join(names))
    return EXIT_OK
