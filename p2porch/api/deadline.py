"""A deadline on each API request's arrival (shell: an ASGI middleware over trio).

Owns refusing a request whose body is still arriving ``timeout_s`` after its head: the app serving it
is cancelled and the client gets ``408`` with ``connection: close`` (hypercorn then closes the
connection, the body unread), counted through ``on_timeout``. The head itself is bounded before the app
is called, by hypercorn's keep-alive timer (a connection that has not sent a whole head within 5 s of
opening or of its previous response is closed) and its 16 KiB head limit. The deadline ends as soon as
the body is in or a response has started: a handler may then wait for a commit and a stream may last
for hours. It never reads or holds the body itself (the app reads it, within its own size cap).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import trio

from ..errors import ConfigError

__all__ = ["DEFAULT_REQUEST_TIMEOUT_S", "RequestDeadline"]

DEFAULT_REQUEST_TIMEOUT_S = 60.0  # as kube-apiserver's --request-timeout; 16 MiB in 60 s is 280 KB/s


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})  # the methods whose bodies the API reads


def _declares_body(scope: dict[str, Any]) -> bool:
    """HTTP/1.1 declares a body in its head; HTTP/2 (prior knowledge on the unix socket) need not."""
    if scope.get("http_version") == "2" and scope.get("method") in _BODY_METHODS:
        return True
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


class RequestDeadline:
    """Wraps an ASGI app: a request's body must arrive within ``timeout_s`` of its head, else 408."""

    def __init__(self, app: Any, timeout_s: float, on_timeout: Callable[[], None] | None = None) -> None:
        if not timeout_s > 0:
            raise ValueError("timeout_s must be positive")
        self.app = app
        self.timeout_s = timeout_s
        self.on_timeout = on_timeout

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not _declares_body(scope):
            await self.app(scope, receive, send)
            return
        started = body_in = False
        with trio.CancelScope(deadline=trio.current_time() + self.timeout_s) as deadline:

            async def receive_in_time() -> Any:
                nonlocal body_in
                message = await receive()
                if message["type"] != "http.request" or not message.get("more_body", False):
                    # a deadline that fired in the pass that delivered this message has already
                    # cancelled us (a later inf does not undo it): fail before the app sees the body
                    await trio.lowlevel.checkpoint_if_cancelled()
                    deadline.deadline = math.inf  # the body is in (or the client left)
                    body_in = True
                return message

            async def send_marked(message: Any) -> None:
                nonlocal started
                if message["type"] == "http.response.start":
                    started = True
                    deadline.deadline = math.inf
                await send(message)

            await self.app(scope, receive_in_time, send_marked)
        if deadline.cancelled_caught and not started and not body_in:
            if self.on_timeout is not None:
                self.on_timeout()
            message = f"the request body did not arrive within {self.timeout_s:g} s of its head"
            body = json.dumps(ConfigError(message, field="body").to_dict()).encode()
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ]
            await send({"type": "http.response.start", "status": 408, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})
