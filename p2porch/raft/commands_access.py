"""Typed Raft commands for the remote API's access tokens (pure).

Only a token's digest enters the replicated state (``vault.access``); its secret never does. The FSM
handlers are in ``fsm_access.py``; the dispatch table in ``commands.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import fields as F
from .codec import Command

ACCESS_ROLES = ("read", "operate", "admin")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ID_RE = re.compile(r"^[0-9a-f]{16}$")
_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")


def _matching(body: Mapping[str, Any], name: str, pattern: re.Pattern[str]) -> str:
    value = F.get(body, name, str)
    if not pattern.match(value):
        raise F.invalid(f"field {name!r} is malformed", name)
    return str(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class PutAccessToken(Command):
    """Add a named access token of the remote API (its digest only); refused if the name is taken."""

    TAG = "put_access_token"
    name: str
    token_id: str
    role: str
    digest: str

    def body(self) -> dict[str, Any]:
        return {"name": self.name, "token_id": self.token_id, "role": self.role, "digest": self.digest}

    @classmethod
    def from_body(cls, b: Mapping[str, Any], version: int, **common: Any) -> PutAccessToken:
        role = F.get(b, "role", str)
        if role not in ACCESS_ROLES:
            raise F.invalid("role must be read, operate or admin", "role")
        return cls(
            name=_matching(b, "name", _NAME_RE),
            token_id=_matching(b, "token_id", _ID_RE),
            role=role,
            digest=_matching(b, "digest", _DIGEST_RE),
            **common,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveAccessToken(Command):
    """Revoke an access token: requests with it are refused from the moment this commits locally."""

    TAG = "remove_access_token"
    name: str

    def body(self) -> dict[str, Any]:
        return {"name": self.name}

    @classmethod
    def from_body(cls, b: Mapping[str, Any], version: int, **common: Any) -> RemoveAccessToken:
        return cls(name=_matching(b, "name", _NAME_RE), **common)
