"""Names and size limits of secrets and configs (pure)."""

from __future__ import annotations

import re

from ..errors import ConfigError

KINDS = ("secret", "config")
MAX_VALUE_BYTES = 500 * 1024  # Swarm's limit
#: letters, digits, '_', '-' and '.', starting with a letter or digit, at most 64 characters (Swarm's rule)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def validate_name(name: object, kind: str = "secret") -> str:
    if not isinstance(name, str) or not name:
        raise ConfigError(f"a {kind} needs a name", field="name")
    if not NAME_RE.match(name):
        raise ConfigError(
            f"invalid {kind} name {name!r}: 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit",
            field="name",
        )
    return name


def validate_value(value: object, kind: str = "secret") -> bytes:
    """The value as bytes (binary content is allowed); empty or over 500 KiB is refused."""
    if not isinstance(value, bytes | bytearray):
        raise ConfigError(f"the {kind} value must be bytes", field="data")
    if not value:
        raise ConfigError(f"the {kind} value is empty", field="data")
    if len(value) > MAX_VALUE_BYTES:
        raise ConfigError(
            f"the {kind} value is {len(value)} bytes; the limit is {MAX_VALUE_BYTES} bytes (500 KiB)",
            field="data",
        )
    return bytes(value)
