"""FSM handlers for the remote API's access tokens (pure): add one by name, remove one.

Only digests arrive here (``vault.access``); a token's secret never enters the replicated state. A
handler returns ``(state, value, [(kind, op, key, record)])`` and refuses with ConflictError/
NotFoundError, which :mod:`p2porch.raft.fsm` turns into error results (fields were validated by the
command decoders).
"""

from __future__ import annotations

from typing import Any

from ..errors import ConflictError, NotFoundError
from .commands_access import PutAccessToken, RemoveAccessToken
from .state import AccessTokenRecord, ClusterState

MAX_TOKENS = 1000


def put_access_token(s: ClusterState, c: PutAccessToken, v: int) -> Any:
    if c.name in s.access_tokens:
        raise ConflictError(f"access token {c.name} already exists", field="name")
    if any(r.token_id == c.token_id for r in s.access_tokens.values()):
        raise ConflictError("token id already in use", field="token_id")
    if len(s.access_tokens) >= MAX_TOKENS:
        raise ConflictError(f"at most {MAX_TOKENS} access tokens", field="name")
    record = AccessTokenRecord(c.name, c.token_id, c.role, c.digest, created_at=c.at, version=v)
    tokens = dict(s.access_tokens)
    tokens[c.name] = record
    return s.evolve(access_tokens=tokens, version=v), c.name, [("access_token", "put", c.name, record)]


def remove_access_token(s: ClusterState, c: RemoveAccessToken, v: int) -> Any:
    if c.name not in s.access_tokens:
        raise NotFoundError(f"no access token {c.name}", field="name")
    tokens = dict(s.access_tokens)
    del tokens[c.name]
    return s.evolve(access_tokens=tokens, version=v), c.name, [("access_token", "delete", c.name, None)]
