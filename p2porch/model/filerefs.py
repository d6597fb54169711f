"""References from a service spec to secrets and configs (pure).

A reference names a secret or config (``source``), where its file appears in the container
(``target``), the file's owner and mode, and the version delivered. ``version`` is filled in by the
control plane when the spec is written (the current version unless the user pinned one); a rotation
rewrites unpinned references, which changes the task template and rolls the service.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

SECRETS_DIR = "/run/secrets"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ID_RE = re.compile(r"^[0-9]+$|^[A-Za-z0-9_.-]+$")
_KEYS = {
    "source": "source",
    "src": "source",
    "target": "target",
    "uid": "uid",
    "gid": "gid",
    "mode": "mode",
    "version": "version",
    "pinned": "pinned",
}


@dataclass(frozen=True, slots=True)
class FileRef:
    """One secret or config file of a task's container."""

    source: str
    target: str
    uid: str = "0"
    gid: str = "0"
    mode: int = 0o444
    version: int = 0  # 0 = not resolved yet (the control plane sets the current version)
    pinned: bool = False  # True: stays on ``version`` when the secret is updated

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "uid": self.uid,
            "gid": self.gid,
            "mode": self.mode,
            "version": self.version,
            "pinned": self.pinned,
        }


def _err(field: str, message: str) -> ConfigError:
    return ConfigError(f"{field}: {message}", field=field)


def _mode(value: Any, field: str) -> int:
    if isinstance(value, bool):
        raise _err(field, "expected an octal mode such as 0400")
    if isinstance(value, str):
        try:
            value = int(value, 8)
        except ValueError:
            raise _err(field, f"{value!r} is not an octal mode such as 0400") from None
    if not isinstance(value, int) or not 0 <= value <= 0o777:
        raise _err(field, "mode must be between 0 and 0777")
    return value


def _owner(value: Any, field: str) -> str:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if (
        not isinstance(text, str)
        or not (text.isascii() and text.isdigit())
        or len(text) > 10
        or int(text) >= 2**32
    ):
        raise _err(field, "must be a numeric id")  # ASCII digits of a 32-bit id: the node's fchown takes it
    return text


def _build(data: Mapping[str, Any], kind: str, field: str) -> FileRef:
    source = data.get("source", "")
    if not isinstance(source, str) or not _NAME_RE.match(source):
        raise _err(f"{field}.source", f"{source!r} is not a valid {kind} name")
    target = data.get("target") or ""
    if not isinstance(target, str):
        raise _err(f"{field}.target", "must be a path")
    default = posixpath.join(SECRETS_DIR, source) if kind == "secret" else "/" + source
    # secrets: a relative target lives under /run/secrets (Swarm); configs need an absolute one
    target = posixpath.join(SECRETS_DIR, target) if target and kind == "secret" else target or default
    if not target.startswith("/"):
        raise _err(f"{field}.target", f"{kind} targets must be absolute paths")
    target = posixpath.normpath(target)
    if target == "/":
        raise _err(f"{field}.target", "cannot be /")
    version = data.get("version", 0) or 0
    if isinstance(version, str) and version.isascii() and version.isdigit() and len(version) <= 18:
        version = int(version)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise _err(f"{field}.version", "must be a positive integer")
    pinned = data.get("pinned")
    if pinned is None:
        pinned = "version" in data and bool(version)
    return FileRef(
        source=source,
        target=target,
        uid=_owner(data.get("uid", "0"), f"{field}.uid"),
        gid=_owner(data.get("gid", "0"), f"{field}.gid"),
        mode=_mode(data.get("mode", 0o444), f"{field}.mode"),
        version=version,
        pinned=bool(pinned),
    )


def parse_file_ref(expr: str | Mapping[str, Any], *, kind: str, fieldname: str) -> FileRef:
    """``NAME`` or ``src=NAME,target=...,uid=...,gid=...,mode=0400[,version=N]`` (or the same as a map)."""
    if isinstance(expr, Mapping):
        unknown = sorted(str(k) for k in set(expr) - set(_KEYS))
        if unknown:
            raise _err(f"{fieldname}.{unknown[0]}", f"unknown {kind} option")
        return _build({_KEYS[k]: v for k, v in expr.items()}, kind, fieldname)
    if not isinstance(expr, str) or not expr.strip():
        raise _err(fieldname, f"expected a {kind} name or src=NAME,target=...")
    if "=" not in expr:
        return _build({"source": expr.strip()}, kind, fieldname)
    data: dict[str, Any] = {}
    for part in expr.split(","):
        key, _, value = part.strip().partition("=")
        canonical = _KEYS.get(key.strip().lower())
        if canonical is None:
            raise _err(fieldname, f"unknown {kind} option {key.strip()!r}")
        if canonical in data:
            raise _err(fieldname, f"{kind} option {key.strip()!r} given twice")
        data[canonical] = value.strip()
    if "pinned" in data:
        data["pinned"] = data["pinned"].lower() in ("1", "true", "yes")
    return _build(data, kind, fieldname)


def parse_file_refs(value: Any, key: str, kind: str) -> tuple[FileRef, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        raise _err(key, "expected a list")
    refs = tuple(parse_file_ref(v, kind=kind, fieldname=f"{key}[{i}]") for i, v in enumerate(value))
    seen: set[str] = set()
    for i, ref in enumerate(refs):
        if ref.target in seen:
            raise _err(f"{key}[{i}].target", f"{ref.target} used twice")
        seen.add(ref.target)
    return refs
