"""Access tokens of the remote API: create, list, revoke, and verify a presented token (shell).

Creating a token draws it here, stores only its digest through Raft and returns the token once; listing
shows names, roles, ids and dates, never a digest. :meth:`AccessOps.verify` checks a presented token
against this node's committed state (a revoked token fails as soon as the removal commits locally).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..api.server import Endpoint
from ..clock import SYSTEM_CLOCK, Clock
from ..errors import NotFoundError
from ..raft import commands as C
from ..raft.state import AccessTokenRecord
from ..vault.access import Role, new_token, validate_token_name, verify_token

if TYPE_CHECKING:
    from ..membership.manager import ClusterManager

__all__ = ["AccessOps", "access_endpoints"]


def token_view(record: AccessTokenRecord) -> dict[str, Any]:
    return {
        "name": record.name,
        "role": record.role,
        "id": record.token_id,
        "created_at": record.created_at,
    }


class AccessOps:
    """The access-token operations over the manager's store; never keeps or logs a token's secret."""

    def __init__(self, manager: ClusterManager, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.manager = manager
        self.clock = clock
        self._cache_version = -1
        self._digests: dict[str, str] = {}
        self._by_id: dict[str, AccessTokenRecord] = {}

    def list_all(self) -> list[dict[str, Any]]:
        state = self.manager.require_store().snapshot()
        return [token_view(r) for r in sorted(state.access_tokens.values(), key=lambda r: r.name)]

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        name = validate_token_name(body.get("name"))
        role = Role.parse(body.get("role", "read"), "--role")
        token = new_token()
        put = C.PutAccessToken(
            at=self.clock.now(), name=name, token_id=token.token_id, role=role.label, digest=token.digest
        )
        await self.manager.write(put.encode())
        return {"name": name, "role": role.label, "id": token.token_id, "token": token.text}

    async def remove(self, name: str) -> dict[str, Any]:
        if name not in self.manager.require_store().snapshot().access_tokens:
            raise NotFoundError(f"no access token {name}", field="name")
        await self.manager.write(C.RemoveAccessToken(at=self.clock.now(), name=name).encode())
        return {"removed": name}

    def verify(self, text: str) -> tuple[str, Role] | None:
        """(name, role) of a valid token in this node's committed state, else None."""
        store = self.manager.store
        if store is None:
            return None
        state = store.snapshot()
        if state.version != self._cache_version:
            self._by_id = {r.token_id: r for r in state.access_tokens.values()}
            self._digests = {i: r.digest for i, r in self._by_id.items()}
            self._cache_version = state.version
        token_id = verify_token(text, self._digests)
        if token_id is None:
            return None
        record = self._by_id[token_id]
        return record.name, Role.parse(record.role)


def access_endpoints(ops: AccessOps) -> list[Endpoint]:
    async def create(body: dict[str, Any], params: dict[str, str]) -> Any:
        return await ops.create(body)

    async def listing(body: dict[str, Any], params: dict[str, str]) -> Any:
        return ops.list_all()

    async def remove(body: dict[str, Any], params: dict[str, str]) -> Any:
        return await ops.remove(params["name"])

    return [
        Endpoint("POST", "/access", create, "Create an access token (returned once) with a role"),
        Endpoint("GET", "/access", listing, "List access tokens (names, roles, ids; never a token)"),
        Endpoint("DELETE", "/access/{name}", remove, "Revoke an access token"),
    ]
