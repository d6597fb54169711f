"""``p2porch context``: saved connections to daemons, like ``docker context`` (shell).

``create``/``update`` read the token and CA files once and keep them in the contexts file
(:mod:`.context_store`, 0600); ``ls`` and ``inspect`` never show a token.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import ConfigError
from .context_store import Context, ContextStore, config_dir, read_secret_file, validate_name
from .util import emit, noun_actions, table


def add_context_commands(sub: Any, common: Any) -> None:
    action = noun_actions(sub, common, "context", "Saved connections to daemons (like docker context)")
    for name, help_text, fn in (
        ("create", "Save a context: host, access token and CA", cmd_context_create),
        ("update", "Change a saved context (e.g. a new CA after a key rotation)", cmd_context_update),
    ):
        p = action(name, help_text, fn)
        p.add_argument("name", metavar="NAME")
        p.add_argument("--description", default=None, help="description of the context")
        # --host URL and --token-file FILE (global options) are the context's host and token here
        p.add_argument("--ca-file", dest="ctx_ca_file", metavar="FILE", help="CA bundle (p2porch cluster ca)")
    action("ls", "List contexts (* = current)", cmd_context_ls)
    for name, help_text, fn in (
        ("use", "Make a context the current one", cmd_context_use),
        ("inspect", "Show a context (never its token)", cmd_context_inspect),
        ("rm", "Remove a context", cmd_context_rm),
    ):
        action(name, help_text, fn).add_argument("name", metavar="NAME")


def _store() -> ContextStore:
    return ContextStore(config_dir(os.environ))


def _edited(args: Any, base: Context) -> Context:
    from ..api.client import socket_path_from_host, tcp_address

    host = getattr(args, "host", None) or base.host
    if not host:
        raise ConfigError("a context needs --host", field="--host")
    if tcp_address(host) is None:
        socket_path_from_host(host)
    token_file = getattr(args, "token_file", None)
    token = read_secret_file(token_file, "token", "--token-file") if token_file else base.token
    ca_pem = read_secret_file(args.ctx_ca_file, "CA", "--ca-file") if args.ctx_ca_file else base.ca_pem
    if ca_pem and "BEGIN CERTIFICATE" not in ca_pem:
        raise ConfigError("--ca-file must hold PEM certificates", field="--ca-file")
    description = base.description if args.description is None else args.description
    return Context(validate_name(args.name), host, token, ca_pem, description)


def cmd_context_create(args: Any) -> int:
    _store().put(_edited(args, Context(args.name, "")), replace=False)
    print(args.name)
    return 0


def cmd_context_update(args: Any) -> int:
    store = _store()
    store.put(_edited(args, store.get(args.name)), replace=True)
    print(args.name)
    return 0


def cmd_context_ls(args: Any) -> int:
    store = _store()
    current = store.current()
    rows = [c.view(c.name == current) for c in store.all()]
    emit(
        args,
        rows,
        lambda rs: table(
            ["name", "host", "description"],
            [[r["name"] + (" *" if r["current"] else ""), r["host"], r["description"]] for r in rs],
        ),
    )
    return 0


def cmd_context_use(args: Any) -> int:
    _store().use(args.name)
    print(args.name)
    return 0


def _describe(view: dict[str, Any]) -> str:
    """The ``context inspect`` text (JSON with ``--json``, as every ``inspect``): never the token."""
    return "\n".join(
        [
            f"context {view['name']}" + (" (current)" if view.get("current") else ""),
            f"  host:        {view['host']}",
            f"  token:       {view['token'] or '-'}",
            f"  ca:          {view['ca'] or '-'}",
            f"  description: {view['description'] or '-'}",
        ]
    )


def cmd_context_inspect(args: Any) -> int:
    store = _store()
    emit(args, store.get(args.name).view(store.current() == args.name), _describe)
    return 0


def cmd_context_rm(args: Any) -> int:
    _store().remove(args.name)
    print(args.name)
    return 0
