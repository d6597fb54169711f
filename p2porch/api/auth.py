"""Token authentication and role checks for the API over TCP (shell: an ASGI middleware).

``TokenAuth`` wraps the whole TCP application: every request must carry ``Authorization: Bearer
<access token>``; anything else gets 401 with one fixed message (nothing about whether the token, its
name or its format was wrong), after a per-source failure limit (429 with ``Retry-After``). A valid
token's name and role go into the ASGI scope; each route then checks the role it needs
(:func:`role_refusal`: 403 naming the role). Paths under ``public_prefixes`` and the exact
``public_paths`` (the static shell of the web UI) skip authentication. It never logs a token.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import trio

from ..vault.access import Role
from .ratelimit import FailureLimiter

log = logging.getLogger(__name__)

SCOPE_ROLE = "p2porch.role"
SCOPE_TOKEN = "p2porch.token"
Verifier = Callable[[str], "tuple[str, Role] | None"]
UNAUTHORIZED = {"error": "Unauthorized", "message": "a valid access token is required", "field": None}


async def _send_json(
    send: Any, status: int, payload: dict[str, Any], headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class TokenAuth:
    """ASGI middleware: bearer token -> (name, role) in the scope, or 401/429; owns the failure limiter."""

    def __init__(
        self,
        app: Any,
        verify: Verifier,
        *,
        limiter: FailureLimiter | None = None,
        public_prefixes: Sequence[str] = (),
        public_paths: Sequence[str] = (),
        now: Callable[[], float] = trio.current_time,
    ) -> None:
        self.app = app
        self.verify = verify
        self.limiter = limiter if limiter is not None else FailureLimiter()
        self.public_prefixes = tuple(public_prefixes)
        self.public_paths = frozenset(public_paths)
        self.now = now

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if scope["type"] != "http" or path in self.public_paths or path.startswith(self.public_prefixes):
            await self.app(scope, receive, send)
            return
        source = (scope.get("client") or ("?", 0))[0]
        wait = self.limiter.retry_after(source, self.now())
        if wait > 0:
            await _send_json(
                send,
                429,
                {
                    "error": "TooManyRequests",
                    "message": "too many failed attempts from this address",
                    "field": None,
                },
                [(b"retry-after", str(int(wait) + 1).encode())],
            )
            return
        principal = None
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and token:
                    principal = self.verify(token.strip())
                break
        if principal is None:
            self.limiter.failed(source, self.now())
            await _send_json(send, 401, UNAUTHORIZED, [(b"www-authenticate", b'Bearer realm="p2porch"')])
            return
        scope = dict(scope)
        scope[SCOPE_TOKEN], scope[SCOPE_ROLE] = principal
        await self.app(scope, receive, send)


def role_refusal(scope: Any, needed: Role) -> dict[str, Any] | None:
    """The 403 body when the scope's role is below ``needed`` (None: allowed, or no auth on this app)."""
    if SCOPE_ROLE not in scope:
        return None
    role: Role = scope[SCOPE_ROLE]
    if role >= needed:
        return None
    return {
        "error": "Forbidden",
        "message": f"this needs the {needed.label} role; token {scope.get(SCOPE_TOKEN)!s} has {role.label}",
        "field": "role",
    }
