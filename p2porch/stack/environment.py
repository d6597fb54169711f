"""``environment``, ``env_file`` and ``label_file`` of one Compose service -> variables (pure).

Owns how a service's variables are read: the mapping or list form, a key without value taken from the
CLI's environment, ``.env``-format files through the caller's ``read_file``. Never interpolates the
Compose file itself (interpolate.py) and never writes a spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ..errors import ConfigError
from . import keys
from .interpolate import parse_dotenv
from .resolve import ReadFile
from .values import any_mapping, boolean, err, list_, mapping, scalar_text, string


class FileContext(Protocol):
    """What reading a service's files needs of the stack's context (service.StackContext)."""

    @property
    def environ(self) -> Mapping[str, str]: ...

    @property
    def read_file(self) -> ReadFile | None: ...

    @property
    def env_files_read(self) -> list[str]: ...


def environment(value: Any, path: str, environ: Mapping[str, str]) -> dict[str, str | None]:
    """``environment`` (mapping after merge normalisation, or list); a key without value comes from the
    CLI's environment, None when unset there (the task gets no such variable, as in Compose). A mapping
    key holding ``=`` is split there, as the engine splits the ``A=b`` Compose sends it."""
    out: dict[str, str | None] = {}
    if value is None:  # `environment:` over comments only (Compose: "must be a mapping")
        raise err(path, "expected a mapping or a list, got nothing (a key holding only comments is null)")
    items = list(any_mapping(value, path).items()) if isinstance(value, Mapping) else None
    if items is None:
        items = []
        for i, item in enumerate(list_(value, path)):
            key, sep, val = string(item, f"{path}[{i}]").partition("=")
            items.append((key, val if sep else None))
    for key, item in items:
        where = f"{path}.{key}"
        if "=" in key:  # a mapping's `A=b:` reaches the engine as "A=b" (compose-go and Swarm send the key)
            key, _, head = key.partition("=")
            item = head if item is None else f"{head}={scalar_text(item, where)}"
        if not key or any(c.isspace() for c in key):
            raise err(where, f"invalid variable name {key!r}")
        out[key] = environ.get(key) if item is None else scalar_text(item, where)
    return out


def env_files(value: Any, path: str, ctx: FileContext) -> dict[str, str]:
    entries = [value] if isinstance(value, str) else list_(value, path)
    out: dict[str, str] = {}
    for i, entry in enumerate(entries):
        where = path if isinstance(value, str) else f"{path}[{i}]"
        required, raw = True, False
        if isinstance(entry, Mapping):
            entry = mapping(entry, where, keys.ENV_FILE_KEYS)
            if "path" not in entry:
                raise err(f"{where}.path", "is required")
            required = boolean(entry.get("required", True), f"{where}.required")
            raw = entry.get("format") == "raw"
            entry = entry["path"]
        filename = string(entry, where)
        if ctx.read_file is None:
            raise err(where, f"cannot read {filename!r}: no files were given with the Compose file")
        try:
            text = ctx.read_file(filename)
        except ConfigError as exc:
            raise err(where, exc.message) from None
        except (OSError, KeyError) as exc:
            if not required:
                continue
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not found"
            raise err(where, f"cannot read {filename!r}: {reason}") from None
        if filename not in ctx.env_files_read:
            ctx.env_files_read.append(filename)
        try:
            out.update(parse_dotenv(text, filename, ctx.environ, raw=raw))
        except ConfigError as exc:
            raise err(where, exc.message) from None
    return out


def label_files(value: Any, path: str, ctx: FileContext) -> dict[str, str]:
    """``label_file``: one file or a list, read like an ``env_file`` (later files win)."""
    entries = [value] if isinstance(value, str) else list_(value, path)
    for i, entry in enumerate(entries):
        string(entry, f"{path}[{i}]")
    return env_files(value, path, ctx)
