"""Named connection settings of the CLI, like ``docker context``: the contexts file and resolution (shell).

A context is a host (``tcp://HOST:PORT`` or ``unix:///path``), an access token and the CA bundle to
verify the host with, stored in ``contexts.json`` under ``$P2PORCH_CONFIG_DIR``, else
``$XDG_CONFIG_HOME/p2porch``, else ``~/.config/p2porch`` (directory 0700, file 0600, written atomically:
it holds tokens). ``default`` is the local unix socket and always exists. Which daemon a command talks
to, first match wins: ``--host``, ``--context``, ``$P2PORCH_HOST``, ``$P2PORCH_CONTEXT``, the current
context, the default socket; ``--token-file``/``$P2PORCH_API_TOKEN`` and ``--tls-ca`` override the
context's token and CA.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, NotFoundError
from ..paths import DEFAULT_SOCKET
from .localfiles import CA_FILE_BYTES, TOKEN_FILE_BYTES, read_flag_text

DEFAULT_CONTEXT = "default"
FILE_NAME = "contexts.json"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Context:
    """Where and how to reach one daemon; the token never shows in a repr."""

    name: str
    host: str
    token: str = field(default="", repr=False)
    ca_pem: str = field(default="", repr=False)
    description: str = ""

    def to_dict(self) -> dict[str, str]:
        return {
            "host": self.host,
            "token": self.token,
            "ca_pem": self.ca_pem,
            "description": self.description,
        }

    def view(self, current: bool) -> dict[str, Any]:
        """What ``context ls/inspect`` show: never the token itself."""
        return {
            "name": self.name,
            "current": current,
            "host": self.host,
            "description": self.description,
            "token": "set" if self.token else "",
            "ca": "set" if self.ca_pem else "",
        }


DEFAULT = Context(DEFAULT_CONTEXT, f"unix://{DEFAULT_SOCKET}", description="this machine's daemon socket")


def config_dir(env: Mapping[str, str]) -> str:
    if env.get("P2PORCH_CONFIG_DIR"):
        return env["P2PORCH_CONFIG_DIR"]
    base = env.get("XDG_CONFIG_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".config")
    return os.path.join(base, "p2porch")


def validate_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise ConfigError(f"context name {name!r}: letters, digits, '_', '-' or '.'", field="NAME")
    return name


class ContextStore:
    """The contexts file: read, validated, written 0600."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.path = os.path.join(directory, FILE_NAME)

    def _load(self) -> dict[str, Any]:
        try:
            with open(self.path) as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return {"current": DEFAULT_CONTEXT, "contexts": {}}
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{self.path}: unreadable contexts file ({exc})", field="context") from exc
        if not isinstance(data, dict) or not isinstance(data.get("contexts"), dict):
            raise ConfigError(f"{self.path}: not a contexts file", field="context")
        return data

    def _save(self, data: dict[str, Any]) -> None:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        tmp = f"{self.path}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    def current(self) -> str:
        return str(self._load().get("current") or DEFAULT_CONTEXT)

    def all(self) -> list[Context]:
        data = self._load()
        out = [DEFAULT]
        for name, raw in sorted(data["contexts"].items()):
            if isinstance(raw, dict):
                out.append(
                    Context(
                        name, **{k: str(raw.get(k) or "") for k in ("host", "token", "ca_pem", "description")}
                    )
                )
        return out

    def get(self, name: str) -> Context:
        for context in self.all():
            if context.name == name:
                return context
        raise NotFoundError(f"no context {name!r} (see `p2porch context ls`)", field="context")

    def put(self, context: Context, *, replace: bool) -> None:
        validate_name(context.name)
        if context.name == DEFAULT_CONTEXT:
            raise ConfigError("the default context cannot be changed", field="NAME")
        data = self._load()
        if context.name in data["contexts"] and not replace:
            raise ConfigError(f"context {context.name} exists (use `context update`)", field="NAME")
        data["contexts"][context.name] = context.to_dict()
        self._save(data)

    def remove(self, name: str) -> None:
        data = self._load()
        if name not in data["contexts"]:
            raise NotFoundError(f"no context {name!r}", field="context")
        del data["contexts"][name]
        if data.get("current") == name:
            data["current"] = DEFAULT_CONTEXT
        self._save(data)

    def use(self, name: str) -> None:
        self.get(name)
        data = self._load()
        data["current"] = name
        self._save(data)


def read_secret_file(path: str, what: str, flag: str) -> str:
    """A token or CA file's text, read bounded (``localfiles``); an empty one is refused naming ``flag``."""
    limit = TOKEN_FILE_BYTES if what == "token" else CA_FILE_BYTES
    text = read_flag_text(path, flag, limit).strip()
    if not text:
        raise ConfigError(f"{flag} {path}: the {what} file is empty", field=flag)
    return text


def resolve(
    *,
    host: str | None,
    context: str | None,
    token_file: str | None,
    ca_file: str | None,
    env: Mapping[str, str],
) -> Context:
    """The connection a command uses (see the module docstring for the order)."""
    store = ContextStore(config_dir(env))
    if host:
        chosen = Context("", host)
    elif context:
        chosen = store.get(context)
    elif env.get("P2PORCH_HOST"):
        chosen = Context("", env["P2PORCH_HOST"])
    elif env.get("P2PORCH_CONTEXT"):
        chosen = store.get(env["P2PORCH_CONTEXT"])
    else:
        chosen = store.get(store.current())
    token = chosen.token
    if token_file:
        token = read_secret_file(token_file, "token", "--token-file")
    elif env.get("P2PORCH_API_TOKEN"):
        token = env["P2PORCH_API_TOKEN"].strip()
    ca_pem = read_secret_file(ca_file, "CA", "--tls-ca") if ca_file else chosen.ca_pem
    return Context(chosen.name, chosen.host, token, ca_pem, chosen.description)
