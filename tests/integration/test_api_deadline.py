"""A real daemon process's API listeners against slow clients (its unix socket, and its TLS API with an
operator certificate on loopback): a body sent one byte a second is answered 408 at ``api.request_timeout_s``
and counted in ``p2porch_api_request_timeouts_total``; a head sent one byte a second is closed by the
keep-alive timer; a 10 MiB body paced over a second is read whole and answered by its handler; a slow
body without a token gets its 401 at once."""

from __future__ import annotations

import datetime as dt
import os
import socket
import ssl
import subprocess
import time

import httpx
import pytest

from p2porch.launch import daemon_argv
from p2porch.sandbox.system import stop_pid
from p2porch.testing.slowclient import post_paced, request_head, trickle
from p2porch.vault.cluster_ca import CA_SEED_BYTES, cluster_ca, issue_server_certificate

TIMEOUT_S = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def daemon(tmp_path):
    ca = cluster_ca("0123456789abcdef", 0, os.urandom(CA_SEED_BYTES))
    issued = issue_server_certificate(ca, "t1", ["127.0.0.1"], dt.datetime.now(dt.UTC))
    (tmp_path / "cert.pem").write_text(issued.cert_pem)
    (tmp_path / "key.pem").write_text(issued.key_pem)
    (tmp_path / "p2porch.toml").write_text(f"[api]\nrequest_timeout_s = {TIMEOUT_S}\n")
    port = free_port()
    sock = tmp_path / "run" / "p2porch.sock"
    log_file = open(tmp_path / "daemon.log", "w+")  # noqa: SIM115 - closed in the finally below
    argv = ["--config", str(tmp_path / "p2porch.toml"), "--data-dir", str(tmp_path / "data"), "--name", "t1"]
    argv += ["--api-addr", f"127.0.0.1:{port}", "--api-cert", str(tmp_path / "cert.pem")]
    argv += ["--api-key", str(tmp_path / "key.pem")]
    proc = subprocess.Popen(
        daemon_argv(argv, host=f"unix://{sock}"), stdout=log_file, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while not _listening(port) or not sock.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the daemon did not listen"
            time.sleep(0.1)
        yield {"sock": str(sock), "port": port, "ca": ca.pem}
    finally:
        stop_pid(proc.pid)
        proc.wait(timeout=10)
        log_file.close()


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def test_slow_requests_on_a_real_daemon(daemon):
    def unix() -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(daemon["sock"])
        return s

    context = ssl.create_default_context(cadata=daemon["ca"])

    def tls() -> socket.socket:
        raw = socket.create_connection(("127.0.0.1", daemon["port"]))
        return context.wrap_socket(raw, server_hostname="127.0.0.1")

    got, took = trickle(unix, request_head("/v1/services", 100))
    assert got.startswith(b"HTTP/1.1 408 ") and b'"field": "body"' in got, got
    assert TIMEOUT_S - 0.5 <= took <= TIMEOUT_S + 4, took
    got, took = trickle(unix, b"POST /v1/services HTTP/1.1\r\nhost: p2porch\r\n")
    assert got == b"" and 4.5 <= took <= 10, (got, took)
    data = "x" * (10 * 1024 * 1024)  # read whole, then refused by the handler (no cluster, too large)
    status, answer = post_paced(unix, "/v1/services", {"name": "big", "data": data}, 1.0)
    assert status not in (408, 413) and answer.get("field") != "body", (status, answer)

    got, took = trickle(tls, request_head("/v1/services", 100))  # no token: 401 at once, body unread
    assert got.startswith(b"HTTP/1.1 401 ") and took < 2, (got, took)
    got, took = trickle(tls, b"POST /v1/services HTTP/1.1\r\nhost: p2porch\r\n")
    assert got == b"" and 4.5 <= took <= 10, (got, took)

    with httpx.Client(transport=httpx.HTTPTransport(uds=daemon["sock"])) as client:
        scrape = client.get("http://p2porch/metrics").text
    assert 'p2porch_api_request_timeouts_total{listener="unix"} 1.0' in scrape, scrape
