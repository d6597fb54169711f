"""FSM handlers for the remote API's access tokens (pure): add one by name, remove one.

Only digests arrive here (``vault.access``); a token's secret never enters the replicated state. A
handler returns ``(state, value, [(kind, op, key, record)])`` and refuses with ConfigError/ConflictError/
NotFoundError, which :mod:`p2porch.raft.fsm` turns into error results.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError, ConflictError, NotFoundError
from .state import AccessTokenRecord, ClusterState

ROLES = ("read", "operate", "admin")
MAX_TOKENS = 1000
_ID_RE = re.compile(r"^[0-9a-f]{16}$")
_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")


def _text(body: Mapping[str, Any], name: str, pattern: re.Pattern[str] | None = None) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or len(value) > 64 or (pattern and not pattern.match(value)):
        raise ConfigError(f"field {name!r} is missing or malformed", field=name)
    return value


def put_access_token(s: ClusterState, b: Mapping[str, Any], at: float, v: int) -> Any:
    name = _text(b, "name")
    token_id = _text(b, "token_id", _ID_RE)
    role = _text(b, "role")
    if role not in ROLES:
        raise ConfigError("role must be read, operate or admin", field="role")
    digest = b.get("digest")
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise ConfigError("field 'digest' is missing or malformed", field="digest")
    if name in s.access_tokens:
        raise ConflictError(f"access token {name} already exists", field="name")
    if any(r.token_id == token_id for r in s.access_tokens.values()):
        raise ConflictError("token id already in use", field="token_id")
    if len(s.access_tokens) >= MAX_TOKENS:
        raise ConflictError(f"at most {MAX_TOKENS} access tokens", field="name")
    record = AccessTokenRecord(name, token_id, role, digest, created_at=at, version=v)
    tokens = dict(s.access_tokens)
    tokens[name] = record
    return s.evolve(access_tokens=tokens, version=v), name, [("access_token", "put", name, record)]


def remove_access_token(s: ClusterState, b: Mapping[str, Any], at: float, v: int) -> Any:
    name = _text(b, "name")
    if name not in s.access_tokens:
        raise NotFoundError(f"no access token {name}", field="name")
    tokens = dict(s.access_tokens)
    del tokens[name]
    return s.evolve(access_tokens=tokens, version=v), name, [("access_token", "delete", name, None)]
