"""HTTP/1.1 over a unix stream socket with the standard library only (shell, a leaf: ``http.client`` and
``socket``, nothing of p2porch's).

Owns :class:`UnixHTTPConnection`, the one connection class of both the Docker Engine client
(``engine/endpoint.py``, the engine's default listener) and the command line's client of a daemon's
root-only socket (``api/unix_http.py``). It never retries, never does TLS or authentication (the socket's
file mode is the access control), and never leaks a socket whose connect failed.
"""

from __future__ import annotations

import http.client
import socket


class UnixHTTPConnection(http.client.HTTPConnection):
    """An ``HTTPConnection`` whose transport is the unix socket at ``socket_path`` (``timeout_s`` per socket
    operation, None: none); ``host`` is only what the ``Host`` header says."""

    def __init__(self, socket_path: str, timeout_s: float | None, host: str = "localhost") -> None:
        super().__init__(host, timeout=timeout_s)
        self.socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.socket_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
