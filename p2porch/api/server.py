"""HTTP/JSON control API over a unix socket (shell).

Owns the Starlette application, the mapping of the error tree to JSON error responses, the OpenAPI
description and serving it with hypercorn's trio worker on a unix socket created with mode 0600.
It holds no cluster logic: every route calls a method of the daemon's :class:`ApiBackend`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .. import API_VERSION, __version__
from ..errors import (
    ConfigError,
    DaemonError,
    P2POrchError,
)
from ..vault.access import Role
from ..wire import MAX_FRAME_BYTES
from .auth import SCOPE_ROLE, UNAUTHORIZED, role_refusal
from .deadline import DEFAULT_REQUEST_TIMEOUT_S, RequestDeadline

log = logging.getLogger(__name__)

MAX_BODY_BYTES = MAX_FRAME_BYTES  # nothing larger fits one Raft entry, so nothing larger can be written

Handler = Callable[[dict[str, Any], dict[str, str]], Awaitable[Any]]


@dataclass(frozen=True)
class Endpoint:
    """One API operation: ``handler(body, path_params)`` returns JSON-able data."""

    method: str
    path: str  # without the /v1 prefix, Starlette syntax: /nodes/{node}
    handler: Handler
    summary: str
    streaming: bool = False  # handler returns a callable opening an async context manager of items


def error_status(exc: P2POrchError) -> int:
    """The HTTP status of an error: its class's ``http_status`` (see p2porch.errors)."""
    return exc.http_status


RoleOf = Callable[[str, str], Role]
OnResponse = Callable[[str, str, int], None]
"""Called with (route template, method, status code) once per API response (metrics)."""


def build_app(
    endpoints: list[Endpoint],
    *,
    role_of: RoleOf | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    on_response: OnResponse | None = None,
) -> Starlette:
    """A Starlette app serving ``endpoints`` under /v1, plus /v1/openapi.json and ``extra_routes``.

    With ``role_of(method, path)`` (the TCP API, behind :class:`~p2porch.api.auth.TokenAuth`) every
    route first checks the caller's role: 403 naming the role needed. Without it (the root-only unix
    socket) every route is open."""
    routes: list[BaseRoute] = [
        Route(f"/{API_VERSION}{ep.path}", _counted(ep, _wrap(ep, role_of), on_response), methods=[ep.method])
        for ep in endpoints
    ]
    spec = openapi_spec(endpoints)

    async def openapi(_: Request) -> JSONResponse:
        return JSONResponse(spec)

    openapi_ep = Endpoint("GET", "/openapi.json", lambda b, p: _const(spec), "The OpenAPI description")
    routes.append(
        Route(
            f"/{API_VERSION}/openapi.json",
            _wrap(openapi_ep, role_of) if role_of else openapi,
            methods=["GET"],
        )
    )
    routes.extend(extra_routes)
    app = Starlette(routes=routes)

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {
                "error": "NotFound",
                "message": f"no API route {request.method} {request.url.path}",
                "field": None,
            },
            status_code=404,
        )

    async def not_allowed(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {
                "error": "MethodNotAllowed",
                "message": f"{request.method} is not allowed on {request.url.path}",
                "field": None,
            },
            status_code=405,
        )

    app.add_exception_handler(404, not_found)
    app.add_exception_handler(405, not_allowed)
    return app


def _counted(
    ep: Endpoint, handler: Callable[[Request], Awaitable[Response]], on_response: OnResponse | None
) -> Callable[[Request], Awaitable[Response]]:
    if on_response is None:
        return handler

    async def endpoint(request: Request) -> Response:
        response = await handler(request)
        on_response(f"/{API_VERSION}{ep.path}", ep.method, response.status_code)
        return response

    return endpoint


async def _bounded_body(request: Request) -> bytes | None:
    """The request's body, or None past MAX_BODY_BYTES (a declared length is refused before any read;
    hypercorn bounds only the head, and Starlette's ``body()`` would hold any size in memory)."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and (len(declared) > 12 or int(declared) > MAX_BODY_BYTES):
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _const(value: Any) -> Any:
    return value


def _wrap(ep: Endpoint, role_of: RoleOf | None = None) -> Callable[[Request], Awaitable[Response]]:
    needed = role_of(ep.method, ep.path) if role_of is not None else None

    async def endpoint(request: Request) -> Response:
        if needed is not None:
            if SCOPE_ROLE not in request.scope:  # an app with roles is only ever served behind TokenAuth
                return JSONResponse(UNAUTHORIZED, status_code=401)
            refusal = role_refusal(request.scope, needed)
            if refusal is not None:
                return JSONResponse(refusal, status_code=403)
        body: dict[str, Any] = {}
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            raw = await _bounded_body(request)
            if raw is None:
                message = f"request body is larger than {MAX_BODY_BYTES} bytes (one Raft entry)"
                return JSONResponse(
                    {"error": "ConfigError", "message": message, "field": "body"}, status_code=413
                )
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError as exc:
                    return _error_response(
                        ConfigError(f"request body is not valid JSON: {exc}", field="body")
                    )
                if not isinstance(body, dict):
                    return _error_response(ConfigError("request body must be a JSON object", field="body"))
        query = dict(request.query_params)
        if query:
            body = {**query, **body}
        if ep.streaming:
            return await _stream_response(ep, body, dict(request.path_params))
        try:
            result = await ep.handler(body, dict(request.path_params))
        except P2POrchError as exc:
            return _error_response(exc)
        except Exception as exc:  # a bug must not take the daemon down; report it as a 500
            log.exception("API %s %s failed", ep.method, ep.path)
            return JSONResponse(
                {"error": "InternalError", "message": f"{type(exc).__name__}: {exc}", "field": None},
                status_code=500,
            )
        return JSONResponse(result)

    return endpoint


async def _stream_response(ep: Endpoint, body: dict[str, Any], params: dict[str, str]) -> Response:
    """Newline-delimited JSON; errors before the stream opens are a normal JSON error response.

    The handler returns a callable that opens an async context manager of items; it is entered and
    left inside the one task that serves the response, which stops when the client disconnects.
    """
    try:
        opener = await ep.handler(body, params)
    except P2POrchError as exc:
        return _error_response(exc)
    return _NdjsonStream(opener)


class _NdjsonStream(Response):
    """An ASGI response that streams items as JSON lines until they end or the client goes away."""

    media_type = "application/x-ndjson"

    def __init__(self, opener: Callable[[], Any]) -> None:
        super().__init__(media_type=self.media_type)
        self._opener = opener

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", self.media_type.encode())]  # no content-length: chunked
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        async with trio.open_nursery() as nursery:

            async def until_disconnect() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                nursery.cancel_scope.cancel()

            nursery.start_soon(until_disconnect)
            try:
                async with self._opener() as items:
                    async for item in items:
                        await send(
                            {
                                "type": "http.response.body",
                                "body": (json.dumps(item) + "\n").encode(),
                                "more_body": True,
                            }
                        )
            except P2POrchError as exc:
                await send(
                    {
                        "type": "http.response.body",
                        "body": (json.dumps(exc.to_dict()) + "\n").encode(),
                        "more_body": True,
                    }
                )
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            nursery.cancel_scope.cancel()


def _error_response(exc: P2POrchError) -> JSONResponse:
    return JSONResponse(exc.to_dict(), status_code=error_status(exc))


def openapi_spec(endpoints: list[Endpoint]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        params = [
            {"name": part[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
            for part in ep.path.split("/")
            if part.startswith("{")
        ]
        op: dict[str, Any] = {
            "summary": ep.summary,
            "operationId": ep.method.lower() + "_" + re.sub(r"[^a-z0-9]+", "_", ep.path.lower()).strip("_"),
            "responses": {
                "200": {"description": "OK"},
                "default": {
                    "description": "Error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
            },
        }
        if params:
            op["parameters"] = params
        if ep.method in ("POST", "PUT", "PATCH"):
            op["requestBody"] = {"content": {"application/json": {"schema": {"type": "object"}}}}
        paths.setdefault(f"/{API_VERSION}{ep.path}", {})[ep.method.lower()] = op
    return {
        "openapi": "3.0.3",
        "info": {"title": "p2porch control API", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {"type": "string"},
                        "message": {"type": "string"},
                        "field": {"type": "string", "nullable": True},
                    },
                }
            }
        },
    }


async def serve_api(
    endpoints: list[Endpoint],
    socket_path: str,
    *,
    extra_routes: Sequence[BaseRoute] = (),
    on_response: OnResponse | None = None,
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
    on_timeout: Callable[[], None] | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the API on ``socket_path`` (mode 0600) until cancelled; removes the socket on exit.

    A request body must arrive within ``request_timeout_s`` of its head (:class:`RequestDeadline`, 408
    and ``on_timeout()`` otherwise); the head within hypercorn's keep-alive timer (5 s)."""
    directory = os.path.dirname(socket_path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    if os.path.exists(socket_path):
        if not stat.S_ISSOCK(os.stat(socket_path).st_mode):
            raise DaemonError(f"{socket_path} exists and is not a socket", field="api.socket")
        if await _socket_answers(socket_path):
            raise DaemonError(
                f"another p2porch daemon is already listening on {socket_path}", field="api.socket"
            )
    config = HypercornConfig()
    config.bind = [f"unix:{socket_path}"]
    config.umask = 0o177  # the socket is created 0600: root-only control
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 1.0
    config.keep_alive_timeout = 5  # hypercorn's default, stated: also the bound on a request head's arrival
    try:
        app = build_app(endpoints, extra_routes=extra_routes, on_response=on_response)
        timed = RequestDeadline(app, request_timeout_s, on_timeout)
        await hypercorn_serve(timed, config, task_status=task_status)  # type: ignore[arg-type]
    finally:
        try:
            os.unlink(socket_path)
        except FileNotFoundError:
            pass


async def _socket_answers(socket_path: str) -> bool:
    try:
        stream = await trio.open_unix_socket(socket_path)
    except OSError:
        return False
    await stream.aclose()
    return True
