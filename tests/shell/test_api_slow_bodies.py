"""Slow requests against both API listeners on real sockets (the unix socket with ``serve_api``, TLS on
loopback with ``remote_app`` and ``serve_tls``; real hypercorn): a body sent one byte at a time is
answered 408 and the connection closed at the request deadline, counted once per listener; a head sent
one byte at a time is closed by the keep-alive timer; a 10 MiB body paced over a second and a 15 MiB body
sent at once are still served whole; a TLS client that stops reading a large response is cut at its own
send timeout (``api.send_timeout_s``, not the request deadline), counted, and its connection slot freed."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import ssl
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from p2porch.api.server import Endpoint, serve_api
from p2porch.api.tls_server import TlsIdentity, serve_tls
from p2porch.config import ApiConfig
from p2porch.control.remote_api import RemoteApi, remote_app
from p2porch.metrics import Metrics
from p2porch.testing.slowclient import Connect, post_paced, request_head, trickle
from p2porch.vault.access import Role
from p2porch.vault.cluster_ca import CA_SEED_BYTES, ClusterCA, cluster_ca, issue_server_certificate

TIMEOUT_S = 4.0
SEND_TIMEOUT_S = 6.0  # api.send_timeout_s: a stalled reader, a knob of its own
HEAD_S = 5.0  # hypercorn's keep-alive timer: a whole head within 5 s of the connection opening
TOKEN = "p2pat_slowbodies"


async def size(body, params):
    return {"size": len(body.get("data", ""))}


async def big(body, params):
    return {"data": "x" * (40 * 1024 * 1024)}  # far more than the loopback socket buffers hold


ENDPOINTS = [
    Endpoint("POST", "/size", size, "the size of the posted data"),
    Endpoint("GET", "/big", big, "a large answer"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="p2sb-", dir="/tmp"))  # unix socket paths must stay short
    yield path
    shutil.rmtree(path, ignore_errors=True)


def tls_identity(socket_dir: Path) -> tuple[ClusterCA, TlsIdentity]:
    """A cluster CA and a server certificate it issued for 127.0.0.1."""
    ca = cluster_ca("0123456789abcdef", 0, os.urandom(CA_SEED_BYTES))
    identity = TlsIdentity(str(socket_dir / "tls"))
    issued = issue_server_certificate(ca, "n1", ["127.0.0.1"], dt.datetime.now(dt.UTC))
    identity.install(issued.cert_pem, issued.key_pem)
    return ca, identity


def check_listener(connect: Connect, timeouts: dict[str, int], listener: str) -> None:
    got, took = trickle(connect, request_head("/v1/size", 100, TOKEN))
    assert got.startswith(b"HTTP/1.1 408 "), got
    assert b"connection: close" in got.lower() and b'"field": "body"' in got
    assert TIMEOUT_S - 0.5 <= took <= TIMEOUT_S + 3, took
    assert timeouts == {listener: 1}
    got, took = trickle(connect, b"POST /v1/size HTTP/1.1\r\nhost: p2porch\r\n")  # then a header, slowly
    assert got == b"" and HEAD_S - 0.5 <= took <= HEAD_S + 3, (got, took)
    for size_mib, pace_s in ((10, 1.0), (15, 0.0)):  # paced over a second; all at once
        data = "x" * (size_mib * 1024 * 1024)
        assert post_paced(connect, "/v1/size", {"data": data}, pace_s, TOKEN) == (200, {"size": len(data)})
    assert timeouts == {listener: 1}


async def test_slow_bodies_and_heads_are_cut_and_large_bodies_pass(socket_dir: Path) -> None:
    timeouts: dict[str, int] = {}

    def counter(listener: str) -> Callable[[], None]:
        def count() -> None:
            timeouts[listener] = timeouts.get(listener, 0) + 1

        return count

    socket_path = str(socket_dir / "api.sock")
    ca, identity = tls_identity(socket_dir)
    addr = ("127.0.0.1", free_port())
    tls_client = ssl.create_default_context(cadata=ca.pem)

    def unix() -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(socket_path)
        return sock

    def tls() -> socket.socket:
        return tls_client.wrap_socket(socket.create_connection(addr), server_hostname="127.0.0.1")

    app = remote_app(
        ENDPOINTS,
        lambda text: ("root", Role.ADMIN) if text == TOKEN else None,
        request_timeout_s=TIMEOUT_S,
        on_timeout=counter("tls"),
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: serve_api(
                ENDPOINTS,
                socket_path,
                request_timeout_s=TIMEOUT_S,
                on_timeout=counter("unix"),
                task_status=task_status,
            )
        )
        await nursery.start(serve_tls, app, f"{addr[0]}:{addr[1]}", identity)
        await trio.to_thread.run_sync(check_listener, unix, timeouts, "unix")
        timeouts.clear()
        await trio.to_thread.run_sync(check_listener, tls, timeouts, "tls")
        nursery.cancel_scope.cancel()


async def test_a_tls_client_that_stops_reading_is_cut_counted_and_its_slot_freed(socket_dir: Path) -> None:
    """Served as the daemon serves it (``RemoteApi`` with an operator certificate): the cut is counted in
    the daemon's registry as ``p2porch_api_send_timeouts_total`` (before: in no metric)."""
    ca, identity = tls_identity(socket_dir)
    (socket_dir / "c.pem").write_bytes(Path(identity.cert_file).read_bytes())
    (socket_dir / "k.pem").write_bytes(Path(identity.key_file).read_bytes())
    addr = ("127.0.0.1", free_port())
    section = ApiConfig(
        addr=f"{addr[0]}:{addr[1]}",
        cert=str(socket_dir / "c.pem"),
        key=str(socket_dir / "k.pem"),
        send_timeout_s=SEND_TIMEOUT_S,
    )
    remote = RemoteApi(section, SimpleNamespace(local=None, store=None), str(socket_dir / "data"), "n1")  # type: ignore[arg-type]
    assert remote.refresh(dt.datetime.now(dt.UTC))
    metrics = Metrics()
    metrics.add_source(remote.collect_metrics)
    app = remote_app(
        ENDPOINTS, lambda text: ("root", Role.ADMIN) if text == TOKEN else None, request_timeout_s=TIMEOUT_S
    )
    limiter = remote.connections

    def cuts() -> float:
        text = metrics.render().decode()
        (family,) = [f for f in text_string_to_metric_families(text) if f.name == "p2porch_api_send_timeouts"]
        return float(family.samples[0].value)

    def ask_and_never_read() -> socket.socket:
        context = ssl.create_default_context(cadata=ca.pem)
        sock = context.wrap_socket(socket.create_connection(addr), server_hostname="127.0.0.1")
        sock.sendall(
            f"GET /v1/big HTTP/1.1\r\nhost: p2porch\r\nauthorization: Bearer {TOKEN}\r\n\r\n".encode()
        )
        return sock

    async with trio.open_nursery() as nursery:
        await nursery.start(remote._listen, app)
        assert cuts() == 0
        sock = await trio.to_thread.run_sync(ask_and_never_read)
        try:
            with trio.fail_after(30):
                while limiter.open_now == 0:  # accepted
                    await trio.sleep(0.05)
                began = trio.current_time()
                while limiter.open_now:  # before: held for as long as the client kept its window shut
                    await trio.sleep(0.1)
            assert SEND_TIMEOUT_S - 0.5 <= trio.current_time() - began <= SEND_TIMEOUT_S + 10
            assert cuts() == 1
        finally:
            sock.close()
        nursery.cancel_scope.cancel()
