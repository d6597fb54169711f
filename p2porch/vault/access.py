"""Access tokens of the remote API: roles, the token format, hashing and verification (pure).

A token is ``p2pat_<id>_<secret>``: ``id`` (16 hex) names the record in the replicated state, ``secret``
is 256 random bits (43 base64url characters). Only ``sha256("p2porch access token v1" | id | secret)``
is stored: for a 256-bit random secret a slow KDF adds no protection (nobody can enumerate 2^256) and
would make every API request a CPU lever for an attacker. Verification compares digests with
``hmac.compare_digest`` and does the same work for an unknown id. Never logs or shows a secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum

from ..errors import ConfigError

TOKEN_PREFIX = "p2pat_"
_TOKEN_RE = re.compile(r"^p2pat_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_TOKENS = 1000


class Role(IntEnum):
    """What a token may do; each role includes the ones below it."""

    READ = 1
    OPERATE = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: object, field_name: str = "role") -> Role:
        if isinstance(text, str) and text.upper() in cls.__members__:
            return cls[text.upper()]
        raise ConfigError(f"role must be read, operate or admin, not {text!r}", field=field_name)


@dataclass(frozen=True)
class NewToken:
    """A freshly made token: ``text`` is shown once to its creator; ``digest`` is what is stored."""

    token_id: str
    text: str = field(repr=False)
    digest: str = ""


def validate_token_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(
            "access token names are 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit",
            field="name",
        )
    return name


def _digest(token_id: str, secret: str) -> str:
    return hashlib.sha256(
        b"p2porch access token v1\0" + token_id.encode() + b"\0" + secret.encode()
    ).hexdigest()


def new_token() -> NewToken:
    token_id = secrets.token_hex(8)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    return NewToken(token_id, f"{TOKEN_PREFIX}{token_id}_{secret}", _digest(token_id, secret))


def parse_token(text: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a well-formed token, else None (nothing about why: callers answer 401)."""
    match = _TOKEN_RE.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        return None
    try:
        base64.urlsafe_b64decode(match.group(2) + "=")
    except (binascii.Error, ValueError):
        return None
    return match.group(1), match.group(2)


_DUMMY_DIGEST = _digest("0" * 16, "x" * 43)


def verify_token(text: str, digests: Mapping[str, str]) -> str | None:
    """The id of the token ``text`` if its digest matches ``digests[id]``, else None.

    Constant-time in the secret: an unknown or malformed token costs the same hash and compare."""
    parsed = parse_token(text)
    token_id, secret = parsed if parsed is not None else ("0" * 16, "y" * 43)
    expected = digests.get(token_id, _DUMMY_DIGEST) if parsed is not None else _DUMMY_DIGEST
    matches = hmac.compare_digest(_digest(token_id, secret), expected)
    return token_id if matches and parsed is not None and token_id in digests else None
