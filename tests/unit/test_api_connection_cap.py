"""The TLS API listener's connection caps: per source and in total, counted, released on close.

The pure limiter's arithmetic, then the real listener (``serve_tls`` on loopback with a certificate of
a cluster CA): a source's third connection with a cap of 2 is closed before its handshake and counted;
closing one frees a slot for the next.
"""

from __future__ import annotations

import datetime as dt
import inspect
import ssl
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.utils import wrap_app

from p2porch.api import tls_server
from p2porch.api.connlimit import PER_SOURCE, TOTAL, ConnectionLimiter
from p2porch.api.tls_server import TlsIdentity, serve_tls
from p2porch.vault.cluster_ca import cluster_ca, issue_server_certificate


def test_per_source_and_total_caps_with_bounded_memory():
    limiter = ConnectionLimiter(per_source=2, total=3)
    assert limiter.admit("a") is None and limiter.admit("a") is None
    assert limiter.admit("a") == PER_SOURCE
    assert limiter.admit("b") is None
    assert limiter.admit("c") == TOTAL  # 3 open in all
    assert limiter.refused == {PER_SOURCE: 1, TOTAL: 1} and limiter.open_now == 3
    limiter.release("a")
    assert limiter.admit("c") is None and limiter.open_from("a") == 1
    for source in ("a", "b", "c", "c"):  # the last release of c is one too many: ignored
        limiter.release(source)
    assert limiter.open_now == 0 and len(limiter) == 0  # nothing remembered once closed
    with pytest.raises(ValueError):
        ConnectionLimiter(per_source=4, total=2)


async def _hello(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


async def _until(condition) -> None:
    with trio.fail_after(5):
        while not condition():
            await trio.sleep(0.01)


async def test_the_listener_closes_a_sources_connections_beyond_its_cap(tmp_path):
    ca = cluster_ca("cluster-1", 0, b"s" * 48)
    issued = issue_server_certificate(ca, "n1", ["127.0.0.1"], dt.datetime.now(dt.UTC))
    identity = TlsIdentity(str(tmp_path / "tls"))
    identity.install(issued.cert_pem, issued.key_pem)
    limiter = ConnectionLimiter(per_source=2, total=8)
    client = ssl.create_default_context(cadata=ca.pem)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(serve_tls, _hello, "127.0.0.1:0", identity, limiter=limiter))
        port = listeners[0].transport_listener.socket.getsockname()[1]
        connect = partial(trio.open_ssl_over_tcp_stream, "127.0.0.1", port, ssl_context=client)
        first, second = await connect(), await connect()
        await first.do_handshake()
        await second.do_handshake()
        await _until(lambda: limiter.open_from("127.0.0.1") == 2)
        third = await connect()
        with pytest.raises(trio.BrokenResourceError):
            await third.do_handshake()  # closed by the server before any TLS
        assert limiter.refused[PER_SOURCE] == 1 and limiter.open_now == 2
        await first.send_all(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
        reply = b""
        while b"ok" not in reply:
            reply += await first.receive_some()
        assert reply.startswith(b"HTTP/1.1 200")
        await first.aclose()
        await _until(lambda: limiter.open_from("127.0.0.1") == 1)  # released on close
        fourth = await connect()
        await fourth.do_handshake()
        await _until(lambda: limiter.open_from("127.0.0.1") == 2)
        for stream in (second, fourth):
            await stream.aclose()
        await trio.aclose_forcefully(third)
        nursery.cancel_scope.cancel()


def test_the_hypercorn_internals_serve_tls_uses_are_the_pinned_ones():
    """serve_tls builds hypercorn's internal TCPServer itself (hypercorn has no public admission hook):
    a hypercorn release that changes these signatures must fail here, not in production."""
    why = "hypercorn changed an internal serve_tls uses (p2porch/api/tls_server.py): adapt it and the pin"

    def params(fn) -> list[str]:
        return [p for p in inspect.signature(fn).parameters if p != "self"]

    assert params(TCPServer.__init__) == ["app", "config", "context", "state", "stream"], why
    assert inspect.iscoroutinefunction(TCPServer.run) and hasattr(TCPServer, "__await__"), why
    assert params(WorkerContext.__init__) == ["max_requests"], why
    assert params(wrap_app) == ["app", "wsgi_max_body_size", "mode"], why


def test_the_tls_context_is_made_on_first_use_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a daemon whose TLS API is off never makes OpenSSL's server context (~0.3 MB of RSS, issue 19)
    made: list[object] = []
    real = tls_server.ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        made.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(tls_server.ssl, "create_default_context", counting)
    identity = TlsIdentity(str(tmp_path / "tls"))
    assert made == [] and not identity.installed
    context = identity.context
    assert identity.context is context and len(made) == 1
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2 and context.verify_mode == ssl.CERT_NONE
    assert context.options & ssl.OP_NO_COMPRESSION
