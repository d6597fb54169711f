"""A unix socket answering control API requests from a function, in a thread (a test and bench helper).

Owns one listening socket: each connection's one request (its head and its ``Content-Length`` body) is
read whole, recorded as ``(method, path)`` and answered with ``answer(method, path)``: an HTTP status
and a JSON body. It parses no more HTTP than that and serves none of a daemon's routes.
"""

from __future__ import annotations

import contextlib
import http
import json
import socket
import threading
from collections.abc import Callable
from typing import Any

#: ``answer(method, path)`` -> (HTTP status, JSON value); the path without its query string
Answer = Callable[[str, str], tuple[int, Any]]


def serve_unix_api(path: str, answer: Answer) -> list[tuple[str, str]]:
    """Listen on ``path`` until the process ends; returns the list the requests are recorded in."""
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(16)
    seen: list[tuple[str, str]] = []

    def read_more(connection: socket.socket, data: bytes) -> bytes:
        chunk = connection.recv(65536)
        if not chunk:
            raise ConnectionError("the client closed mid-request")
        return data + chunk

    def handle(connection: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data = read_more(connection, data)
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        sizes = [ln.partition(":")[2] for ln in lines[1:] if ln.lower().startswith("content-length:")]
        while len(body) < int(sizes[0] if sizes else 0):
            body = read_more(connection, body)
        method, target = lines[0].split(" ")[:2]
        seen.append((method, target.partition("?")[0]))
        status, value = answer(*seen[-1])
        payload = json.dumps(value).encode()
        connection.sendall(
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s"
            % (status, http.HTTPStatus(status).phrase.encode(), len(payload), payload)
        )

    def serve() -> None:
        while True:
            connection, _ = server.accept()
            with connection, contextlib.suppress(OSError):  # a client gone mid-request: the next one
                handle(connection)

    threading.Thread(target=serve, daemon=True).start()
    return seen
