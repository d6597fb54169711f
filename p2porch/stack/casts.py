"""Compose's type casts after interpolation: strings where the specification wants booleans or numbers (pure).

Interpolation only makes strings (``init: ${INIT:-true}``, ``replicas: ${REPLICAS:-2}``), and YAML 1.2
reads ``yes``/``on`` as strings too, so Compose casts the string values of the keys whose schema type is
"boolean or string" / "integer or string": booleans from ``true|false|yes|no|on|off|y|n`` (any case),
integers from decimal digits. A value that does not cast is left as it is, for the key's own validation
to refuse naming the field. Owns only that table and the walk; never reads files or the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .yamlsafe import Override

_TRUE = frozenset(("true", "yes", "on", "y"))
_FALSE = frozenset(("false", "no", "off", "n"))

# Paths under one Compose file: "*" is any key of a mapping, "[]" any item of a list.
_SERVICE_BOOLEANS: tuple[tuple[str, ...], ...] = (
    ("init",),
    ("read_only",),
    ("privileged",),
    ("tty",),
    ("stdin_open",),
    ("oom_kill_disable",),
    ("attach",),
    ("healthcheck", "disable"),
    ("volumes", "[]", "read_only"),
    ("volumes", "[]", "bind", "create_host_path"),
    ("volumes", "[]", "volume", "nocopy"),
    ("depends_on", "*", "required"),
    ("depends_on", "*", "restart"),
    ("env_file", "[]", "required"),
)
_SERVICE_INTEGERS: tuple[tuple[str, ...], ...] = (
    ("scale",),
    ("pids_limit",),
    ("deploy", "replicas"),
    ("deploy", "update_config", "parallelism"),
    ("deploy", "rollback_config", "parallelism"),
    ("deploy", "restart_policy", "max_attempts"),
    ("deploy", "placement", "max_replicas_per_node"),
    ("deploy", "resources", "limits", "pids"),
    ("healthcheck", "retries"),
    ("ports", "[]", "target"),
    ("ulimits", "*"),
    ("ulimits", "*", "soft"),
    ("ulimits", "*", "hard"),
)
_TOP_BOOLEANS: tuple[tuple[str, ...], ...] = (
    ("networks", "*", "external"),
    ("networks", "*", "internal"),
    ("networks", "*", "attachable"),
    ("networks", "*", "enable_ipv4"),
    ("networks", "*", "enable_ipv6"),
    ("volumes", "*", "external"),
    ("secrets", "*", "external"),
    ("configs", "*", "external"),
)


def to_boolean(value: Any) -> Any:
    """``value`` as a bool when it is a boolean word, else unchanged."""
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    return value


def to_integer(value: Any) -> Any:
    """``value`` as an int when it is a string of decimal digits (with an optional sign), else unchanged."""
    if isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text[:1] in "+-" else text
        if digits.isdigit() and digits.isascii():
            return int(text)
    return value


def _apply(node: Any, path: tuple[str, ...], cast: Any) -> Any:
    if isinstance(node, Override):
        return Override(_apply(node.value, path, cast))
    if not path:
        return cast(node)
    head, rest = path[0], path[1:]
    if head == "[]":
        if isinstance(node, list):
            return [_apply(item, rest, cast) for item in node]
        return node
    if not isinstance(node, Mapping):
        return node
    out = dict(node)
    for key in list(out) if head == "*" else [head]:
        if key in out and not (head == "*" and isinstance(key, str) and key.startswith("x-")):
            out[key] = _apply(out[key], rest, cast)
    return out


def cast_types(doc: Mapping[str, Any]) -> dict[str, Any]:
    """One interpolated Compose file with the casts applied (a new mapping; ``doc`` is not changed)."""
    out: Any = dict(doc)
    for path in _TOP_BOOLEANS:
        out = _apply(out, path, to_boolean)
    for path in _SERVICE_BOOLEANS:
        out = _apply(out, ("services", "*", *path), to_boolean)
    for path in _SERVICE_INTEGERS:
        out = _apply(out, ("services", "*", *path), to_integer)
    return dict(out)
