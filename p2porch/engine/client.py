"""A small blocking Docker Engine API client over the stdlib's ``http.client`` (shell: sockets).

``EngineClient`` owns an :class:`~p2porch.engine.endpoint.Endpoint` and the API version it negotiated
(the engine's own, capped at ``MAX_API_VERSION``). Each call opens one connection and closes it; a
stream (events, logs, pull progress) keeps its connection until closed, and ``close()`` from another
thread interrupts a blocked read. Errors: ``EngineError`` with the HTTP status and the engine's
message (``NotFound`` for 404); an unreachable engine is an ``EngineError`` with status 0. It never
logs a request body (it may hold environment values) nor the registry auth header.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlencode

from .endpoint import Endpoint, parse_endpoint
from .streams import StreamError, json_lines, log_frames, raw_chunks

MAX_API_VERSION = (1, 45)  # what this client's bodies were written against (docker SDK 7.1's default)
MIN_API_VERSION = (1, 41)  # Docker 20.10; older engines lack fields the agent sets
RAW_STREAM = "application/vnd.docker.raw-stream"


class EngineError(Exception):
    """The engine refused a request (``status`` = HTTP status) or could not be reached (status 0)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.explanation = message


class NotFound(EngineError):
    """404: no such container, image or network."""


def _error(status: int, body: bytes, reason: str) -> EngineError:
    message = ""
    try:
        decoded = json.loads(body)
        if isinstance(decoded, dict):
            message = str(decoded.get("message") or "")
    except ValueError:
        message = body[:500].decode(errors="replace")
    message = message.strip() or f"{status} {reason}"
    return (NotFound if status == 404 else EngineError)(message, status)


def filters_param(filters: Mapping[str, Any]) -> str:
    """The ``filters`` query value: a JSON map of lists of strings (``{"label": ["a=b"]}``)."""
    out: dict[str, list[str]] = {}
    for key, value in filters.items():
        values = value if isinstance(value, list | tuple) else [value]
        out[key] = ["true" if v is True else "false" if v is False else str(v) for v in values]
    return json.dumps(out)


class Stream:
    """An open streamed response: iterate it (in one thread) for items; ``close()`` ends it from any
    thread: it shuts the socket down, which wakes a blocked read with end-of-stream."""

    def __init__(
        self,
        sock: socket.socket | None,
        conn: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        items: Iterator[Any],
    ) -> None:
        self._sock = sock
        self._conn = conn
        self._response = response
        self._items = items
        self._lock = threading.Lock()
        self._closed = False
        self._started = False

    def __iter__(self) -> Iterator[Any]:
        return self._read()

    def _read(self) -> Iterator[Any]:
        with self._lock:
            self._started = True
        try:
            yield from self._items
        except (OSError, http.client.HTTPException, ValueError, StreamError) as exc:
            if not self._closed:
                raise EngineError(f"the Docker engine's stream broke off: {_why(exc)}") from exc
        finally:
            self._response.close()  # in the reading thread: http.client's objects are not thread-safe

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            started = self._started
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv
            except OSError:
                pass
            self._sock.close()
        if not started:
            self._conn.close()


class EngineClient:
    """Blocking Engine API calls (see the module docstring); safe to share between threads."""

    def __init__(
        self, endpoint: Endpoint, *, timeout_s: float = 60.0, version: tuple[int, int] = MAX_API_VERSION
    ):
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.version = version

    @classmethod
    def connect(
        cls, base_url: str | None = None, *, timeout_s: float = 60.0, environ: Mapping[str, str] | None = None
    ) -> EngineClient:
        """Parse the address (``DOCKER_HOST`` when None), ping the engine and negotiate the API version."""
        client = cls(parse_endpoint(base_url, environ), timeout_s=timeout_s)
        status, headers, _body = client._exchange("GET", "/_ping", versioned=False)
        if status != 200:
            raise EngineError(f"the engine answered /_ping with HTTP {status}", status)
        client.version = negotiate(headers.get("Api-Version", ""))
        return client

    # ----- plumbing
    def _path(self, path: str, query: Mapping[str, Any] | None, versioned: bool = True) -> str:
        prefix = f"/v{self.version[0]}.{self.version[1]}" if versioned else ""
        params = {k: v for k, v in (query or {}).items() if v is not None}
        return prefix + path + (f"?{urlencode(params)}" if params else "")

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float | None = -1.0,
        versioned: bool = True,
    ) -> tuple[http.client.HTTPConnection, socket.socket | None, http.client.HTTPResponse]:
        all_headers = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        try:  # a TLS context whose certificate files cannot be read fails here too (OSError)
            conn = self.endpoint.connection(self.timeout_s if timeout_s == -1.0 else timeout_s)
        except OSError as exc:
            raise EngineError(f"cannot reach the Docker engine at {self.endpoint.url}: {_why(exc)}") from exc
        try:
            conn.request(method, self._path(path, query, versioned), body=data, headers=all_headers)
            sock = conn.sock
            return conn, sock, conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise EngineError(f"cannot reach the Docker engine at {self.endpoint.url}: {_why(exc)}") from exc

    def _exchange(self, method: str, path: str, **kwargs: Any) -> tuple[int, http.client.HTTPMessage, bytes]:
        conn, _sock, response = self._send(method, path, **kwargs)
        try:
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise EngineError(f"the Docker engine's answer broke off: {_why(exc)}") from exc
        finally:
            conn.close()
        return response.status, response.headers, body

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request; the decoded JSON answer (None for an empty body); EngineError for status >= 400."""
        status, headers, body = self._exchange(method, path, **kwargs)
        if status >= 400:
            raise _error(status, body, http.client.responses.get(status, ""))
        if not body or "json" not in str(headers.get("Content-Type", "")):
            return body.decode(errors="replace") if body else None
        try:
            return json.loads(body)
        except ValueError as exc:
            raise EngineError(f"the Docker engine answered {path} with invalid JSON: {body[:80]!r}") from exc

    def stream(self, method: str, path: str, decode: Callable[[Any], Iterator[Any]], **kwargs: Any) -> Stream:
        """A streamed request; EngineError at once for status >= 400."""
        conn, sock, response = self._send(method, path, **kwargs)
        if response.status >= 400:
            try:
                body = response.read()
            except (OSError, http.client.HTTPException):
                body = b""
            finally:
                conn.close()
            raise _error(response.status, body, response.reason)
        return Stream(sock, conn, response, decode(response))

    # ----- system
    def info(self) -> dict[str, Any]:
        return dict(self.call("GET", "/info"))

    # ----- containers
    def containers(
        self, *, all: bool = True, filters: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        query = {"all": "1" if all else "0", "filters": filters_param(filters) if filters else None}
        return list(self.call("GET", "/containers/json", query=query))

    def inspect_container(self, container: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/containers/{_quote(container)}/json"))

    def create_container(self, name: str, body: Mapping[str, Any]) -> str:
        answer = self.call("POST", "/containers/create", query={"name": name or None}, body=dict(body))
        return str(answer["Id"])

    def start(self, container: str) -> None:
        self.call("POST", f"/containers/{_quote(container)}/start")

    def stop(self, container: str, *, timeout_s: int) -> None:
        self.call(
            "POST",
            f"/containers/{_quote(container)}/stop",
            query={"t": str(timeout_s)},
            timeout_s=self.timeout_s + timeout_s,
        )

    def remove_container(self, container: str, *, force: bool = False) -> None:
        self.call("DELETE", f"/containers/{_quote(container)}", query={"force": "1" if force else "0"})

    def events(self, filters: Mapping[str, Any]) -> Stream:
        return self.stream(
            "GET", "/events", json_lines, query={"filters": filters_param(filters)}, timeout_s=None
        )

    def logs(
        self,
        container: str,
        *,
        follow: bool,
        tail: int | None,
        since: float | None = None,
        timestamps: bool = False,
    ) -> Stream:
        """A container's output; ``since`` (Unix seconds) and ``timestamps`` as the engine API's."""
        query = {
            "stdout": "1",
            "stderr": "1",
            "follow": "1" if follow else "0",
            "tail": "all" if tail is None else str(tail),
        }
        if since is not None:
            query["since"] = f"{since:.6f}"
        if timestamps:
            query["timestamps"] = "1"
        return self.stream(
            "GET",
            f"/containers/{_quote(container)}/logs",
            _logs_decoder(self.version),
            query=query,
            timeout_s=None if follow else -1.0,
        )

    # ----- images
    def inspect_image(self, image: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/images/{_quote(image)}/json"))

    def pull(self, repository: str, tag: str, *, auth_header: str = "") -> Stream:
        """Progress documents of ``docker pull``; a failure may come as a document with an "error" key."""
        headers = {"X-Registry-Auth": auth_header} if auth_header else {}
        query = {"fromImage": repository, "tag": tag}
        return self.stream("POST", "/images/create", json_lines, query=query, headers=headers)

    # ----- networks
    def networks(self, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        query = {"filters": filters_param(filters) if filters else None}
        return list(self.call("GET", "/networks", query=query))

    def inspect_network(self, network: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/networks/{_quote(network)}"))

    def create_network(self, body: Mapping[str, Any]) -> str:
        return str(self.call("POST", "/networks/create", body=dict(body))["Id"])

    def disconnect_network(self, network: str, container: str, *, force: bool = False) -> None:
        body = {"Container": container, "Force": force}
        self.call("POST", f"/networks/{_quote(network)}/disconnect", body=body)

    def remove_network(self, network: str) -> None:
        self.call("DELETE", f"/networks/{_quote(network)}")


def negotiate(server_version: str) -> tuple[int, int]:
    """The API version to speak: the engine's (from /_ping's Api-Version), at most ``MAX_API_VERSION``."""
    try:
        major, minor = (int(p) for p in server_version.strip().split(".", 1))
    except ValueError:
        return MAX_API_VERSION  # an engine that does not say: speak ours
    if (major, minor) < MIN_API_VERSION:
        raise EngineError(
            f"the Docker engine speaks API {major}.{minor}; p2porch needs "
            f"{MIN_API_VERSION[0]}.{MIN_API_VERSION[1]} or later (Docker 20.10+)"
        )
    return min((major, minor), MAX_API_VERSION)


def _logs_decoder(version: tuple[int, int]) -> Callable[[http.client.HTTPResponse], Iterator[bytes]]:
    """Frames unless the engine says the stream is raw (a TTY container). Before API 1.42 the engine
    called every log stream raw; p2porch never creates a TTY container, so those are read as frames."""

    def decode(response: http.client.HTTPResponse) -> Iterator[bytes]:
        raw = RAW_STREAM in str(response.headers.get("Content-Type", ""))
        return raw_chunks(response) if raw and version >= (1, 42) else log_frames(response)

    return decode


def _quote(name: str) -> str:
    return quote(name, safe="/:@")


def _why(exc: BaseException) -> str:
    return str(exc).strip() or type(exc).__name__
