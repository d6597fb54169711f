"""HTTP/1.1 to a daemon's root-only unix socket with the standard library only (shell).

Owns the connection to the local socket and one request/response exchange on it. It exists for the
command line's start-up cost: ``httpx`` pulls in ``httpcore``, ``trio``, ``h2``, ``rich`` and ``click``
(~0.25 s of CPU per command, measured in docs/performance.md), while a local command needs plain
HTTP/1.1 over one socket; ``http.client`` costs ~20 ms. It never does TLS or authentication (the
socket's file mode is the access control) and never retries: a request that failed to connect was
not sent, anything else is the caller's to judge.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode


class UnixConnection(http.client.HTTPConnection):
    """An ``HTTPConnection`` whose transport is the unix socket at ``path``."""

    def __init__(self, path: str, timeout_s: float | None) -> None:
        super().__init__("p2porch", timeout=timeout_s)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.socket_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def request_target(path: str, params: dict[str, Any] | None = None) -> str:
    """``path`` with ``params`` (None values left out) as its query string."""
    query = urlencode({k: v for k, v in (params or {}).items() if v is not None})
    return f"{path}?{query}" if query else path


class UnixHttp:
    """Requests to one unix socket, one connection per request (a CLI command makes one or two)."""

    def __init__(self, path: str, timeout_s: float | None) -> None:
        self.path = path
        self.timeout_s = timeout_s

    def request(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None
    ) -> tuple[int, bytes]:
        """(status, body bytes). Raises FileNotFoundError/ConnectionRefusedError when nothing listens
        (then nothing was sent) and TimeoutError when the daemon does not answer within the timeout."""
        with self._exchange(method, path, params, body, self.timeout_s) as response:
            return response.status, response.read()

    @contextmanager
    def stream(self, path: str, params: dict[str, Any] | None = None) -> Iterator[http.client.HTTPResponse]:
        """A GET whose response is read as it arrives (no timeout: a stream may idle for long)."""
        with self._exchange("GET", path, params, None, None) as response:
            yield response

    @contextmanager
    def _exchange(
        self, method: str, path: str, params: dict[str, Any] | None, body: Any, timeout_s: float | None
    ) -> Iterator[http.client.HTTPResponse]:
        connection = UnixConnection(self.path, timeout_s)
        try:
            headers = {"accept": "application/json"}
            payload = None
            if body is not None:
                payload = json.dumps(body).encode()
                headers["content-type"] = "application/json"
            connection.request(method, request_target(path, params), body=payload, headers=headers)
            yield connection.getresponse()
        finally:
            connection.close()
