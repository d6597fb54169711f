"""HTTP/1.1 to a daemon's root-only unix socket with the standard library only (shell).

Owns the kept connection to the local socket and one request/response exchange on it (the connection
class is ``unixconn.UnixHTTPConnection``, shared with the engine client). It exists for the
command line's start-up cost: ``httpx`` pulls in ``httpcore``, ``trio``, ``h2``, ``rich`` and ``click``
(~0.25 s of CPU per command, measured in docs/performance.md), while a local command needs plain
HTTP/1.1 over one socket; ``http.client`` costs ~20 ms. It never does TLS or authentication (the
socket's file mode is the access control) and never retries: a request that failed to connect was
not sent, anything else is the caller's to judge. A connection is kept for the next request (as
httpx did) unless the daemon closed it; a kept one the daemon has closed meanwhile is replaced before
a request is written to it, never after.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

from ..unixconn import UnixHTTPConnection


class UnixConnection(UnixHTTPConnection):
    """A connection to a daemon's socket at ``path`` (the ``Host`` header says ``p2porch``)."""

    def __init__(self, path: str, timeout_s: float | None) -> None:
        super().__init__(path, timeout_s, host="p2porch")


def request_target(path: str, params: dict[str, Any] | None = None) -> str:
    """``path`` with ``params`` (None values left out) as its query string."""
    query = urlencode({k: v for k, v in (params or {}).items() if v is not None})
    return f"{path}?{query}" if query else path


class UnixHttp:
    """Requests to one unix socket over one kept-alive connection (streams get their own)."""

    def __init__(self, path: str, timeout_s: float | None) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self._kept: UnixConnection | None = None

    def close(self) -> None:
        if self._kept is not None:
            self._kept.close()
            self._kept = None

    def request(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None
    ) -> tuple[int, bytes]:
        """(status, body bytes). Raises FileNotFoundError/ConnectionRefusedError when nothing listens
        (then nothing was sent) and TimeoutError when the daemon does not answer within the timeout."""
        connection = self._connection()
        try:
            response = _send(connection, method, path, params, body)
            data = response.read()
        except BaseException:
            self.close()
            raise
        if response.will_close:
            self.close()
        return response.status, data

    @contextmanager
    def stream(self, path: str, params: dict[str, Any] | None = None) -> Iterator[http.client.HTTPResponse]:
        """A GET whose response is read as it arrives (no timeout: a stream may idle for long)."""
        connection = UnixConnection(self.path, None)
        try:
            yield _send(connection, "GET", path, params, None)
        finally:
            connection.close()

    def _connection(self) -> UnixConnection:
        kept = self._kept
        if kept is not None and kept.sock is not None and not _readable(kept.sock):
            return kept
        self.close()  # none yet, or the daemon closed it (EOF waiting to be read): a new one
        self._kept = UnixConnection(self.path, self.timeout_s)
        return self._kept


def _readable(sock: socket.socket) -> bool:
    """An idle kept connection with something to read (or hung up) has been closed by the daemon (EOF).
    poll, not select: select refuses descriptors above 1023 (a process with many files open)."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def _send(
    connection: UnixConnection, method: str, path: str, params: dict[str, Any] | None, body: Any
) -> http.client.HTTPResponse:
    headers = {"accept": "application/json"}
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["content-type"] = "application/json"
    connection.request(method, request_target(path, params), body=payload, headers=headers)
    return connection.getresponse()
