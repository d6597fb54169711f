"""Serving an ASGI app over TCP with TLS, with a server certificate that can be replaced live (shell).

``TlsIdentity`` owns one ``ssl.SSLContext`` (TLS 1.2+, no client certificates; made on first use) and
the files its certificate and key are loaded from; :meth:`TlsIdentity.install` writes a new pair (mode
0600) and loads it into the same context, so new connections get it without restarting the listener
(existing connections keep theirs). :func:`serve_tls` runs hypercorn's trio worker on ``HOST:PORT`` with that
context, behind a :class:`~p2porch.api.connlimit.ConnectionLimiter`: each accepted connection is
admitted or closed before its handshake (per-source and total caps). It knows nothing of tokens or the
cluster: the app brings its own authentication.

The accept loop is ours (``trio.serve_listeners`` over ``trio.SSLListener``) so that the cap applies
before any TLS work; each admitted connection is then served by hypercorn's own trio ``TCPServer``
(the same class its ``serve`` uses). hypercorn has no public way to refuse a connection before its
handshake (pgjones/hypercorn#81), so that class is used as its 0.17 and 0.18 releases define it:
pyproject pins ``>=0.17,<0.19`` and tests/unit/test_api_connection_cap.py checks the signatures.
"""

from __future__ import annotations

import functools
import logging
import os
import ssl
from collections.abc import Callable
from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import wrap_app

from ..errors import DaemonError
from .connlimit import ConnectionLimiter

log = logging.getLogger(__name__)


def _write_private(path: str, text: str) -> None:
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


class TlsIdentity:
    """The server side of TLS: one SSLContext whose certificate can be swapped for new connections."""

    def __init__(self, directory: str) -> None:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.cert_file = os.path.join(directory, "server.pem")
        self.key_file = os.path.join(directory, "server-key.pem")
        self.installed = False

    @functools.cached_property
    def context(self) -> ssl.SSLContext:
        """Made on first use (a certificate loaded, the listener started): a daemon whose TLS API is off
        never makes one (OpenSSL's server context, ~0.3 MB of RSS; issue 19, twenty-second round)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.options |= ssl.OP_NO_COMPRESSION
        context.set_alpn_protocols(["http/1.1"])
        return context

    def install(self, cert_pem: str, key_pem: str) -> None:
        """Write and load a certificate chain and its key (both PEM)."""
        _write_private(self.key_file, key_pem)
        _write_private(self.cert_file, cert_pem)
        self.load(self.cert_file, self.key_file)

    def load(self, cert_file: str, key_file: str) -> None:
        try:
            self.context.load_cert_chain(cert_file, key_file)
        except (OSError, ssl.SSLError) as exc:
            raise DaemonError(
                f"cannot load the API certificate {cert_file}: {exc}", field="api.cert"
            ) from exc
        self.installed = True


class _Config(HypercornConfig):
    """hypercorn configuration that serves our own (reloadable) SSLContext."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__()
        self._context = context

    def create_ssl_context(self) -> ssl.SSLContext | None:
        return self._context

    @property
    def ssl_enabled(self) -> bool:
        return True


_SEND_PIECE = 64 * 1024
DEFAULT_SEND_TIMEOUT_S = 300.0  # api.send_timeout_s: a paused `logs -f | less` or Ctrl-Z'd reader survives it


class _SendDeadline:
    """A connection's stream whose client must take each 64 KiB of what is sent within ``timeout_s``:
    a client that stops reading its response (or a stream's next item) is cut, its slot freed, instead
    of holding it for as long as its kernel keeps acknowledging a zero window. Everything else is the
    wrapped stream's (hypercorn's ``TCPServer`` uses its handshake, ALPN, socket, receive and close)."""

    def __init__(
        self, stream: trio.SSLStream[trio.SocketStream], timeout_s: float, on_cut: Callable[[], None]
    ) -> None:
        self._stream = stream
        self._timeout_s = timeout_s
        self._on_cut = on_cut  # counts the cut (``p2porch_api_send_timeouts_total``)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        for start in range(0, len(view), _SEND_PIECE):  # per piece, as nginx's send_timeout: a slow but
            with trio.move_on_after(self._timeout_s):  # moving client is never cut, a stopped one is
                await self._stream.send_all(view[start : start + _SEND_PIECE])
                continue
            self._on_cut()
            await trio.aclose_forcefully(self._stream)
            raise trio.BrokenResourceError(f"the client took no data for {self._timeout_s:g} s")


def _peer(stream: trio.SSLStream[trio.SocketStream]) -> str:
    try:
        return str(stream.transport_stream.socket.getpeername()[0])
    except OSError:  # already gone
        return "?"


async def serve_tls(
    app: Any,
    addr: str,
    identity: TlsIdentity,
    *,
    limiter: ConnectionLimiter | None = None,
    send_timeout_s: float = DEFAULT_SEND_TIMEOUT_S,
    on_send_timeout: Callable[[], None] = lambda: None,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` with TLS on ``addr`` (HOST:PORT) until cancelled, capping connections by ``limiter``;
    a client must take each write within ``send_timeout_s``, else its connection is closed and
    ``on_send_timeout`` called."""
    if not identity.installed:
        raise DaemonError("the API has no server certificate yet", field="api.addr")
    config = _Config(identity.context)
    config.bind = [addr]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 1.0
    config.keep_alive_timeout = 5  # hypercorn's defaults, stated: idle keep-alive 5 s, 16 KiB of headers
    config.h11_max_incomplete_size = 16 * 1024
    config.ssl_handshake_timeout = 5  # hypercorn's default is 60 s
    limits = limiter if limiter is not None else ConnectionLimiter()
    sockets = config.create_sockets()
    listeners = []
    for sock in sockets.secure_sockets:
        sock.listen(config.backlog)
        plain = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
        listeners.append(trio.SSLListener(plain, identity.context, https_compatible=True))
    wrapped = wrap_app(app, config.wsgi_max_body_size, "asgi")
    worker = WorkerContext(None)
    state = ConnectionState({})

    async def connection(stream: trio.SSLStream[trio.SocketStream]) -> None:
        source = _peer(stream)
        refused = limits.admit(source)
        if refused is not None:
            log.debug("API connection from %s refused: %s cap", source, refused)
            await trio.aclose_forcefully(stream)
            return
        try:
            timed = _SendDeadline(stream, send_timeout_s, on_send_timeout)
            await TCPServer(wrapped, config, worker, state, timed)  # type: ignore[arg-type]  # duck-typed
        finally:
            limits.release(source)

    await trio.serve_listeners(connection, listeners, task_status=task_status)
